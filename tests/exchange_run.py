"""What the exchange streams' integration tests share: a source (one exchange, or several at
once) published by a real producer, and `cryptopulse produce` / `record` run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from cryptopulse.producer import Runner, StatusReporter, TickProducer, publish_source
from cryptopulse.schema import SourceState, SourceStatus
from cryptopulse.sources import Source, source_names
from cryptopulse.sources.combined import CombinedSource
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.sources.exchanges.protocol import ExchangeProtocol
from cryptopulse.sources.exchanges.stream import StreamRules
from cryptopulse.status import StatusTracker
from tests.kafka_helpers import read_to_end
from tests.waiting import wait_for


class Running(Source, Protocol):
    @property
    def running(self) -> bool: ...


S = TypeVar("S", bound=Running)


class Run(Generic[S]):
    """An exchange source (or several, combined) and a producer running in a thread, as
    `produce` runs them; the statuses recorded as they are sent."""

    def __init__(self, source: S, producer: TickProducer) -> None:
        self.source = source
        self.producer = producer
        self.statuses: list[SourceStatus] = []
        trackers = [StatusTracker(n, unreachable_after=60.0) for n in source_names(source)]
        self.reporter = StatusReporter(trackers, self._status, interval=60.0)
        self.runner: Runner = publish_source(source, producer, status=self.reporter)
        self._thread = threading.Thread(target=self.runner.run, daemon=True)

    def _status(self, status: SourceStatus) -> None:
        self.statuses.append(status)
        self.producer.publish_status(status)

    def start(self) -> Run[S]:
        self.producer.start()
        self.reporter.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.runner.stop()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the runner did not stop"
        self.reporter.stop()
        self.source.close()
        assert not self.source.running, "the stream thread did not stop"
        assert self.producer.stop() == 0

    @property
    def states(self) -> list[SourceState]:
        """The states in the order they were published, repeats folded."""
        return self.states_of(self.source.name)

    def states_of(self, source: str) -> list[SourceState]:
        """One source's states in the order they were published, repeats folded."""
        states: list[SourceState] = []
        for status in self.statuses:
            if status.source == source and (not states or states[-1] != status.state):
                states.append(status.state)
        return states

    def sent_by(self, source: str) -> int:
        """Ticks of one source handed to Kafka."""
        return self.producer.metrics.snapshot().source_sent[source]

    @property
    def sent(self) -> int:
        return self.producer.metrics.sent

    def sent_more(self, than: int, by: int = 10) -> Callable[[], bool]:
        return lambda: self.sent >= than + by


class Runs:
    """Starts runs on the session broker, each with its own topics; `stop_all` stops those a
    test left running."""

    def __init__(self, bootstrap: str, new_topic: Callable[..., str]) -> None:
        self.bootstrap = bootstrap
        self.new_topic = new_topic
        self.started: list[Run[Any]] = []

    def start(
        self, protocol: ExchangeProtocol, rules: StreamRules, **options: Any
    ) -> Run[ExchangeSource]:
        return self._run(ExchangeSource(protocol, rules, flush_interval=0.1, **options))

    def start_several(
        self, protocols: Sequence[ExchangeProtocol], rules: StreamRules
    ) -> Run[CombinedSource]:
        """The exchanges at once in one producer, as `produce --source a,b` runs them."""
        sources = [ExchangeSource(p, rules, flush_interval=0.1) for p in protocols]
        return self._run(CombinedSource(sources))

    def _run(self, source: S) -> Run[S]:
        producer = TickProducer(
            self.bootstrap,
            self.new_topic("ticks"),
            linger_ms=5,
            status_topic=self.new_topic("status"),
        )
        run = Run(source, producer).start()
        self.started.append(run)
        return run

    def stop_all(self) -> None:
        for run in self.started:
            if not run.runner.stopping:
                run.stop()


def records(run: Run[Any]) -> list[dict[str, Any]]:
    """The ticks a run published, each keyed by its coin."""
    out = []
    for key, raw in read_to_end(run.producer.bootstrap, run.producer.topic):
        value: dict[str, Any] = orjson.loads(raw)
        assert key is not None and key.decode() == value["coin"]
        out.append(value)
    return out


def produce(
    exchange: str, ws_url: str, bootstrap: str, topic: str, status_topic: str, folder: Path
) -> subprocess.CompletedProcess[str]:
    """`cryptopulse produce --source <exchange>` as a user runs it (40 ticks of bitcoin and
    ethereum, at most 60 s), the exchange's URL from the environment."""
    return cli(
        "produce", {exchange: ws_url}, folder,
        "--bootstrap", bootstrap, "--topic", topic, status_topic=status_topic,
    )  # fmt: skip


def cli(
    command: str,
    urls: Mapping[str, str],
    folder: Path,
    *options: str,
    max_ticks: int = 40,
    status_topic: str | None = None,
    source: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cryptopulse <command> --source <the urls' sources>` as a user runs it (`max_ticks` of
    bitcoin and ethereum, at most 60 s), each source's URL from the environment (an exchange's
    WebSocket, CoinGecko's API root); `source` instead of theirs (replay)."""
    args, env = cli_args(command, urls, folder, *options, max_ticks=max_ticks,
                         status_topic=status_topic, source=source)  # fmt: skip
    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def cli_args(
    command: str,
    urls: Mapping[str, str],
    folder: Path,
    *options: str,
    max_ticks: int = 40,
    status_topic: str | None = None,
    source: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `cli` (to start it with Popen)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env.update(PYTHONUNBUFFERED="1", CRYPTOPULSE_DATA_DIR=str(folder / "data"))
    if status_topic is not None:
        env["CRYPTOPULSE_KAFKA__TOPIC_STATUS"] = status_topic
    for name, url in urls.items():
        setting = "COINGECKO_BASE_URL" if name == "coingecko" else f"{name.upper()}__WS_URL"
        env[f"CRYPTOPULSE_PRODUCER__{setting}"] = url
    args = [
        sys.executable, "-m", "cryptopulse.cli", command, "--source", source or ",".join(urls),
        "--coins", "bitcoin,ethereum", "--max-ticks", str(max_ticks), "--duration", "60",
        *options,
    ]  # fmt: skip
    return args, env


def silent_stream_is_reconnected(fake: Any, start: Callable[[StreamRules], Run[Any]]) -> None:
    """The watchdog scenario every exchange shares: the fake goes silent (heartbeats too), the
    watchdog closes the connection about `silence_timeout` after the last frame, the source
    reconnects and the status goes degraded, then live again."""
    run = start(StreamRules(connect_timeout=2.0, silence_timeout=1.0, backoff_initial=0.2))
    wait_for(run.sent_more(0), 10, "ticks")
    fake.silence(True)
    silent_since = time.monotonic()
    wait_for(lambda: fake.connections[0].closed is not None, 10, "the watchdog to close it")
    closed_after = (fake.connections[0].closed or 0.0) - silent_since
    # The watchdog counts from the last frame received, at most one trade interval before.
    assert 1.0 - 0.1 <= closed_after < 3.0
    fake.silence(False)
    wait_for(lambda: len(fake.connections) >= 2, 10, "a new connection")
    now = run.sent
    wait_for(run.sent_more(now), 10, "ticks after the watchdog")
    run.stop()
    assert run.source.connections[0].stats.endings.get("silent", 0) >= 1
    assert run.states[:3] == ["connecting", "live", "degraded"] and run.states[-1] == "live"
