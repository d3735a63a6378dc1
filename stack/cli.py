"""The `glucobridge` command."""

from __future__ import annotations

import contextlib
import importlib
import signal
from types import FrameType

import click

from stack import logs

# Commands whose modules pull in heavy libraries (numpy, bumble) are imported only when run,
# so that an ingest worker does not carry them in its memory.
LAZY_COMMANDS = {
    "bridge": "stack.bridge_cmd:bridge",
    "decode": "stack.decode_cmd:decode",
    "metrics": "stack.metrics_cmd:metrics",
}


class LazyGroup(click.Group):
    """A group whose LAZY_COMMANDS are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, name = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so `finally` blocks stop what this process started."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.group(cls=LazyGroup)
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


@cli.group()
def broker() -> None:
    """The broker's roles and its initial dynamic-security configuration."""


@broker.command("roles")
def broker_roles() -> None:
    """Print the role table every broker configuration is generated from."""
    from core.broker_roles import describe

    click.echo(describe())


@broker.command("init")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option(
    "--ingest-workers",
    type=click.IntRange(1, 1024),
    default=4,
    show_default=True,
    help="Ingest worker users to create (ingest-0 ...); one per worker index you run.",
)
def broker_init(path: str, ingest_workers: int) -> None:
    """Write Mosquitto's dynamic-security file for a new broker, with fresh passwords.

    The passwords are printed once (the file keeps only their hashes): give the admin's to
    the API (GLUCOBRIDGE_MQTT_ADMIN_URL), the ingest one to the ingest workers and the
    alerts one to the alerts worker (GLUCOBRIDGE_MQTT_URL).
    """
    from pathlib import Path

    from core.broker_roles import ADMIN_USER, ALERTS_USER, INGEST_USER, ServicePasswords
    from stack.mosquitto import write_dynsec_config

    target = Path(path)
    if target.exists():
        raise click.ClickException(f"{path} exists; the broker keeps its clients there")
    passwords = ServicePasswords.generate()
    write_dynsec_config(target, passwords, ingest_workers=ingest_workers)
    click.echo(f"wrote {path}")
    click.echo(f"{ADMIN_USER} (API, GLUCOBRIDGE_MQTT_ADMIN_URL): {passwords.admin}")
    click.echo(
        f"{INGEST_USER} (workers {INGEST_USER}-0..{ingest_workers - 1},"
        f" GLUCOBRIDGE_MQTT_URL user {INGEST_USER}): {passwords.ingest}"
    )
    click.echo(f"{ALERTS_USER} (alerts worker, GLUCOBRIDGE_MQTT_URL): {passwords.alerts}")


@broker.command("rabbitmq-definitions")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--ingest-workers", type=click.IntRange(1, 1024), default=4, show_default=True)
@click.option("--bridge", "bridges", multiple=True, help="A bridge id to provision (repeatable).")
def broker_rabbitmq_definitions(path: str, ingest_workers: int, bridges: tuple[str, ...]) -> None:
    """Write RabbitMQ definitions for a new cluster (GLUCOBRIDGE_BROKER=rabbitmq): users,
    permissions, the readings quorum queue, the alternate exchange; import them once all
    nodes have joined (`rabbitmqctl import_definitions PATH`). Passwords are printed once."""
    import json
    import secrets
    from pathlib import Path

    from core.rabbit_roles import bridge_definitions
    from stack.rabbitmq import ADMIN_USER, service_definitions

    target = Path(path)
    if target.exists():
        raise click.ClickException(f"{path} exists")
    admin, ingest, alerts = (secrets.token_urlsafe(24) for _ in range(3))
    definitions = service_definitions(admin, ingest, alerts, ingest_workers=ingest_workers)
    passwords = {b: secrets.token_urlsafe(24) for b in bridges}
    for bridge_id, password in passwords.items():
        for key, values in bridge_definitions(bridge_id, password).items():
            definitions[key] += values
    target.touch(mode=0o600)
    target.write_text(json.dumps(definitions, indent=2))
    click.echo(f"wrote {path}")
    click.echo(f"{ADMIN_USER} (administrator): {admin}")
    click.echo(f"ingest (workers ingest-0..{ingest_workers - 1}, GLUCOBRIDGE_AMQP_URL): {ingest}")
    click.echo(f"alerts: {alerts}")
    for bridge_id, password in passwords.items():
        click.echo(f"bridge {bridge_id}: {password}")


@cli.group()
def user() -> None:
    """API accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option(
    "--role",
    default="admin",
    show_default=True,
    type=click.Choice(["admin", "clinic_admin", "clinician", "nutritionist", "caregiver"]),
)
@click.password_option(help="prompted for when not given (GLUCOBRIDGE_USER_PASSWORD)")
def user_create(email: str, display_name: str, role: str, password: str) -> None:
    """Create an account, e.g. the first admin (GLUCOBRIDGE_DATABASE_URL)."""
    import psycopg

    from api.auth import INSERT_USER, MIN_PASSWORD_LENGTH, hash_password
    from core.settings import DatabaseSettings

    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"at least {MIN_PASSWORD_LENGTH} characters", param_hint="password"
        )
    with psycopg.connect(DatabaseSettings().database_url) as conn:
        row = conn.execute(
            INSERT_USER,
            {"email": email, "name": display_name, "role": role, "hash": hash_password(password)},
        ).fetchone()
    if row is None:
        raise click.ClickException(f"an account with the address {email} exists")
    click.echo(f"created {role} {email}: {row[0]}")


@cli.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes on this machine, sharing the subscription.",
)
@click.option(
    "--index",
    type=click.IntRange(0, 1023),
    default=0,
    show_default=True,
    help="This worker's number: its broker session and metrics port follow it.",
)
def ingest(workers: int, index: int) -> None:
    """Consume reading batches from the broker into TimescaleDB."""
    from core.settings import IngestSettings
    from ingest.amqp_worker import AmqpWorker
    from ingest.worker import Worker
    from stack.workers import supervise

    settings = IngestSettings()
    if workers > 1:
        _stop_on_sigterm()
        with contextlib.suppress(KeyboardInterrupt):
            supervise(workers)
        return
    worker = (
        AmqpWorker(settings, index) if settings.broker == "rabbitmq" else Worker(settings, index)
    )
    if settings.metrics_port:
        worker.metrics.serve(settings.metrics_port + index)
    # Ctrl-C or SIGTERM: finish the batch in hand, then stop (its session stays).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _s, _f: worker.stop())
    worker.run()


@cli.command()
def alerts() -> None:
    """Raise alerts from new readings and deliver them (webhooks, MQTT)."""
    from core.settings import AlertsSettings
    from ingest.alerts.worker import AlertsWorker

    worker = AlertsWorker(AlertsSettings())
    _stop_on_sigterm()
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


@cli.command()
def api() -> None:
    """Serve the HTTP API (GLUCOBRIDGE_HOST, GLUCOBRIDGE_PORT)."""
    import uvicorn

    from api.app import server_config
    from core.settings import ApiSettings

    uvicorn.Server(server_config(ApiSettings())).run()


@cli.command()
def demo() -> None:
    """Start the whole system on this machine with demo patients; Ctrl-C stops it."""
    from stack.demo import run

    _stop_on_sigterm()
    try:
        run()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@cli.command()
def cluster() -> None:
    """Start the clustered deployment here: three RabbitMQ nodes, the database, two ingest
    workers and the API, on loopback; Ctrl-C stops it."""
    from stack.cluster import run

    _stop_on_sigterm()
    try:
        run()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


def main() -> None:
    cli(prog_name="glucobridge")


if __name__ == "__main__":
    main()
