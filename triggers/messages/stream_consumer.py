"""Import requests read from a Redis Stream with a consumer group.

Producers need nothing but Redis: ``XADD dsimport:requests * body '{"id": …, "kind": …}'``. Every worker runs one
:class:`StreamConsumer` (a thread of its main process) in the same group, so each entry goes to one of them.

Guarantees:

- At least once. An entry is acknowledged (``XACK``) only after its job or dead-letter row is committed. An
  entry whose consumer died before that stays pending and is taken over with ``XAUTOCLAIM`` once idle for
  ``claim_min_idle_ms``; the same happens to an entry whose processing failed (database down), so it is retried.
- No duplicate imports. The message ``id`` is the job's idempotency key, so an entry processed twice (or the same
  message sent twice) finds the first job.
- Nothing blocks the stream. A bad entry (no body, too large, not UTF-8, not JSON, not a valid request) becomes a
  dead letter: a row in ``dead_letters`` and a copy on the dead-letter stream, written and acknowledged together.
- The loop survives Redis errors (reconnect with capped, jittered backoff) and stops within one ``block_ms``.
- The stream does not grow for ever. Every ``trim_interval_s`` a consumer trims the entries every group of the
  stream is done with (:func:`trim_acknowledged`): never one still pending (read, not acknowledged) nor one not yet
  delivered, so trimming cannot lose a request.

Counters are kept per consumer (:attr:`StreamConsumer.stats`) and summed across consumers in the Redis hash
``<stream>:stats`` (:func:`read_stats`), incremented in the same transaction as the acknowledgement.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from store import guarantees
from triggers.messages.intake import Intake, IntakeEntry, IntakeResult, Outcome, kept_body

__all__ = [
    "BODY_FIELD",
    "ConsumerStats",
    "StreamConfig",
    "StreamConsumer",
    "claim_stale",
    "ensure_group",
    "forget_idle_consumers",
    "process_entries",
    "process_entry",
    "read_stats",
    "stats_key",
    "trim_acknowledged",
]

log = logging.getLogger(__name__)

BODY_FIELD = b"body"
# A consumer gone this long with nothing pending is forgotten, so the group's consumer list does not grow with
# every worker restart. One that is in fact alive is re-created by its next read.
_FORGET_CONSUMER_IDLE_MS = 3_600_000
_MAX_CLAIM_PAGES = 10

Entry = tuple[bytes, dict[bytes, bytes] | None]


@dataclass(frozen=True)
class StreamConfig:
    """Where and how a consumer reads; durations in milliseconds where Redis takes milliseconds."""

    stream: str
    group: str
    consumer: str
    dead_letter_stream: str
    dead_letter_maxlen: int = 100_000
    batch_size: int = 50
    block_ms: int = 1000
    claim_min_idle_ms: int = 60_000
    claim_interval_s: float = 10.0
    trim_interval_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    @property
    def source(self) -> str:
        """A job's origin and a dead letter's ``stream`` for entries of this stream."""
        return f"stream:{self.stream}"


def stats_key(stream: str) -> str:
    """The Redis hash holding the counters of every consumer of ``stream``."""
    return f"{stream}:stats"


def read_stats(client: redis.Redis, stream: str) -> dict[str, int]:
    """The counters summed over every consumer of ``stream`` (processed, created, duplicate, dead_lettered)."""
    raw: Any = client.hgetall(stats_key(stream))
    counts = {str(outcome): 0 for outcome in Outcome}
    counts["processed"] = 0
    counts.update({key.decode(): int(value) for key, value in raw.items()})
    return counts


def ensure_group(client: redis.Redis, config: StreamConfig) -> None:
    """Create the stream and the group if missing.

    The group starts at the stream's beginning (``0``), not at its end: entries written before any worker ever
    ran are requests too.
    """
    try:
        client.xgroup_create(config.stream, config.group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _fields_as_json(fields: dict[bytes, bytes]) -> bytes:
    # An entry without a body is kept as its fields, so whoever reads the dead letter sees what was sent.
    decoded = {
        key.decode("utf-8", "backslashreplace"): value.decode("utf-8", "backslashreplace")
        for key, value in fields.items()
    }
    return json.dumps(decoded, ensure_ascii=False).encode("utf-8")


def process_entry(
    client: redis.Redis, intake: Intake, config: StreamConfig, entry_id: bytes, fields: dict[bytes, bytes] | None
) -> IntakeResult | None:
    """Turn one entry into a job or a dead letter, then acknowledge it; None for an entry deleted meanwhile.

    The ledger row is committed by ``intake`` first; the dead-letter copy, the acknowledgement and the counters
    then go in one MULTI, so an entry is never acknowledged without its row nor copied twice.

    :raises redis.RedisError: acknowledging failed; the entry stays pending and will be processed again.
    :raises Exception: anything ``intake`` raises (database errors); the entry stays pending likewise.
    """
    entry = entry_id.decode()
    counters = stats_key(config.stream)
    if not fields:
        # Trimmed or deleted after it was delivered: nothing to import, nothing to keep.
        client.xack(config.stream, config.group, entry_id)
        return None
    body = fields.get(BODY_FIELD)
    fallback = b"" if body is not None else _fields_as_json(fields)
    if not guarantees.enabled("ack-after-commit"):  # a mutation run only: an entry whose commit fails is lost
        client.xack(config.stream, config.group, entry_id)
    result = intake.accept(body, source=config.source, entry_id=entry, fallback_body=fallback)
    pipe = client.pipeline(transaction=True)
    if result.outcome is Outcome.DEAD_LETTERED:
        copy = _dead_letter_copy(IntakeEntry(body, entry, fallback), result, config=config, max_bytes=intake.max_bytes)
        pipe.xadd(config.dead_letter_stream, copy, maxlen=config.dead_letter_maxlen, approximate=True)
    pipe.xack(config.stream, config.group, entry_id)
    pipe.hincrby(counters, "processed", 1)
    pipe.hincrby(counters, str(result.outcome), 1)
    pipe.execute()
    _log_outcome(entry, result)
    return result


def process_entries(
    client: redis.Redis, intake: Intake, config: StreamConfig, entries: Sequence[Entry]
) -> list[IntakeResult | None]:
    """:func:`process_entry` for a whole read: one ledger transaction for the valid entries' jobs, one submit
    message for them, then one MULTI that copies the dead letters, acknowledges every entry and counts.

    Same guarantees as one entry at a time: nothing is acknowledged before its row is committed, and a failure
    before the MULTI leaves every entry of the read pending, to be processed again (their message ids find the
    jobs already written).
    """
    counters = stats_key(config.stream)
    ids = [entry_id for entry_id, _fields in entries]
    live = [(entry_id, fields) for entry_id, fields in entries if fields]
    if not guarantees.enabled("ack-after-commit"):  # a mutation run only: an entry whose commit fails is lost
        client.xack(config.stream, config.group, *ids)
    wanted = []
    for entry_id, fields in live:
        body = fields.get(BODY_FIELD)
        wanted.append(IntakeEntry(body, entry_id.decode(), b"" if body is not None else _fields_as_json(fields)))
    results = intake.accept_many(wanted, source=config.source)
    pipe = client.pipeline(transaction=True)
    outcomes: dict[str, int] = {}
    for entry, result in zip(wanted, results, strict=True):
        outcomes[str(result.outcome)] = outcomes.get(str(result.outcome), 0) + 1
        if result.outcome is Outcome.DEAD_LETTERED:
            pipe.xadd(
                config.dead_letter_stream,
                _dead_letter_copy(entry, result, config=config, max_bytes=intake.max_bytes),
                maxlen=config.dead_letter_maxlen,
                approximate=True,
            )
    pipe.xack(config.stream, config.group, *ids)
    if live:
        pipe.hincrby(counters, "processed", len(live))
    for outcome, count in outcomes.items():
        pipe.hincrby(counters, outcome, count)
    pipe.execute()
    for entry, result in zip(wanted, results, strict=True):
        _log_outcome(entry.entry_id or "", result)
    by_id = dict(zip((entry_id for entry_id, _ in live), results, strict=True))
    return [by_id.get(entry_id) for entry_id in ids]


def _dead_letter_copy(
    entry: IntakeEntry, result: IntakeResult, *, config: StreamConfig, max_bytes: int
) -> dict[Any, Any]:
    """The copy of a refused entry put on the dead-letter stream."""
    copy: dict[Any, Any] = {
        "body": kept_body(entry.body, fallback=entry.fallback_body, max_bytes=max_bytes),
        "reason": result.reason or "",
        "stream": config.stream,
        "entry_id": entry.entry_id or "",
        "dead_letter_id": str(result.dead_letter_id),
    }
    if result.message_id is not None:
        copy["message_id"] = result.message_id
    return copy


def _log_outcome(entry: str, result: IntakeResult) -> None:
    if result.outcome is Outcome.DEAD_LETTERED:
        log.warning(
            "stream entry %s dead-lettered as %s: %s",
            entry,
            result.dead_letter_id,
            result.reason,
            extra={"entry_id": entry},
        )
    else:
        log.info(
            "stream entry %s (message %s): job %s %s",
            entry,
            result.message_id,
            result.job_id,
            result.outcome,
            extra={"job_id": result.job_id},
        )


def claim_stale(client: redis.Redis, config: StreamConfig) -> list[Entry]:
    """Take over entries pending longer than ``claim_min_idle_ms`` (their consumer died, or failed on them)."""
    claimed: list[Entry] = []
    start: bytes | str = "0-0"
    for _ in range(_MAX_CLAIM_PAGES):
        reply: Any = client.xautoclaim(
            config.stream,
            config.group,
            config.consumer,
            min_idle_time=config.claim_min_idle_ms,
            start_id=start,
            count=config.batch_size,
        )
        next_start, entries = reply[0], reply[1]
        claimed.extend((entry_id, fields) for entry_id, fields in entries)
        if next_start in (b"0-0", "0-0"):
            break
        start = next_start
    return claimed


def forget_idle_consumers(client: redis.Redis, config: StreamConfig) -> list[str]:
    """Remove consumers of the group that hold nothing and have not been seen for an hour."""
    forgotten = []
    consumers: Any = client.xinfo_consumers(config.stream, config.group)
    for consumer in consumers:
        name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else str(consumer["name"])
        if name != config.consumer and consumer["pending"] == 0 and consumer["idle"] > _FORGET_CONSUMER_IDLE_MS:
            client.xgroup_delconsumer(config.stream, config.group, name)
            forgotten.append(name)
    return forgotten


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def trim_acknowledged(client: redis.Redis, stream: str) -> int:
    """Delete the entries of ``stream`` that every consumer group has read and acknowledged; returns how many.

    For each group, what must stay starts at its oldest pending entry (read but not acknowledged: it may be
    claimed and processed again), or, with nothing pending, just after its last-delivered id (everything later is
    still to be read). The stream is trimmed (``XTRIM MINID``) below the lowest of these over all groups, so a
    second group reading the same stream loses nothing either. A stream without groups is left alone.

    Nothing can slip below the floor between the reads and the trim: new entries and new deliveries have ids above
    each group's last-delivered id, and a claim only moves an entry that is already pending. Only an operator
    moving a group back (``XGROUP SETID``) or a group created meanwhile could ask for trimmed entries again.
    """
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream yet
        return 0
    floor: tuple[int, int] | None = None
    for group in groups:
        last = _stream_id(group["last-delivered-id"])
        keep_from = (last[0], last[1] + 1)
        if group["pending"]:
            summary: Any = client.xpending(stream, group["name"])
            if summary.get("min") is not None:
                keep_from = min(keep_from, _stream_id(summary["min"]))
        floor = keep_from if floor is None else min(floor, keep_from)
    if floor is None or floor <= (0, 1):
        return 0
    return int(client.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False))


@dataclass
class ConsumerStats:
    """What one consumer did since it started; safe to read from another thread."""

    processed: int = 0
    created: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    claimed: int = 0
    trimmed: int = 0
    errors: int = 0
    reconnects: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}


class StreamConsumer:
    """The read loop: own pending entries after (re)connecting, stale ones of others now and then, new ones."""

    def __init__(
        self,
        connect: Callable[[], redis.Redis],
        intake: Intake,
        config: StreamConfig,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._connect = connect
        self._intake = intake
        self.config = config
        self.stats = ConsumerStats()
        self._stop = threading.Event()
        self._clock = clock or time.monotonic
        self._next_claim = 0.0
        self._next_trim = 0.0
        self.ready = threading.Event()
        """Set once the group exists and the first read is about to happen (tests wait on it)."""

    def stop(self) -> None:
        """Ask the loop to end; it does within one blocking read."""
        self._stop.set()

    def run(self) -> None:
        """Consume until :meth:`stop`; never raises."""
        backoff = self.config.backoff_initial_s
        client: redis.Redis | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._connect()
                    ensure_group(client, self.config)
                    self._handle(client, self._own_pending(client))
                    self.ready.set()
                failed = self.poll(client)
                if failed:
                    self._pause(backoff)
                    backoff = min(backoff * 2, self.config.backoff_max_s)
                else:
                    backoff = self.config.backoff_initial_s
            except redis.RedisError as exc:
                self.stats.add("reconnects")
                log.warning("stream consumer: Redis error (%s); reconnecting in %.1f s", exc, backoff)
                _close(client)
                client = None
                self._pause(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_s)
            except Exception:  # a bug must not end the loop; the entry in hand stays pending
                self.stats.add("errors")
                log.exception("stream consumer: unexpected error; retrying in %.1f s", backoff)
                self._pause(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_s)
        _close(client)
        log.info("stream consumer %s stopped: %s", self.config.consumer, self.stats.snapshot())

    def poll(self, client: redis.Redis) -> int:
        """One round: stale entries and trimming if it is time, then new entries (waiting up to ``block_ms``).

        Returns how many entries failed (they stay pending).
        """
        failed = 0
        if self._clock() >= self._next_claim:
            self._next_claim = self._clock() + self.config.claim_interval_s
            stale = claim_stale(client, self.config)
            if stale:
                self.stats.add("claimed", len(stale))
                log.info("stream consumer: took over %d stale entries", len(stale))
                failed += self._handle(client, stale)
            forget_idle_consumers(client, self.config)
        if self._clock() >= self._next_trim:
            self._next_trim = self._clock() + self.config.trim_interval_s
            trimmed = trim_acknowledged(client, self.config.stream)
            if trimmed:
                self.stats.add("trimmed", trimmed)
                log.debug("stream consumer: trimmed %d acknowledged entries", trimmed)
        reply: Any = client.xreadgroup(
            self.config.group,
            self.config.consumer,
            {self.config.stream: ">"},
            count=self.config.batch_size,
            block=self.config.block_ms,
        )
        for _stream, entries in reply or []:
            failed += self._handle(client, entries)
        return failed

    def _own_pending(self, client: redis.Redis) -> list[Entry]:
        # Entries this consumer read but did not acknowledge before its connection broke.
        pending: list[Entry] = []
        last: bytes | str = "0"
        while True:
            reply: Any = client.xreadgroup(
                self.config.group, self.config.consumer, {self.config.stream: last}, count=self.config.batch_size
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return pending
            pending.extend(entries)
            last = entries[-1][0]

    def _handle(self, client: redis.Redis, entries: Iterable[Entry]) -> int:
        batch = list(entries)
        if len(batch) > 1:
            try:
                results = process_entries(client, self._intake, self.config, batch)
            except redis.RedisError:
                raise
            except Exception:
                # Often one entry the batch cannot take (or the database is down): each on its own then, so a
                # bad one stays pending alone and the others go through.
                log.warning("stream consumer: a batch of %d failed; processing its entries one by one", len(batch))
            else:
                self._count(results)
                return 0
        return self._handle_each(client, batch)

    def _count(self, results: Iterable[IntakeResult | None]) -> None:
        for result in results:
            if result is None:
                self.stats.add("deleted")
            else:
                self.stats.add("processed")
                self.stats.add(str(result.outcome))

    def _handle_each(self, client: redis.Redis, entries: Iterable[Entry]) -> int:
        failed = 0
        for entry_id, fields in entries:
            try:
                result = process_entry(client, self._intake, self.config, entry_id, fields)
            except redis.RedisError:
                raise
            except Exception:
                failed += 1
                self.stats.add("errors")
                log.exception(
                    "stream entry %s could not be processed; it stays pending and will be retried",
                    entry_id.decode(),
                )
                continue
            self._count([result])
        return failed

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds * random.uniform(0.5, 1.0))


def _close(client: redis.Redis | None) -> None:
    if client is None:
        return
    try:
        client.close()
    except redis.RedisError:
        pass
