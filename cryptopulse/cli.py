"""The `cryptopulse` command. Heavy modules are imported inside each command so
`cryptopulse --help` stays instant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from cryptopulse.config import Settings, load_settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.log import setup_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
kafka_app = typer.Typer(no_args_is_help=True, help="The local Apache Kafka broker (KRaft).")
app.add_typer(kafka_app, name="kafka")
console = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except Exception as exc:  # pydantic's ValidationError lists every bad field
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    setup_logging(settings.log_level, rich=sys.stderr.isatty())
    return settings


def _fail(exc: CryptoPulseError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def setup(
    skip_web: Annotated[bool, typer.Option(help="Do not install or build the web app.")] = False,
    skip_browser: Annotated[bool, typer.Option(help="Do not install Chromium.")] = False,
) -> None:
    """Install what the pipeline needs: Kafka and connector jars, web app, Chromium."""
    from cryptopulse.platform.provision import provision_all

    settings = _settings()
    try:
        provision_all(settings, web=not skip_web, browser=not skip_browser, console=console)
    except CryptoPulseError as exc:
        raise _fail(exc) from exc


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local broker in the background (formats storage on first start)."""
    from cryptopulse.platform.kafka import LocalKafka

    settings = _settings()
    broker = LocalKafka.from_settings(settings)
    try:
        if broker.running():
            console.print(f"Kafka is already running (pid {broker.pid()}, {broker.bootstrap}).")
            return
        with console.status(f"Starting Kafka on {broker.bootstrap} ..."):
            broker.start()
        console.print(
            f"[green]Kafka is ready[/green] on {broker.bootstrap} (log: {broker.log_file})"
        )
    except CryptoPulseError as exc:
        raise _fail(exc) from exc


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker cleanly."""
    from cryptopulse.platform.kafka import LocalKafka

    broker = LocalKafka.from_settings(_settings())
    if not broker.running():
        console.print("Kafka is not running.")
        return
    with console.status("Stopping Kafka ..."):
        broker.stop()
    console.print("Kafka stopped.")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs, where, and its topics."""
    from cryptopulse.platform.kafka import LocalKafka

    broker = LocalKafka.from_settings(_settings())
    if not broker.running():
        console.print(f"Kafka is not running (data: {broker.data_dir}).")
        raise typer.Exit(3)
    topics = ", ".join(sorted(broker.topics())) or "none"
    console.print(f"Kafka is running: pid {broker.pid()}, {broker.bootstrap}, topics: {topics}")


@app.command("schema")
def schema_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
) -> None:
    """Print the JSON Schema of every data contract (the web app's types come from it)."""
    from cryptopulse.schema import json_schema

    text = orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(text)


if __name__ == "__main__":
    app()
