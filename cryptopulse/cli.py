"""The `cryptopulse` command line."""

# Heavy modules (Spark, Kafka, the API server) are imported inside each command, so that
# `cryptopulse --help` stays instant.

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from cryptopulse.config import Settings, load_settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.log import setup_logging

if TYPE_CHECKING:
    from cryptopulse.producer import StatusReporter, TickProducer
    from cryptopulse.sources import Source

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="CryptoPulse: live crypto market data through Kafka and Spark to a web dashboard. "
    "`cryptopulse up` runs the whole pipeline.",
)
kafka_app = typer.Typer(no_args_is_help=True, help="The local Apache Kafka broker (KRaft).")
app.add_typer(kafka_app, name="kafka")
cluster_app = typer.Typer(
    no_args_is_help=True,
    help="A development and test cluster on this machine: 3 Kafka brokers (KRaft, replication "
    "factor 3, min.insync.replicas 2), a Spark standalone master with 2 workers and 2 API "
    "replicas, to run the pipeline on. Not for production: see docs/DEPLOY.md.",
)
app.add_typer(cluster_app, name="cluster")
console = Console(stderr=True)


def _say_error(label: str, exc: BaseException) -> None:
    """An error message whose text is printed as is (a value may look like rich markup)."""
    console.print(Text.assemble((label, "red"), " ", str(exc)))


def _settings() -> Settings:
    try:
        settings = load_settings()
    except Exception as exc:  # pydantic's ValidationError lists every bad field
        _say_error("Configuration error:", exc)
        raise typer.Exit(2) from exc
    setup_logging(settings.log_level, rich=sys.stderr.isatty())
    return settings


M = TypeVar("M", bound=BaseModel)


def _override(model: M, **values: object) -> M:
    """A copy of a settings section with the options the user gave; bad values exit with code 2."""
    given = {key: value for key, value in values.items() if value is not None}
    try:
        return model.model_validate({**model.model_dump(), **given})
    except ValueError as exc:
        _say_error("Configuration error:", exc)
        raise typer.Exit(2) from exc


def _fail(exc: CryptoPulseError) -> typer.Exit:
    _say_error("error:", exc)
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


@cluster_app.command("up")
def cluster_up() -> None:
    """Start the cluster in the background: 3 Kafka brokers, a Spark master with 2 workers and
    2 API replicas (formats Kafka's storage on first start; starts only what is not running)."""
    from cryptopulse.platform.cluster import LocalCluster

    cluster = LocalCluster.from_settings(_settings())
    try:
        if cluster.running():
            console.print("The cluster is already running.")
        else:
            for what, start in cluster.start_steps():
                with console.status(f"Starting {what} ..."):
                    start()
                console.print(f"[green]ready[/green]: {what}", highlight=False)
            console.print(f"Logs and data: {cluster.kafka.data_dir}")
    except CryptoPulseError as exc:
        raise _fail(exc) from exc
    console.print(
        "Run the pipeline on it with these settings (e.g. `export` them, then `cryptopulse up`); "
        f"dashboards on {' and '.join(cluster.api.urls)}:"
    )
    for key, value in cluster.env().items():
        print(f"{key}={value}")


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop the API replicas, the Spark workers and master, then the brokers, cleanly."""
    from cryptopulse.platform.cluster import LocalCluster

    cluster = LocalCluster.from_settings(_settings())
    if not any(c.running for c in cluster.components()):
        console.print("The cluster is not running.")
        return
    with console.status("Stopping the cluster ..."):
        cluster.down()
    console.print("The cluster stopped.")


@cluster_app.command("status")
def cluster_status() -> None:
    """Each process (pid, address), the Spark workers the master counts alive, and Kafka
    partitions short of in-sync replicas; exit 3 if any process is down."""
    from cryptopulse.platform.cluster import LocalCluster

    cluster = LocalCluster.from_settings(_settings())
    components = cluster.components()
    for c in components:
        state = f"running, pid {c.pid}" if c.running else "stopped"
        console.print(f"{c.name}: {state}, {c.address} (data: {c.folder})", highlight=False)
    if cluster.kafka.running_nodes():
        try:
            states = cluster.kafka.partition_states(list(cluster.kafka.topic_names))
        except CryptoPulseError as exc:
            raise _fail(exc) from exc
        short = [s for s in states if len(s.isr) < len(s.replicas)]
        console.print(
            f"Kafka: {len(states)} partitions of {len(cluster.kafka.topic_names)} topics, "
            f"{len(short)} with fewer in-sync replicas than replicas"
        )
    if cluster.spark.master().running():
        alive = cluster.spark.alive_workers()
        apps = ", ".join(cluster.spark.applications()) or "none"
        console.print(f"Spark: {len(alive)} workers alive, applications: {apps}")
    if any(c.running for c in components):
        for key, value in cluster.env().items():
            print(f"{key}={value}")
    if not all(c.running for c in components):
        raise typer.Exit(3)


@app.command()
def stream(
    window: Annotated[float | None, typer.Option(help="Window length, seconds.")] = None,
    watermark: Annotated[float | None, typer.Option(help="Watermark delay, seconds.")] = None,
    trigger: Annotated[float | None, typer.Option(help="Trigger interval, seconds.")] = None,
    starting_offsets: Annotated[
        str | None, typer.Option(help="earliest or latest (first start only).")
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            help="Written (JSON: pid, started_at) once both queries run; deleted on stop.",
        ),
    ] = None,
) -> None:
    """Run the Spark Structured Streaming job: ticks -> window aggregates (Kafka and the API).

    Exits 0 only after Ctrl-C / SIGTERM; a query that stops by itself exits 1 (restart it).
    """

    from cryptopulse.stream.job import run

    settings = _settings()
    spark = _override(
        settings.spark,
        window_seconds=window,
        watermark_seconds=watermark,
        trigger_seconds=trigger,
        starting_offsets=starting_offsets,
    )
    try:
        run(settings.model_copy(update={"spark": spark}), ready_file=ready_file)
    except CryptoPulseError as exc:
        # Spark's messages can hold anything, brackets included: never read them as markup.
        _say_error("error:", exc)
        raise typer.Exit(1) from exc


# -- options shared by up, produce and record (one name each) ----------------------------------

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="coingecko (default), simulated, replay, binance, coinbase or kraken; several at "
        "once as a comma list, e.g. binance,coinbase,coingecko (replay only alone).",
    ),
]
CoinsOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated CoinGecko ids (default: bitcoin, ethereum and 8 more)."),
]
TopOpt = Annotated[
    int | None, typer.Option(help="CoinGecko: follow the top N coins by market cap instead.")
]
IntervalOpt = Annotated[
    float | None, typer.Option("--poll-interval", help="CoinGecko poll interval, seconds.")
]
SimCoinsOpt = Annotated[
    int | None, typer.Option("--simulated-coins", help="Simulated: number of coins (1-5000).")
]
RateOpt = Annotated[float | None, typer.Option(help="Simulated: ticks per coin per second.")]
SeedOpt = Annotated[
    int | None, typer.Option(help="Simulated: random seed (same seed, same market).")
]
UnpacedOpt = Annotated[
    bool, typer.Option("--unpaced", help="Simulated: as fast as possible (benchmarks).")
]
FileOpt = Annotated[
    Path | None, typer.Option("--replay-file", "-f", help="Replay: the capture (JSON lines).")
]
SpeedOpt = Annotated[
    float | None,
    typer.Option(help="Replay: 1 = recorded speed, 10 = 10x, 0 = as fast as possible."),
]
KeepTimesOpt = Annotated[
    bool,
    typer.Option(
        "--keep-timestamps", help="Replay: keep recorded timestamps (default: shift to now)."
    ),
]
MaxTicksOpt = Annotated[int | None, typer.Option(help="Stop after this many ticks.")]
DurationOpt = Annotated[float | None, typer.Option(help="Stop after this many seconds.")]
NoBackfillOpt = Annotated[
    bool,
    typer.Option(
        "--no-backfill", help="Do not publish the last 24 h as backfill windows at start."
    ),
]


def _coin_list(coins: str | None) -> list[str] | None:
    """`--coins a,b` as a list (None when not given)."""
    return [c.strip() for c in coins.split(",") if c.strip()] if coins else None


def _up_env(overrides: dict[str, object]) -> dict[str, str]:
    """The children's environment: ours plus the command line's settings as CRYPTOPULSE_* vars."""
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is not None:
            env[f"CRYPTOPULSE_{key.upper()}"] = (
                orjson.dumps(value).decode() if isinstance(value, list) else str(value)
            )
    return env


@app.command()
def up(
    source: SourceOpt = None,
    window: Annotated[
        float | None, typer.Option(help="Window length, seconds (e.g. 5 for a demo).")
    ] = None,
    watermark: Annotated[float | None, typer.Option(help="Watermark delay, seconds.")] = None,
    trigger: Annotated[float | None, typer.Option(help="Spark trigger interval, seconds.")] = None,
    coins: CoinsOpt = None,
    simulated_coins: SimCoinsOpt = None,
    rate: RateOpt = None,
    poll_interval: IntervalOpt = None,
    replay_file: FileOpt = None,
    no_backfill: NoBackfillOpt = False,
) -> None:
    """Run the whole pipeline (Kafka, API, Spark job, producer) and print the dashboard URL."""
    from rich.text import Text

    from cryptopulse.process_group import clean_text
    from cryptopulse.supervisor import pipeline_env, run_pipeline

    overrides: dict[str, object] = {
        "producer__source": source,
        "spark__window_seconds": window,
        "spark__watermark_seconds": watermark,
        "spark__trigger_seconds": trigger,
        "producer__coins": _coin_list(coins),
        "producer__simulated_coins": simulated_coins,
        "producer__simulated_rate": rate,
        "producer__poll_interval": poll_interval,
        "producer__replay_file": replay_file.resolve() if replay_file else None,
        "producer__backfill": False if no_backfill else None,
    }
    env = _up_env(overrides)
    os.environ.update(env)
    settings = _settings()  # validates the whole configuration once, before anything starts
    try:
        env = pipeline_env(settings, env)  # never printed: the token is in it
        run_pipeline(settings, env, console)
    except CryptoPulseError as exc:
        # The message may quote a child's log: printed as plain text, never as markup.
        console.print(Text.assemble(("error: ", "red"), clean_text(str(exc), 2000)))
        raise typer.Exit(1) from exc


@app.command()
def down() -> None:
    """Stop a pipeline started by `cryptopulse up` (from another terminal), in under 15 s."""
    from cryptopulse.supervisor import stop_pipeline

    settings = _settings()
    with console.status("Stopping the pipeline ..."):
        result = stop_pipeline(settings)
    summary = result.summary
    if summary is not None:
        line = (
            f"Pipeline stopped in {float(summary['seconds']):.1f} s; "
            f"{int(summary['undelivered'])} ticks undelivered"
        )
        if unreported := int(summary.get("unreported", 0)):
            line += (
                f" ({unreported} producer run(s) ended without a report, e.g. killed:"
                " ticks they held are not counted)"
            )
        console.print(line, markup=False, highlight=False)
    elif result.was_running:
        console.print("Pipeline stopped.")
    elif not result.killed:
        stale = " (a state file from an earlier run was ignored)" if result.stale else ""
        console.print(f"No pipeline is running.{stale}", markup=False)
    if result.killed:
        console.print(
            f"Stopped what was left without its supervisor: {', '.join(result.killed)}",
            markup=False,
        )


@app.command()
def status() -> None:
    """Show each component of the pipeline: state, for how long, pid, port, restarts, last error."""
    from rich.table import Table
    from rich.text import Text

    from cryptopulse.supervisor import read_state, running_supervisor, status_rows

    settings = _settings()
    state = read_state(settings)
    supervisor = running_supervisor(state)
    if state is None or supervisor is None:
        console.print("No pipeline is running (`make up` starts one).")
        raise typer.Exit(3)
    table = Table(title=f"CryptoPulse — dashboard {state.get('dashboard', '')}")
    rows = status_rows(state)
    for column in ("component", "state", "for", "pid", "port", "restarts", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(row[column]) for column in row))
    Console().print(table)
    Console().print(Text(f"supervisor pid {supervisor.pid}"), style="dim")


@app.command("schema")
def schema_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    coins: Annotated[
        Path | None,
        typer.Option(help="Also write the coin table (id, symbol, name) to this JSON file."),
    ] = None,
    classify: Annotated[
        Path | None,
        typer.Option(help="Also write the volatility and trend bands to this JSON file."),
    ] = None,
) -> None:
    """Print the JSON Schema of every data contract (the web app's types come from it)."""
    from cryptopulse import classify as bands
    from cryptopulse.coins import web_table
    from cryptopulse.schema import json_schema

    _write_json(json_schema(), output, sort_keys=True)
    if coins is not None:
        _write_json(web_table(), coins)
    if classify is not None:
        _write_json(bands.web_table(), classify)


def _write_json(value: object, path: Path | None, *, sort_keys: bool = False) -> None:
    """`value` as indented JSON to `path` (made with its folders), or to stdout for None."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    text = orjson.dumps(value, option=option) + b"\n"
    if path is None:
        sys.stdout.buffer.write(text)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)


def _moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time from the command line (no offset: UTC); bad ones exit with code 2."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        _say_error("error:", CryptoPulseError(f"{option}: not an ISO 8601 time: {text!r}"))
        raise typer.Exit(2) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@app.command()
def export(
    coin: Annotated[str, typer.Option(help="The coin id, e.g. bitcoin.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The file to write: .csv or .parquet.")
    ],
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 start (default: 24 h before --to).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 end (default: now).")] = None,
    interval: Annotated[
        str, typer.Option(help="Candle length: 30s, 1m, 5m, 15m, 1h, 4h or 1d.")
    ] = "30s",
    source: Annotated[
        str | None, typer.Option(help="Which source (default: the only one stored).")
    ] = None,
    database: Annotated[
        Path | None,
        typer.Option(
            "--db", help="The history file (default: the API server's, by history.path/api.port)."
        ),
    ] = None,
) -> None:
    """Export a coin's candles from the history database to CSV or Parquet (read-only)."""
    from cryptopulse.history.export import ExportRequest
    from cryptopulse.history.export import export as run_export
    from cryptopulse.history.service import database_path
    from cryptopulse.schema import INTERVAL_SECONDS

    settings = _settings()
    if interval not in INTERVAL_SECONDS:
        _say_error(
            "error:", CryptoPulseError(f"--interval must be one of {', '.join(INTERVAL_SECONDS)}")
        )
        raise typer.Exit(2)
    until = _moment(end, "--to") or datetime.now(UTC)
    since = _moment(start, "--from") or until - timedelta(hours=24)
    request = ExportRequest(
        database=database or database_path(settings),
        coin=coin,
        start=since,
        end=until,
        interval=interval,  # checked above
        output=output,
        source=source,
    )
    try:
        rows = run_export(request)
    except CryptoPulseError as exc:
        raise _fail(exc) from exc
    console.print(f"{rows} rows written to {output}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: settings api.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings api.port).")] = None,
    consume_windows: Annotated[
        bool | None,
        typer.Option(
            "--consume-windows/--no-consume-windows",
            help="Also take aggregates from the windows topic (own consumer group per replica).",
        ),
    ] = None,
    ingest: Annotated[
        bool | None, typer.Option("--ingest/--no-ingest", help="Serve POST /ingest.")
    ] = None,
) -> None:
    """Run the API server: POST /ingest, WebSocket /ws, /api, /metrics and the dashboard."""
    from cryptopulse.api.server import serve as run_server
    from cryptopulse.token import is_loopback

    settings = _settings()
    api = _override(
        settings.api, host=host, port=port, consume_windows=consume_windows, ingest_enabled=ingest
    )
    settings = settings.model_copy(update={"api": api})
    if api.token is None and not is_loopback(api.host):
        _say_error(
            "error:",
            CryptoPulseError(
                f"refusing to serve on {api.host}, which is not a loopback address, without a "
                "token: anyone who reaches the port could write. Set CRYPTOPULSE_API__TOKEN "
                "(or api.token in the settings file), or bind 127.0.0.1."
            ),
        )
        raise typer.Exit(2)
    docs = f"{api.base_url}/docs" if api.docs else f"{api.base_url}/openapi.json"
    console.print(f"CryptoPulse API on [bold]{api.base_url}[/bold] (API: {docs})")
    try:
        run_server(settings)
    except CryptoPulseError as exc:
        raise _fail(exc) from exc


def _source_settings(options: dict[str, Any]) -> Settings:
    """The settings with the source options given on the command line (`ctx.params`)."""
    from cryptopulse.producer import with_producer_overrides

    settings = _settings()
    try:
        return with_producer_overrides(
            settings,
            source=options["source"],
            coins=_coin_list(options["coins"]),
            coingecko_top=options["top"],
            poll_interval=options["poll_interval"],
            simulated_coins=options["simulated_coins"],
            simulated_rate=options["rate"],
            seed=options["seed"],
            replay_file=options["replay_file"],
            replay_speed=options["speed"],
            replay_retime=False if options["keep_timestamps"] else None,
            backfill=False if options.get("no_backfill") else None,
        )
    except ValueError as exc:  # pydantic's ValidationError names the bad option
        _say_error("Invalid option:", exc)
        raise typer.Exit(2) from exc


@app.command()
def produce(
    ctx: typer.Context,
    source: SourceOpt = None,
    coins: CoinsOpt = None,
    top: TopOpt = None,
    poll_interval: IntervalOpt = None,
    simulated_coins: SimCoinsOpt = None,
    rate: RateOpt = None,
    seed: SeedOpt = None,
    unpaced: UnpacedOpt = False,
    replay_file: FileOpt = None,
    speed: SpeedOpt = None,
    keep_timestamps: KeepTimesOpt = False,
    no_backfill: NoBackfillOpt = False,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka host:port (default: settings).")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Topic (default: crypto_market_data).")] = None,
    max_ticks: MaxTicksOpt = None,
    duration: DurationOpt = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    report_fd: Annotated[
        int | None,
        typer.Option(
            help="At exit, write one JSON line {sent, delivered, undelivered} to this file "
            "descriptor (used by `cryptopulse up`)."
        ),
    ] = None,
) -> None:
    """Publish market Ticks to Kafka from CoinGecko, Binance, Coinbase, Kraken (several at once:
    --source binance,coinbase), the simulator or a capture (Ctrl-C stops)."""
    from cryptopulse.producer import (
        TickProducer,
        enable_backfill,
        publish_source,
        run_until_signalled,
    )
    from cryptopulse.sources import open_source

    settings = _source_settings(ctx.params)  # the source options above, by name
    overrides: dict[str, str] = {}
    if bootstrap:
        overrides["bootstrap"] = bootstrap
    if topic:
        overrides["topic"] = topic
    producer = TickProducer.from_settings(settings, **overrides)
    try:
        src = open_source(settings.producer, max_ticks=max_ticks, paced=not unpaced)
        producer.start()
    except CryptoPulseError as exc:
        _report(report_fd, producer)
        raise _fail(exc) from exc
    status = _start_reporting(settings, src, producer, metrics_port)
    enable_backfill(src, producer, settings)
    runner = publish_source(src, producer, max_ticks=max_ticks, duration=duration, status=status)
    try:
        result = run_until_signalled(runner)
    finally:
        status.stop()
        src.close()
        undelivered = producer.stop()
        _report(report_fd, producer)
    console.print(f"Done in {result.seconds:.1f} s: {result.summary()}")
    if undelivered or result.failed:
        raise typer.Exit(1)


def _start_reporting(
    settings: Settings, src: Source, producer: TickProducer, metrics_port: int | None
) -> StatusReporter:
    """Serve the producer's metrics (when a port is set), say what runs, and start reporting
    the source's status on the status topic."""
    from cryptopulse.producer import StatusReporter
    from cryptopulse.sources import source_names
    from cryptopulse.status import StatusTracker

    port = metrics_port if metrics_port is not None else settings.producer.metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr="127.0.0.1", registry=producer.metrics.registry)
    describe = getattr(src, "describe", None)
    console.print(
        f"Producing {describe() if describe else src.name} -> {producer.topic} on {producer.bootstrap}"
    )
    status = StatusReporter(
        [
            StatusTracker(name, unreachable_after=settings.producer.unreachable_after)
            for name in source_names(src)
        ],
        producer.publish_status,
        interval=settings.producer.status_interval,
    )
    status.start()
    return status


def _report(fd: int | None, producer: TickProducer) -> None:
    """The producer's final counts, for whoever started it (`up` reads them from a pipe)."""
    if fd is None:
        return
    counts = producer.metrics
    line = orjson.dumps(
        {"sent": counts.sent, "delivered": counts.delivered, "undelivered": counts.failed}
    )
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(line + b"\n")
    except OSError as exc:
        console.print(f"could not write the report to fd {fd}: {exc}", markup=False)


@app.command()
def record(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Capture file to write (JSON lines).")
    ],
    source: SourceOpt = None,
    coins: CoinsOpt = None,
    top: TopOpt = None,
    poll_interval: IntervalOpt = None,
    simulated_coins: SimCoinsOpt = None,
    rate: RateOpt = None,
    seed: SeedOpt = None,
    unpaced: UnpacedOpt = False,
    replay_file: FileOpt = None,
    speed: SpeedOpt = None,
    keep_timestamps: KeepTimesOpt = False,
    append: Annotated[bool, typer.Option(help="Add to the file instead of replacing it.")] = False,
    max_ticks: MaxTicksOpt = None,
    duration: DurationOpt = None,
) -> None:
    """Record Ticks from any source to a capture file for `produce --source replay`."""
    from cryptopulse.producer import Runner, run_until_signalled
    from cryptopulse.sources import open_source
    from cryptopulse.sources.replay import CaptureWriter

    settings = _source_settings(ctx.params)  # the source options above, by name
    if max_ticks is None and duration is None:
        console.print("Recording until Ctrl-C (use --max-ticks or --duration to bound it).")
    try:
        src = open_source(settings.producer, max_ticks=max_ticks, paced=not unpaced)
    except CryptoPulseError as exc:
        raise _fail(exc) from exc
    with CaptureWriter(output, append=append) as writer:
        runner = Runner(src, writer.write, max_ticks=max_ticks, duration=duration, verb="recorded")
        try:
            result = run_until_signalled(runner)
        finally:
            src.close()
    console.print(f"Recorded {writer.written:,} ticks to {output} in {result.seconds:.1f} s")


if __name__ == "__main__":
    app()
