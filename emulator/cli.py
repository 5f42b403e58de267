"""``dsimport emulator`` / ``python -m emulator``: serve the emulator with uvicorn."""

from __future__ import annotations

import math
from pathlib import Path

import click

from .config import ConfigError, EmulatorSettings, Knobs, parse_duration

__all__ = ["emulator_command"]


def _not_nan(_: click.Context, __: click.Parameter, value: float) -> float:
    # NaN compares false with both bounds, so click's FloatRange lets it through.
    if math.isnan(value):
        raise click.BadParameter("nan is not a number")
    return value


def _duration(_: click.Context, __: click.Parameter, value: str) -> tuple[float, float]:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--seed", default=None, metavar="demo|PATH.json", help="Start-up world: the demo or a fixture.")
@click.option(
    "--state",
    "state_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Load the world from FILE if it exists; save it there on shutdown and on POST /_emulator/save.",
)
@click.option(
    "--task-duration",
    default="2",
    show_default=True,
    callback=_duration,
    metavar="SECONDS|LOW-HIGH",
    help="How long an import task runs: fixed (2) or drawn from a range (1-5).",
)
@click.option(
    "--failure-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    callback=_not_nan,
    help="Probability that an import task ends FAILED.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    callback=_not_nan,
    help="Latency added to every API request.",
)
@click.option(
    "--removed-import-routes",
    default="served",
    show_default=True,
    type=click.Choice(["served", "gone"]),
    help="from-campaign / from-explorer imports: served (the 2.5.0 API) or gone (today's API: 404).",
)
@click.option(
    "--dedupe-imports",
    is_flag=True,
    default=False,
    help="Skip records whose origin the target already holds (an inference). Off: imported twice is two records.",
)
@click.option(
    "--api-key",
    envvar="EMULATOR_API_KEY",
    default=None,
    show_envvar=True,
    help="Accept only this bearer token (prefer the environment variable). Unset: any token.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def emulator_command(
    host: str,
    port: int,
    seed: str | None,
    state_path: Path | None,
    task_duration: tuple[float, float],
    failure_rate: float,
    latency_ms: float,
    removed_import_routes: str,
    dedupe_imports: bool,
    api_key: str | None,
    log_level: str,
) -> None:
    """Serve a local emulator of Mistral's Observability Datasets API."""
    # The server is imported when it is served, not with the command: `dsimport --help` lists this command.
    import uvicorn

    from .app import build_app
    from .faults import uvicorn_closer
    from .seed import SeedError

    settings = EmulatorSettings(
        api_key=api_key or None,
        seed=seed,
        state_path=state_path,
        knobs=Knobs(
            task_duration_s=task_duration,
            failure_rate=failure_rate,
            latency_ms=latency_ms,
            removed_import_routes=removed_import_routes,
            dedupe_imports=dedupe_imports,
        ),
    )
    try:
        app = build_app(settings)
    except (SeedError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    auth = "only the EMULATOR_API_KEY token" if settings.api_key else "any bearer token"
    click.echo(f"Emulator on http://{host}:{port} (accepts {auth}); Ctrl+C to stop.")
    # uvicorn.run, spelled out to keep the server: a `reset` fault drops its request's connection through it.
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on")
    )
    app.state.emulator.faults.closer = uvicorn_closer(server)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it shut down on; the stop was clean
        pass
    if not server.started:
        raise click.ClickException(f"the emulator could not start on {host}:{port} (see the log above)")
