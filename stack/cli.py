"""The `glucobridge` command."""

from __future__ import annotations

import signal
from types import FrameType

import click

from stack import logs
from stack.decode_cmd import decode
from stack.metrics_cmd import metrics


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so `finally` blocks stop what this process started."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.group()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def cli(log_level: str) -> None:
    """glucobridge: home blood-glucose readings to the people who act on them."""
    logs.configure(log_level)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied (GLUCOBRIDGE_DATABASE_URL)."""
    from core import db as schema
    from core.settings import DatabaseSettings

    applied = schema.upgrade(DatabaseSettings().database_url)
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@cli.command()
def ingest() -> None:
    """Consume reading batches from the broker into TimescaleDB."""
    from core.settings import IngestSettings
    from ingest.worker import Worker

    worker = Worker(IngestSettings())
    _stop_on_sigterm()
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


@cli.command()
def api() -> None:
    """Serve the HTTP API (GLUCOBRIDGE_HOST, GLUCOBRIDGE_PORT)."""
    import uvicorn

    from api.app import create_app
    from core.settings import ApiSettings

    settings = ApiSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


@cli.command()
def demo() -> None:
    """Start the whole system on this machine with demo patients; Ctrl-C stops it."""
    from stack.demo import run

    _stop_on_sigterm()
    try:
        run()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


cli.add_command(decode)
cli.add_command(metrics)


def main() -> None:
    cli(prog_name="glucobridge")


if __name__ == "__main__":
    main()
