"""The service's one typed settings object.

Every value comes from an environment variable prefixed ``DSIMPORT_`` (or a ``.env`` file), except the API key,
which keeps the name Mistral's own SDK uses, ``MISTRAL_API_KEY``, or is read from ``DSIMPORT_API_KEY_FILE``.
No other module reads ``os.environ``: settings are built here once and passed down. What the environment (and
``.env``) leaves unset, a ``dsimport up`` running from the same home supplies (its broker, ledger and API, see
:mod:`worker.stack_file`), before the defaults below.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from store.retention import MIN_RETENTION_S
from worker.settings_error import SettingsError as SettingsError
from worker.stack_file import settings_from_stack

DEFAULT_API_BASE_URL = "https://api.mistral.ai"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The drivers installed with dsimport (pysqlite is Python's own; psycopg 3 for PostgreSQL).
_DATABASE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"})
_URL_FIELDS = frozenset({"database_url", "broker_url", "stream_redis_url", "api_base_url"})
_DATABASE_URL_FORMS = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


class Settings(BaseSettings):
    """What the worker, beat, consumer, CLI and dashboard are configured with."""

    _reads_stack_file: ClassVar[bool] = True

    model_config = SettingsConfigDict(
        env_prefix="DSIMPORT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Keep the key out of reprs and validation errors.
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    home: Path = Field(
        default=Path(".dsimport"), description="Data folder: SQLite ledger, logs, credentials."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL of the ledger; SQLite under home if empty."
    )
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL of the Celery broker.")
    db_busy_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="SQLite only: how long SQLite waits for the write lock."
    )
    db_locked_retry_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="SQLite only: how long a writer keeps retrying a locked ledger before it gives up (one line).",
    )
    # Retention: 0 keeps everything. At least a day, so no key a producer may still retry with is forgotten, and
    # no remote task recovery may still be looking for loses its owner (see store.retention).
    prune_older_than_s: float = Field(
        default=0.0,
        ge=0,
        le=1000 * 365 * 86_400.0,
        allow_inf_nan=False,
        description="Beat prunes finished jobs and resolved dead letters older than this; 0: off.",
    )
    prune_interval_s: float = Field(
        default=3600.0, gt=0, allow_inf_nan=False, description="How often beat runs the prune."
    )

    # Webhooks on job endings (see notifications): how often beat sends the outbox's deliverer, and how it retries.
    webhook_tick_s: float = Field(
        default=2.0, ge=0, allow_inf_nan=False, description="How often beat delivers due webhooks; 0: never."
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Timeout of one webhook POST.")
    webhook_max_attempts: int = Field(default=10, ge=1, description="Attempts of a delivery before it is given up.")
    webhook_max_age_s: float = Field(
        default=86_400.0, gt=0, allow_inf_nan=False, description="A delivery not through after this is given up."
    )
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="Pause after a delivery's first failed attempt.")
    # Schedule snapshots (see snapshots.take): how often beat takes the snapshots completed imports are owed.
    snapshot_tick_s: float = Field(
        default=5.0, ge=0, allow_inf_nan=False, description="How often beat takes due schedule snapshots; 0: never."
    )
    snapshot_backoff_s: float = Field(
        default=5.0, gt=0, allow_inf_nan=False, description="Pause after a snapshot's first failed attempt."
    )
    snapshot_max_attempts: int = Field(
        default=50, ge=1, description="Attempts of a snapshot before it is given up (the pause doubles, to 10 min)."
    )
    jobs_page_url: str = Field(
        default="", description="Public address of the jobs page, for links in webhook events; empty: no links."
    )

    api_base_url: str = Field(default=DEFAULT_API_BASE_URL, description="Base URL of the Mistral API.")
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MISTRAL_API_KEY", "DSIMPORT_API_KEY"),
        description="API key (never logged, never stored).",
    )
    api_key_file: Path | None = Field(
        default=None, description="File holding the API key, if not in the env."
    )
    # Also the overall deadline of a submit POST. api_timeout_s x api_max_attempts must stay below lease_s: a call
    # made under a lease (a poll, a submit, an adoption lookup) must end before another worker may take over.
    api_timeout_s: float = Field(default=10.0, gt=0, description="Per-request timeout; a submit's overall deadline.")
    api_max_attempts: int = Field(default=4, ge=1, description="Attempts per API read call (GET).")
    api_max_connections: int = Field(default=100, ge=1)

    poll_tick_s: float = Field(
        default=1.0, gt=0, description="How often the batch poller looks for due jobs."
    )
    poll_initial_interval_s: float = Field(default=1.0, gt=0)
    poll_max_interval_s: float = Field(
        default=10.0, gt=0, description="Longest delay between two polls of a job (backoff and forecast)."
    )
    poll_multiplier: float = Field(default=1.5, ge=1.0)
    poll_jitter_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    # The poll after a RUNNING task's progress moved goes at this fraction of the time the rate says it may still
    # need (jobs/poll_forecast.py); lower polls more on the way, for imports whose rate changes; 0 turns it off.
    poll_forecast_fraction: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of a moving import's forecast remaining time to wait."
    )
    # Large enough that a list_tasks page serves many due jobs of its dataset (bench/poll_path.py: 500 -> 2000
    # took one process from ~600 to ~1,700 job polls/s with 50 jobs per dataset).
    poll_batch_size: int = Field(default=2000, ge=1, description="Jobs claimed by one poll round.")
    poll_concurrency: int = Field(default=32, ge=1, description="API calls in flight during a poll round.")
    poll_round_budget_s: float = Field(default=5.0, gt=0, description="Time one poll task keeps claiming.")
    poll_group_threshold: int = Field(default=3, ge=2, description="Due jobs on a dataset to use list_tasks.")
    lease_s: float = Field(default=60.0, gt=0, description="How long a claimed job is reserved to a worker.")
    clock_offset_s: float = Field(
        default=0.0,
        description="For tests only: shifts this process's clock, to play a host whose clock is off (leases and "
        "due times follow the database's clock, so the service must behave the same with any value).",
    )

    count_sql_statements: bool = Field(
        default=False,
        description="For benchmarks only: count the SQL statements this process sends to the ledger in the metrics "
        "hash (bench/scaleout.py reads them); off, nothing is added to a statement.",
    )

    submit_max_retries: int = Field(default=5, ge=0, description="Retries of a submit after 5xx/transport.")
    submit_retry_backoff_s: float = Field(default=2.0, gt=0)
    job_deadline_s: float = Field(
        default=6 * 3600.0, gt=0, description="A job still running then is EXPIRED."
    )
    stuck_remote_status_s: float = Field(default=1800.0, gt=0, description="Flag a job UNKNOWN this long.")
    recovery_interval_s: float = Field(default=30.0, gt=0)
    stale_pending_s: float = Field(default=60.0, gt=0, description="A PENDING job this old is re-sent.")
    skip_existing_refresh_s: float = Field(
        default=600.0,
        ge=0,
        description="--skip-existing reads a dataset's whole record list again when its index is this old.",
    )

    schedules_file: Path | None = Field(
        default=None, description="TOML file of beat schedules, synced into the schedules table by beat."
    )
    schedules_refresh_s: float = Field(
        default=5.0, gt=0, description="How often beat re-reads the schedules table (and checks the file)."
    )
    schedule_settle_lag_s: float = Field(
        default=120.0,
        ge=0,
        description="A window schedule's fire searches up to this long before its fire time (late-indexed items).",
    )

    log_level: str = Field(default="INFO")
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON objects, or as key=value text (both carry the job id)."
    )

    # Monitoring: Flower and the jobs page sit behind the same basic-auth login.
    ui_user: str = Field(default="admin", min_length=1, description="Login of Flower and the jobs page.")
    ui_password: SecretStr | None = Field(
        default=None, description="Password of Flower and the jobs page; `dsimport up` generates one."
    )
    flower_address: str = Field(default="127.0.0.1", description="Interface Flower listens on.")
    flower_port: int = Field(default=5555, ge=0, le=65535)
    flower_max_tasks: int = Field(default=10_000, ge=100, description="Finished tasks Flower keeps in memory.")
    dashboard_host: str = Field(default="127.0.0.1", description="Interface the jobs page listens on.")
    dashboard_port: int = Field(default=8080, ge=0, le=65535)
    dashboard_refresh_s: int = Field(default=5, ge=1, le=3600, description="How often the jobs page reloads.")
    watermark_lag_alert_s: float = Field(
        default=3600.0,
        ge=0,
        description="A window schedule whose watermark trails the clock by more is flagged as lagging (0: never).",
    )

    # Import requests as messages on a Redis Stream (see triggers.messages.stream_consumer).
    stream_enabled: bool = Field(default=True, description="Run the stream consumer inside each worker.")
    stream_name: str = Field(default="dsimport:requests", min_length=1, description="Stream of import requests.")
    stream_redis_url: str = Field(default="", description="Redis holding the stream; the broker's if empty.")
    stream_group: str = Field(default="dsimport", min_length=1, description="Consumer group of the workers.")
    stream_batch_size: int = Field(default=50, ge=1, le=1000, description="Entries read per XREADGROUP.")
    stream_block_s: float = Field(
        default=1.0, gt=0, le=30, description="Longest wait for new entries; bounds how long a stop takes."
    )
    stream_claim_min_idle_s: float = Field(
        default=60.0, gt=0, description="An entry pending this long is taken over from its (dead) consumer."
    )
    stream_claim_interval_s: float = Field(default=10.0, gt=0, description="How often to look for such entries.")
    stream_backoff_max_s: float = Field(default=30.0, gt=0, description="Cap of the reconnect backoff.")
    stream_trim_interval_s: float = Field(
        default=60.0, gt=0, description="How often a consumer trims acknowledged entries from the stream."
    )
    message_max_bytes: int = Field(default=64 * 1024, ge=256, description="Larger message bodies are refused.")
    dead_letter_stream: str = Field(
        default="dsimport:dead-letters", min_length=1, description="Stream that refused messages are copied to."
    )
    dead_letter_stream_maxlen: int = Field(
        default=100_000, ge=1, description="Approximate cap of the dead-letter stream (the table keeps all)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values (arguments, environment, .env) > a live `dsimport up` in the same home > the defaults.
        stack = (StackFileSettingsSource(settings_cls),) if cls._reads_stack_file else ()
        return init_settings, env_settings, dotenv_settings, *stack, file_secret_settings

    @field_validator("ui_user")
    @classmethod
    def _user_has_no_colon(cls, value: str) -> str:
        # Basic auth joins user and password with a colon; one in the user name cannot be sent.
        if ":" in value:
            raise ValueError("the login cannot contain ':'")
        return value

    @field_validator("prune_older_than_s", mode="before")
    @classmethod
    def _prune_off_when_empty(cls, value: Any) -> Any:
        return 0.0 if value is None or (isinstance(value, str) and not value.strip()) else value

    @field_validator("prune_older_than_s")
    @classmethod
    def _prune_keeps_a_day(cls, value: float) -> float:
        if 0 < value < MIN_RETENTION_S:
            raise ValueError(f"must be 0 (off) or at least {MIN_RETENTION_S:.0f} s (one day), got {value:g}")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_is_redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ValueError(f"broker URL must be a redis:// URL, got {mask_url(value)!r}")
        problem = _redis_url_problem(value)
        if problem is not None:
            raise ValueError(f"broker URL {mask_url(value)!r} is malformed: {problem}")
        return value

    @field_validator("stream_redis_url")
    @classmethod
    def _stream_is_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"stream Redis URL must be a redis:// URL, got {mask_url(value)!r}")
        problem = _redis_url_problem(value) if value else None
        if problem is not None:
            raise ValueError(f"stream Redis URL {mask_url(value)!r} is malformed: {problem}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_is_supported(cls, value: str) -> str:
        # Refused here, the mistake is one line naming the setting; later it is a traceback from SQLAlchemy.
        if not value:
            return value
        try:
            url = make_url(value)
            url.port  # noqa: B018  (a port that is not a number fails here)
        except (ArgumentError, ValueError):
            raise ValueError(f"{mask_url(value)!r} is not a database URL: {_DATABASE_URL_FORMS}") from None
        if url.drivername not in _DATABASE_DRIVERS:
            raise ValueError(f"unsupported database {url.drivername!r}: {_DATABASE_URL_FORMS}")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _api_is_http(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"API base URL must be an http(s):// URL, got {mask_url(value)!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_is_known(cls, value: str) -> str:
        # Celery, uvicorn and Flower each refuse an unknown level in their own way, some with a traceback.
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(_LOG_LEVELS)}, got {value!r}")
        return level

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # A repr reaches logs, tracebacks and Flower (a worker's configuration, shown to anyone logged in to Flower,
        # holds these settings): URL passwords are masked there as everywhere else.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name in _URL_FIELDS and isinstance(value, str) else value

    def engine_options(self) -> dict[str, float]:
        """Keyword arguments of :func:`store.db.make_engine` that come from the settings."""
        return {"busy_timeout_s": self.db_busy_timeout_s, "locked_retry_s": self.db_locked_retry_s}

    def resolved_stream_redis_url(self) -> str:
        """The Redis holding the request stream: ``stream_redis_url``, else the broker's."""
        url = self.stream_redis_url or self.broker_url
        # kombu spells a Unix socket redis+socket://; redis-py spells it unix://.
        return "unix://" + url.removeprefix("redis+socket://") if url.startswith("redis+socket://") else url

    @model_validator(mode="after")
    def _calls_fit_in_a_lease(self) -> Settings:
        budget_s = self.api_timeout_s * self.api_max_attempts
        if budget_s >= self.lease_s:
            raise ValueError(
                f"api_timeout_s x api_max_attempts ({self.api_timeout_s:g} x {self.api_max_attempts} = {budget_s:g} s)"
                f" must be below lease_s ({self.lease_s:g} s): a call made under a lease must end before another"
                " worker may take the job over"
            )
        return self

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'ledger.db').resolve()}"
        self.api_base_url = self.api_base_url.rstrip("/")
        return self

    def resolved_api_key(self) -> SecretStr | None:
        """The key from the environment, else from ``api_key_file``; None when neither is set."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"cannot read the API key file {self.api_key_file}: {exc.strerror}"
                ) from exc
            if text:
                return SecretStr(text)
        return None

    def require_api_key(self) -> SecretStr:
        """The key, or a one-line error naming both ways to provide it."""
        key = self.resolved_api_key()
        if key is None:
            raise SettingsError(
                f"no API key for {self.api_base_url}: set MISTRAL_API_KEY or DSIMPORT_API_KEY_FILE"
            )
        return key

    def public_summary(self) -> dict[str, Any]:
        """Settings safe to print: URLs masked, the key reduced to whether it is set."""
        return {
            "home": str(self.home),
            "database_url": mask_url(self.database_url),
            "broker_url": mask_url(self.broker_url),
            "api_base_url": self.api_base_url,
            "api_key": "set" if self.api_key is not None or self.api_key_file is not None else "not set",
        }


class StackFileSettingsSource(PydanticBaseSettingsSource):
    """The broker, ledger and API of the ``dsimport up`` running from the home the explicit settings name (see
    :mod:`worker.stack_file`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the whole layer is built at once in __call__

    def __call__(self) -> dict[str, Any]:
        explicit = self.current_state
        home = explicit.get("home") or self.settings_cls.model_fields["home"].default
        return settings_from_stack(explicit, Path(home))


class _SettingsWithoutStack(Settings):
    _reads_stack_file: ClassVar[bool] = False


def mask_url(url: str) -> str:
    """Hide the password of a URL (``redis://:secret@host`` -> ``redis://:***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    # Read the user part as written: a URL with a malformed port must be masked too (it is shown in the error).
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _redis_url_problem(url: str) -> str | None:
    """What redis-py or kombu would choke on later (a port or database number that is not one), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError as exc:
        return str(exc)
    database = parts.path.strip("/")
    if parts.scheme in ("redis", "rediss") and database and not database.isdigit():
        return f"the database {database!r} is not a number"
    return None


def load_settings(*, stack_file: bool = True, **overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into one readable line.

    ``stack_file=False`` leaves out a running stack's file: ``dsimport up`` starts from the environment alone.
    """
    from pydantic import ValidationError

    try:
        return Settings(**overrides) if stack_file else _SettingsWithoutStack(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:
            # A rule that ties several settings together names them in its message.
            raise SettingsError(f"invalid settings: {message}") from None
        where = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"invalid setting {where}: {message}") from None
