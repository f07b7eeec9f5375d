"""The dashboard in a real browser against the real API server.

The test starts `cryptopulse serve` as a subprocess (the built web/dist is served at `/`), feeds it
windows through POST /ingest exactly as the stream job does, and source statuses through a Kafka
status topic exactly as the producer does (the server consumes it, with the windows topic, as the
API that `cryptopulse up` starts does), and drives Debian's headless Chromium with Playwright.
Two sources carry the same coins and windows at different prices, so any mixing shows. It restarts
the server mid-test to check the page reconnects by itself and the server learns the status again.
Screenshots land in artifacts/.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from cryptopulse.classify import trend, volatility
from cryptopulse.platform.ports import free_port
from cryptopulse.schema import SourceState, SourceStatus

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "artifacts"
CLI = Path(sys.executable).with_name("cryptopulse")
TOKEN = "e2e-token"
WINDOW = timedelta(seconds=30)
HISTORY = 20  # windows per coin; the pages that count candles show 1H: one 30 s candle per window
TIMEOUT_MS = 15_000
SOURCE = "coingecko"  # the running source: its producer repeats its status (heartbeat)
OTHER = "simulated"  # an earlier run's source: same coins and windows, half the prices
OTHER_SCALE = 0.5
HEARTBEAT = 2.0  # seconds between status repeats of the running source (the producer: ~10 s)

# coin, symbol, close price, 24 h change, volume, market cap. Chosen so every alert rule fires
# (Extreme, High Volatility, |change| >= 10 in both directions) and ties cannot reorder alerts.
COINS: list[tuple[str, str, float, float | None, float, float]] = [
    ("bitcoin", "btc", 97012.5, -1.84, 31.25e9, 1.92e12),
    ("ethereum", "eth", 3521.4, 2.5, 15.1e9, 4.2e11),
    ("binancecoin", "bnb", 612.3, 0.4, 1.2e9, 9.0e10),
    ("solana", "sol", 182.75, -15.2, 3.4e9, 8.5e10),
    ("ripple", "xrp", 0.6123, 11.0, 2.1e9, 3.4e10),
    ("cardano", "ada", 0.4521, -3.1, 4.5e8, 1.6e10),
    ("dogecoin", "doge", 0.1234, 25.6, 1.9e9, 1.8e10),
    ("avalanche-2", "avax", 35.2, -22.3, 5.2e8, 1.4e10),
    ("polkadot", "dot", 7.12, 0.0, 2.3e8, 1.0e10),
    ("chainlink", "link", 14.8, 6.0, 4.1e8, 9.0e9),
]
EXPECTED_ALERTS = ["dogecoin", "avalanche-2", "solana", "ripple"]  # by |change|, largest first


def window_start(now: datetime) -> datetime:
    seconds = math.floor(now.timestamp() / WINDOW.total_seconds()) * WINDOW.total_seconds()
    return datetime.fromtimestamp(seconds, UTC)


def aggregate(
    coin: str,
    symbol: str,
    start: datetime,
    close: float,
    change: float | None,
    volume: float,
    cap: float,
    *,
    final: bool,
    source: str = SOURCE,
) -> dict[str, Any]:
    return {
        "source": source,
        "coin": coin,
        "symbol": symbol,
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": (start + WINDOW).isoformat().replace("+00:00", "Z"),
        "avg_price": close,
        "open": close * 0.998,
        "high": close * 1.004,
        "low": close * 0.995,
        "close": close,
        "avg_change_24h": change,
        "max_volume_24h": volume,
        "market_cap": cap,
        "tick_count": 3,
        "volatility": volatility(change),
        "trend": trend(change),
        "final": final,
    }


def history_batch(now: datetime, source: str = SOURCE, scale: float = 1.0) -> list[dict[str, Any]]:
    """HISTORY windows per coin ending in the current (still open) window; prices wiggle."""
    current = window_start(now)
    records = []
    for n, (coin, symbol, close, change, volume, cap) in enumerate(COINS):
        for i in range(HISTORY):
            age = HISTORY - 1 - i
            price = close if age == 0 else close * (1 + 0.01 * math.sin(i / 2 + n) - 0.002 * age)
            records.append(
                aggregate(
                    coin,
                    symbol,
                    current - age * WINDOW,
                    price * scale,
                    change,
                    volume,
                    cap * scale,
                    final=age > 0,
                    source=source,
                )
            )
    return records


class StatusFeed:
    """Source statuses on the Kafka status topic (key = source), as producers write them.

    A background thread repeats the running source's status every HEARTBEAT seconds with a fresh
    `updated_at`, as a running producer does, so it stays the newest (the dashboard's default).
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.lock = threading.Lock()
        self.running: SourceStatus | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="status-heartbeat", daemon=True)

    def publish(
        self,
        source: str,
        state: SourceState,
        *,
        detail: str = "",
        last_good: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> SourceStatus:
        status = SourceStatus(
            source=source,
            state=state,
            detail=detail,
            last_good=last_good,
            updated_at=updated_at or datetime.now(UTC),
        )
        self._send(status)
        return status

    def run(self, source: str, state: SourceState, detail: str = "") -> None:
        """Make `source` the running one, heartbeating `state`."""
        self.running = self.publish(source, state, detail=detail)
        if not self.thread.is_alive():
            self.thread.start()

    def _send(self, status: SourceStatus) -> None:
        with self.lock:
            self.producer.produce(
                self.topic, key=status.source.encode(), value=status.model_dump_json().encode()
            )
            assert self.producer.flush(10) == 0

    def _beat(self) -> None:
        while not self.stopping.wait(HEARTBEAT):
            running = self.running
            if running is not None:
                self._send(running.model_copy(update={"updated_at": datetime.now(UTC)}))

    def close(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)


@dataclass
class ApiServer:
    """`cryptopulse serve` in a subprocess on a fixed port, so it can be restarted in place."""

    port: int
    data_dir: Path
    kafka: dict[str, str]  # bootstrap and the uuid topics this server consumes
    proc: subprocess.Popen[bytes] | None = None
    history_now: datetime | None = None  # "now" of the last history batch sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "CRYPTOPULSE_API__PORT": str(self.port),
            "CRYPTOPULSE_API__HOST": "127.0.0.1",
            "CRYPTOPULSE_API__TOKEN": TOKEN,
            "CRYPTOPULSE_API__WEB_DIST": str(DIST),
            "CRYPTOPULSE_DATA_DIR": str(self.data_dir),
            # Windows and source statuses from Kafka, as the API that `up` starts takes them.
            "CRYPTOPULSE_API__CONSUME_WINDOWS": "true",
            "CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS": self.kafka["bootstrap"],
            "CRYPTOPULSE_KAFKA__TOPIC_WINDOWS": self.kafka["windows"],
            "CRYPTOPULSE_KAFKA__TOPIC_STATUS": self.kafka["status"],
        }
        log = (self.data_dir / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [str(CLI), "serve"], env=env, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cryptopulse serve exited: see {self.data_dir / 'serve.log'}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("cryptopulse serve did not become healthy in 30 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def ingest(self, records: list[dict[str, Any]]) -> None:
        response = httpx.post(
            f"{self.url}/ingest",
            json={"data": records},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["received"] == answer["stored"] == len(records), answer
        assert answer["rejected"] == 0, answer


@pytest.fixture(scope="module")
def kafka_topics(kafka_bootstrap: str, new_topic: Callable[..., str]) -> dict[str, str]:
    return {
        "bootstrap": kafka_bootstrap,
        "windows": new_topic("e2e-windows"),
        "status": new_topic("e2e-status", partitions=1),
    }


@pytest.fixture(scope="module")
def statuses(kafka_topics: dict[str, str]) -> Iterator[StatusFeed]:
    feed = StatusFeed(kafka_topics["bootstrap"], kafka_topics["status"])
    # An earlier run's source: its producer is gone, so its last status is an hour old.
    feed.publish(OTHER, "simulated", updated_at=datetime.now(UTC) - timedelta(hours=1))
    feed.run(SOURCE, "live")
    try:
        yield feed
    finally:
        feed.close()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_topics: dict[str, str],
    statuses: StatusFeed,
) -> Iterator[ApiServer]:
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "web/dist is not built: run `npm --prefix web ci && npm --prefix web run build`"
        )
    server = ApiServer(free_port(), tmp_path_factory.mktemp("e2e-api"), kafka_topics)
    server.start()
    try:
        server.history_now = datetime.now(UTC)
        # The other source first: same coins, same windows, other prices. Never on screen unless
        # chosen, and never in the running source's series.
        server.ingest(history_batch(server.history_now, OTHER, OTHER_SCALE))
        server.ingest(history_batch(server.history_now))
        yield server
    finally:
        server.stop()


class Page:
    """A dashboard tab that records page errors and console warnings."""

    def __init__(self, browser: Any, url: str, coins: int = len(COINS), **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)
        self.wait_for_text('[data-testid="stat-coins"] .stat-value', str(coins))

    def wait_for_text(self, selector: str, text: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator(selector).first).to_have_text(text, timeout=TIMEOUT_MS)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


@pytest.fixture
def desktop(api: ApiServer, browser: Any) -> Iterator[Page]:
    tab = Page(browser, api.url + "/?range=1h", viewport={"width": 1440, "height": 1000})
    yield tab
    tab.close()


def fmt_percent(v: float) -> str:
    return f"{v:+.2f}%" if round(v, 2) != 0 else "0.00%"


def test_header_stats_and_table_show_the_sent_values(desktop: Page) -> None:
    from playwright.sync_api import expect

    page = desktop.page
    changes = [c[3] for c in COINS if c[3] is not None]
    total_cap = sum(c[5] for c in COINS)
    assert 1e12 <= total_cap < 1e15
    expect(page.get_by_test_id("stat-market-cap").locator(".stat-value")).to_have_text(
        f"${total_cap / 1e12:.2f}".rstrip("0").rstrip(".") + "T"
    )
    expect(page.get_by_test_id("stat-avg-change").locator(".stat-value")).to_have_text(
        fmt_percent(sum(changes) / len(changes))
    )
    gainers = sum(1 for c in changes if c > 0)
    losers = sum(1 for c in changes if c < 0)
    expect(page.get_by_test_id("stat-gainers").locator(".stat-value")).to_have_text(
        f"{gainers} / {losers}"
    )
    expect(page.get_by_test_id("stat-most-volatile").locator(".stat-value")).to_have_text("DOGE")
    # The running source by default, its status from Kafka, the socket state on its own.
    expect(page.get_by_test_id("source-selector")).to_have_value(SOURCE)
    expect(page.get_by_test_id("source-badge")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("source-badge").locator(".badge-label")).to_have_text("Live")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    # The newest window is still open: the data is current.
    expect(page.get_by_test_id("data-age")).to_have_attribute("data-state", "fresh")
    expect(page.get_by_test_id("data-age")).to_have_text(re.compile(r"^data \d+ s old$"))
    assert "updated" not in (page.get_by_test_id("connection").text_content() or "")

    rows = page.get_by_test_id("coin-row")
    expect(rows).to_have_count(len(COINS))
    btc = page.locator('[data-testid="coin-row"][data-coin="bitcoin"]')
    expect(btc.locator('[data-col="price"]')).to_have_text("$97,012.50")
    expect(btc.locator('[data-col="change"]')).to_have_text("-1.84%")
    expect(btc.locator('[data-col="volume"]')).to_have_text("$31.25B")
    expect(btc.locator('[data-col="marketCap"]')).to_have_text("$1.92T")
    expect(btc.locator('[data-col="volatility"]')).to_have_text("Stable")
    expect(btc.locator('[data-col="trend"]')).to_have_text("➡️ Stable")
    doge = page.locator('[data-testid="coin-row"][data-coin="dogecoin"]')
    expect(doge.locator('[data-col="price"]')).to_have_text("$0.1234")
    expect(doge.locator('[data-col="volatility"]')).to_have_text("Extreme")

    # Default order is by market cap; sorting by 24 h change puts the biggest gainer first.
    assert rows.first.get_attribute("data-coin") == "bitcoin"
    page.get_by_test_id("sort-change").click()
    expect(rows.first).to_have_attribute("data-coin", "dogecoin")
    page.get_by_test_id("sort-change").click()
    expect(rows.first).to_have_attribute("data-coin", "avalanche-2")


def test_one_bar_per_coin_for_every_metric(desktop: Page) -> None:
    from playwright.sync_api import expect

    page = desktop.page
    for metric in ("price", "change", "volume", "marketCap"):
        page.get_by_test_id(f"metric-{metric}").click()
        expect(page.get_by_test_id("bar")).to_have_count(len(COINS))
        assert f"metric={metric}" in page.url or metric == "price"
    # Diverging change bars: a loser's bar is left of a gainer's.
    page.get_by_test_id("metric-change").click()
    page.wait_for_timeout(600)  # bars animate (CSS transitions) to their new geometry
    down = page.locator('[data-testid="bar"][data-coin="avalanche-2"]').bounding_box()
    up = page.locator('[data-testid="bar"][data-coin="dogecoin"]').bounding_box()
    assert down is not None and up is not None
    assert down["x"] + down["width"] <= up["x"] + 1


def test_line_chart_selection_and_url(desktop: Page, api: ApiServer, browser: Any) -> None:
    from playwright.sync_api import expect

    page = desktop.page
    line = page.get_by_test_id("price-line")
    expect(line).to_have_attribute("d", _non_empty())
    # Actually painted: a stray CSS rule once hid every <path> in the page.
    expect(line).to_be_visible()
    stroke = line.evaluate("el => getComputedStyle(el).stroke")
    assert stroke not in ("none", ""), stroke
    box = line.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 10
    initial = line.get_attribute("d")
    # The snapshot carries history: a full line on load, not one point.
    assert initial is not None and initial.count("C") >= HISTORY - 2

    page.get_by_test_id("coin-selector").select_option("ethereum")
    expect(page.get_by_test_id("line-title")).to_contain_text("Ethereum")
    assert "coin=ethereum" in page.url
    expect(line).not_to_have_attribute("d", initial)

    # Clicking a bar selects its coin too.
    page.locator('[data-testid="bar"][data-coin="solana"]').click()
    expect(page.get_by_test_id("line-title")).to_contain_text("Solana")
    assert "coin=solana" in page.url

    # Hover shows the crosshair tooltip.
    box = page.get_by_test_id("line-chart").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    expect(page.locator(".line-card .tooltip")).to_contain_text("24h")

    # Candles are the alternative view.
    page.get_by_role("button", name="Candles").click()
    expect(page.locator('[data-testid="candles"] .candle')).to_have_count(HISTORY)
    assert "chart=candles" in page.url

    # A shared link opens the same view.
    other = Page(browser, page.url, viewport={"width": 1200, "height": 900})
    expect(other.page.get_by_test_id("coin-selector")).to_have_value("solana")
    expect(other.page.get_by_test_id("line-title")).to_contain_text("Solana")
    expect(other.page.locator('[data-testid="candles"] .candle')).to_have_count(HISTORY)
    other.close()

    # Live updates: the open window is replaced (no new point), the next window adds one.
    page.get_by_role("button", name="Line").click()
    before = line.get_attribute("d")
    # The open window of the history batch (not of the wall clock, which may have moved on).
    assert api.history_now is not None
    start = window_start(api.history_now)
    api.ingest([aggregate("solana", "sol", start, 190.5, -15.2, 3.4e9, 8.5e10, final=False)])
    solana = page.locator('[data-testid="coin-row"][data-coin="solana"] [data-col="price"]')
    expect(solana).to_have_text("$190.50")
    expect(line).not_to_have_attribute("d", before or "")
    api.ingest(
        [aggregate("solana", "sol", start + WINDOW, 191.25, -15.2, 3.4e9, 8.5e10, final=False)]
    )
    expect(solana).to_have_text("$191.25")
    page.get_by_role("button", name="Candles").click()
    expect(page.locator('[data-testid="candles"] .candle')).to_have_count(HISTORY + 1)


def test_alerts_list_extreme_coins_in_order(desktop: Page) -> None:
    from playwright.sync_api import expect

    alerts = desktop.page.get_by_test_id("alert")
    expect(alerts).to_have_count(len(EXPECTED_ALERTS))
    assert [a.get_attribute("data-coin") for a in alerts.all()] == EXPECTED_ALERTS
    expect(alerts.nth(0)).to_have_class(_class_containing("up"))
    expect(alerts.nth(0)).to_contain_text("🚀 Surging")
    expect(alerts.nth(0)).to_contain_text("+25.60%")
    expect(alerts.nth(1)).to_have_class(_class_containing("down"))
    expect(alerts.nth(1)).to_contain_text("💥 Crashing")
    expect(alerts.nth(1)).to_contain_text("Extreme")


def test_screenshots_and_phone_layout(api: ApiServer, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    desk = Page(browser, api.url + "/?coin=bitcoin", viewport={"width": 1440, "height": 1000})
    desk.page.wait_for_timeout(500)  # let bar transitions settle
    desk.page.screenshot(path=str(ARTIFACTS / "dashboard-desktop.png"), full_page=True)
    desk.close()

    phone = Page(
        browser,
        api.url + "/?coin=dogecoin",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = phone.page
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    # Nothing wider than the phone: the page does not scroll sideways (the table scrolls inside
    # its own card), and stat numbers stay inside their cards.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('.stat-value')]
              .filter(el => el.getBoundingClientRect().right > el.closest('.stat').getBoundingClientRect().right + 1)
              .map(el => el.textContent)"""
    )
    assert overflow == []
    phone.close()


def _money(text: str) -> float:
    """ "$97.5K" -> 97500.0 (the line chart's price axis labels)."""
    match = re.fullmatch(r"\$([\d.,]+)([KMBT]?)", text.strip())
    assert match is not None, text
    scale = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[match[2]]
    return float(match[1].replace(",", "")) * scale


def _price_axis(page: Any) -> list[float]:
    labels = page.locator('[data-testid="line-chart"] .axis text').all_text_contents()
    return [_money(t) for t in labels if t.startswith("$")]


def test_two_sources_of_one_coin_are_never_one_series(api: ApiServer, browser: Any) -> None:
    """Both sources have bitcoin in the same windows; each is drawn alone, switched in the URL."""
    from playwright.sync_api import expect

    tab = Page(browser, api.url + "/?coin=bitcoin&chart=candles&range=1h")
    page = tab.page
    selector = page.get_by_test_id("source-selector")
    chart = page.get_by_test_id("line-chart")
    candles = page.locator('[data-testid="candles"] .candle')
    btc = page.locator('[data-testid="coin-row"][data-coin="bitcoin"] [data-col="price"]')
    cap = page.get_by_test_id("stat-market-cap").locator(".stat-value")

    # The running source by default (newest status heartbeat), not the other one.
    expect(selector).to_have_value(SOURCE)
    expect(selector.locator("option")).to_have_text([f"{SOURCE} (live)", OTHER])
    expect(chart).to_have_attribute("data-sources", SOURCE)
    expect(candles).to_have_count(HISTORY)
    expect(btc).to_have_text("$97,012.50")
    assert min(_price_axis(page)) > 85_000, _price_axis(page)
    running_cap = cap.text_content()

    selector.select_option(OTHER)
    assert f"source={OTHER}" in page.url
    expect(chart).to_have_attribute("data-sources", OTHER)
    expect(btc).to_have_text(f"${97012.5 * OTHER_SCALE:,.2f}")
    # One candle per window, not two, and all of them at the other source's prices.
    expect(candles).to_have_count(HISTORY)
    assert max(_price_axis(page)) < 60_000, _price_axis(page)
    expect(cap).not_to_have_text(running_cap or "")
    expect(page.get_by_test_id("source-badge")).to_have_attribute("data-state", "simulated")
    expect(page.get_by_test_id("source-badge").locator(".badge-label")).to_have_text(
        "Simulated data"
    )
    # Its producer stopped an hour ago, and the badge says so.
    expect(page.get_by_test_id("source-badge")).to_have_attribute("data-heartbeat", "late")
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-other-source.png"), full_page=True)

    # A live update of one source lands in that source's series only.
    assert api.history_now is not None
    start = window_start(api.history_now)
    api.ingest(
        [
            aggregate(
                "bitcoin",
                "btc",
                start + WINDOW,
                50_000.0,
                -1.84,
                3e10,
                9e11,
                final=False,
                source=OTHER,
            )
        ]
    )
    expect(btc).to_have_text("$50,000.00")
    expect(candles).to_have_count(HISTORY + 1)

    # Back (the choice was a navigation) returns to the running source, untouched by the update.
    page.go_back()
    expect(selector).to_have_value(SOURCE)
    assert "source=" not in page.url
    expect(chart).to_have_attribute("data-sources", SOURCE)
    expect(btc).to_have_text("$97,012.50")
    expect(candles).to_have_count(HISTORY)
    assert min(_price_axis(page)) > 85_000, _price_axis(page)

    # A shared link opens the other source.
    other = Page(browser, api.url + f"/?source={OTHER}&coin=bitcoin")
    expect(other.page.get_by_test_id("source-selector")).to_have_value(OTHER)
    expect(
        other.page.locator('[data-testid="coin-row"][data-coin="bitcoin"] [data-col="price"]')
    ).to_have_text("$50,000.00")
    other.close()
    tab.close()


def test_each_source_state_has_its_own_badge_and_the_data_age_shows(
    api: ApiServer, browser: Any, statuses: StatusFeed
) -> None:
    """Every state of the contract, as a producer would publish it to the status topic."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    source = "e2e-badges"
    t0 = datetime.now(UTC)
    newest_end = t0 - timedelta(seconds=12)
    api.ingest(
        [
            aggregate(
                "bitcoin",
                "btc",
                newest_end - (k + 1) * WINDOW,
                90_000.0 + k,
                1.0,
                3e10,
                1.9e12,
                final=True,
                source=source,
            )
            for k in range(3)
        ]
    )

    def said_now() -> datetime:
        # Recent enough not to be a late heartbeat, older than the running source's heartbeat,
        # so the running source stays the default for every other tab.
        return datetime.now(UTC) - timedelta(seconds=2 * HEARTBEAT + 5)

    statuses.publish(source, "connecting", updated_at=said_now())
    tab = Page(
        browser,
        api.url + f"/?source={source}",
        coins=1,
        viewport={"width": 1440, "height": 1000},
        timezone_id="UTC",
    )
    page = tab.page
    badge = page.get_by_test_id("source-badge")
    label = badge.locator(".badge-label")
    age = page.get_by_test_id("data-age")

    # The data's age: now minus the newest window's end, shown whatever the state.
    expect(age).to_have_attribute("data-state", "fresh")
    expect(age).to_have_text(re.compile(r"^data \d+ s old$"))
    shown = int(re.findall(r"\d+", age.text_content() or "")[0])
    elapsed = (datetime.now(UTC) - t0).total_seconds()
    assert 12 <= shown <= 12 + elapsed + 1, (shown, elapsed)

    last_good = (t0 - timedelta(seconds=95)).replace(microsecond=0)
    expected: list[tuple[SourceState, str]] = [
        ("connecting", f"Connecting to {source}"),
        ("live", "Live"),
        ("degraded", f"Degraded — last good {last_good:%H:%M:%S}, retrying"),
        ("unreachable", f"{source} unreachable"),
        ("simulated", "Simulated data"),
        ("replay", "Replay"),
    ]
    looks: dict[str, tuple[str, str]] = {}
    for state, text in expected:
        statuses.publish(
            source,
            state,
            detail=f"e2e {state}",
            last_good=last_good if state in ("degraded", "unreachable", "live") else None,
            updated_at=said_now(),
        )
        expect(badge).to_have_attribute("data-state", state)
        expect(label).to_have_text(text)
        expect(badge).to_have_attribute("data-heartbeat", "ok")
        expect(badge).to_have_attribute("title", re.compile(f"^e2e {state} "))
        if state != "live":
            assert "live" not in text.lower()
        looks[state] = (
            badge.evaluate("el => getComputedStyle(el).color"),
            badge.locator("svg").first.get_attribute("class") or "",
        )
        badge.screenshot(path=str(ARTIFACTS / f"badge-{state}.png"))
        # The data age is always there too.
        expect(age).to_have_text(re.compile(r"^data \d+ s old$"))
    # Each state has its own colour and its own icon.
    assert len({colour for colour, _ in looks.values()}) == len(expected), looks
    assert len({icon for _, icon in looks.values()}) == len(expected), looks

    # Old data turns the view stale: windows that ended five minutes ago (> 3 windows, > 90 s).
    stale_source = "e2e-stale"
    ended = datetime.now(UTC) - timedelta(minutes=5)
    api.ingest(
        [
            aggregate(
                "bitcoin",
                "btc",
                ended - WINDOW,
                91_000.0,
                1.0,
                3e10,
                1.9e12,
                final=True,
                source=stale_source,
            )
        ]
    )
    selector = page.get_by_test_id("source-selector")
    expect(selector.locator(f'option[value="{stale_source}"]')).to_have_count(1)
    selector.select_option(stale_source)
    expect(age).to_have_attribute("data-state", "stale")
    expect(age).to_have_text(re.compile(r"^data 5 min old\s*stale$", re.IGNORECASE))
    expect(page.locator(".app")).to_have_class(_class_containing("is-stale"))
    expect(badge).to_have_attribute("data-state", "unknown")
    expect(label).to_have_text(f"No status from {stale_source}")
    page.get_by_test_id("data-age").screenshot(path=str(ARTIFACTS / "data-age-stale.png"))

    # A source with a status but no windows yet: no age, and still never "Live".
    waiting = "e2e-waiting"
    statuses.publish(waiting, "connecting", updated_at=said_now())
    expect(selector.locator(f'option[value="{waiting}"]')).to_have_count(1)
    selector.select_option(waiting)
    expect(age).to_have_attribute("data-state", "empty")
    expect(age).to_have_text("no data yet")
    expect(label).to_have_text(f"Connecting to {waiting}")
    expect(page.locator(".app")).not_to_have_class(_class_containing("is-stale"))
    tab.close()


def test_recovers_after_the_api_server_restarts(api: ApiServer, browser: Any) -> None:
    from playwright.sync_api import expect

    tab = Page(browser, api.url + "/?coin=bitcoin", viewport={"width": 1200, "height": 900})
    page = tab.page
    conn = page.get_by_test_id("connection")
    badge = page.get_by_test_id("source-badge")
    expect(conn).to_have_attribute("data-state", "connected")
    expect(badge).to_have_attribute("data-state", "live")

    api.stop()
    expect(conn).to_have_attribute("data-state", _one_of("reconnecting", "offline"))
    # The numbers stay on screen while the server is away.
    btc = page.locator('[data-testid="coin-row"][data-coin="bitcoin"] [data-col="price"]')
    expect(btc).to_have_text("$97,012.50")

    api.start()
    api.ingest(history_batch(datetime.now(UTC)))
    api.ingest(
        [
            aggregate(
                "bitcoin",
                "btc",
                window_start(datetime.now(UTC)),
                98000.0,
                1.5,
                3e10,
                1.95e12,
                final=False,
            )
        ]
    )
    # No reload: the page reconnects with backoff and refreshes from the new snapshot/updates.
    expect(conn).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(btc).to_have_text("$98,000.00", timeout=30_000)
    # The restarted server knows the source status again (from the status topic), and still
    # serves the two sources apart.
    expect(badge).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("source-selector")).to_have_value(SOURCE)
    expect(page.get_by_test_id("bar")).to_have_count(len(COINS))
    tab.close()


def _non_empty() -> Any:
    import re

    return re.compile(r"^M.+")


def _class_containing(name: str) -> Any:
    import re

    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def _one_of(*values: str) -> Any:
    import re

    return re.compile("^(" + "|".join(map(re.escape, values)) + ")$")


def test_malformed_and_unknown_messages_are_ignored(api: ApiServer, browser: Any) -> None:
    """The socket is replaced by a scripted one that sends garbage around a valid snapshot."""
    from playwright.sync_api import expect

    now = datetime.now(UTC)
    snapshot = {"type": "snapshot", "data": history_batch(now, OTHER)}
    bad_window = {**history_batch(now, OTHER)[0], "avg_price": "lots"}
    no_source = {**history_batch(now, OTHER)[0]}
    del no_source["source"]
    status = SourceStatus(source=OTHER, state="simulated", detail="demo feed", updated_at=now)
    frames = [
        "not json at all",
        '{"type": "party", "data": []}',
        "[1, 2, 3]",
        '{"type": "market_update", "data": {"coin": "bitcoin"}}',
        json.dumps(snapshot),
        json.dumps({"type": "market_update", "data": [bad_window, no_source]}),
        # The old shape of source_status, gone from the contract.
        '{"type": "source_status", "source": "simulated", "live": true, "detail": "demo feed"}',
        json.dumps({"type": "source_status", "data": [status.model_dump(mode="json")]}),
    ]

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    warnings: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)

    def scripted(ws: Any) -> None:
        for frame in frames:
            ws.send(frame)

    page.route_web_socket("**/ws", scripted)
    page.goto(api.url + "/")
    expect(page.get_by_test_id("coin-row")).to_have_count(len(COINS))
    expect(page.get_by_test_id("bar")).to_have_count(len(COINS))
    # Simulated data must never look live.
    expect(page.get_by_test_id("source-badge")).to_have_text("Simulated data")
    expect(page.get_by_test_id("source-badge")).to_have_attribute("data-state", "simulated")
    assert errors == []
    assert len([w for w in warnings if "[cryptopulse]" in w]) >= 7, warnings
    context.close()


def test_hundred_coins_updating_every_second_stay_smooth(api: ApiServer, browser: Any) -> None:
    """100 coins x 120 windows of history, then a 100-coin update every second."""
    from playwright.sync_api import expect

    coins = [
        (f"perf-{i:03d}", f"p{i}", 10.0 ** ((i % 7) - 2) * (1 + i / 100), (i % 41) - 20.0)
        for i in range(100)
    ]
    current = window_start(datetime.now(UTC))
    records = [
        aggregate(
            c,
            s,
            current - (119 - k) * WINDOW,
            p * (1 + 0.01 * math.sin(k / 3)),
            ch,
            1e6 * (i + 1),
            1e8 * (i + 1),
            final=k < 119,
        )
        for i, (c, s, p, ch) in enumerate(coins)
        for k in range(120)
    ]
    for start in range(0, len(records), 2000):
        api.ingest(records[start : start + 2000])

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(api.url + "/?coin=perf-005")
    expect(page.get_by_test_id("bar")).to_have_count(100 + len(COINS), timeout=TIMEOUT_MS)
    page.evaluate(
        """() => {
        window.__longTasks = [];
        new PerformanceObserver(list => list.getEntries().forEach(e => window.__longTasks.push(e.duration)))
          .observe({ type: 'longtask' });
        window.__gaps = [];
        let last = performance.now();
        const frame = t => { window.__gaps.push(t - last); last = t; requestAnimationFrame(frame); };
        requestAnimationFrame(frame);
      }"""
    )
    price = page.locator('[data-testid="coin-row"][data-coin="perf-005"] [data-col="price"]')
    for step in range(10):
        now = datetime.now(UTC)
        api.ingest(
            [
                aggregate(
                    c,
                    s,
                    window_start(now),
                    p * (1.5 + 0.01 * step),
                    ch,
                    1e6 * (i + 1),
                    1e8 * (i + 1),
                    final=False,
                )
                for i, (c, s, p, ch) in enumerate(coins)
            ]
        )
        time.sleep(1)
    expect(price).to_contain_text(f"{coins[5][2] * (1.5 + 0.09):,.2f}")
    result = page.evaluate("() => ({ longTasks: window.__longTasks, gaps: window.__gaps })")
    gaps = sorted(result["gaps"])
    p95 = gaps[int(len(gaps) * 0.95)]
    print(f"100 coins: {len(gaps)} frames, p95 gap {p95:.1f} ms, long tasks {result['longTasks']}")
    # Lenient bounds for a shared CI machine: updates must not freeze the page.
    assert p95 < 100, p95
    assert max(result["longTasks"], default=0) < 1000, result["longTasks"]
    assert errors == []
    context.close()


CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_the_served_page_runs_under_its_security_policy(api: ApiServer, browser: Any) -> None:
    """The built app under the server's Content-Security-Policy, with live data: no violation."""
    from playwright.sync_api import expect

    assert DIST.is_dir() and not list(DIST.rglob("*.map")), "source maps must not be shipped"
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    messages: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(CSP_LISTENER)
    response = page.goto(api.url + "/?coin=bitcoin&ws=ws://127.0.0.1:9/ws")
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    for part in ("default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert part in csp, csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    script = page.locator("script[src]").first.get_attribute("src")
    asset = httpx.get(f"{api.url}{script}")
    assert "sourceMappingURL" not in asset.text and "nosniff" in asset.headers.values()

    # The `?ws=` of the link is ignored by the built app: it connects to its own server.
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    btc = page.locator('[data-testid="coin-row"][data-coin="bitcoin"]')
    # Live data: an update of bitcoin's newest window reaches the table and the charts.
    history = httpx.get(f"{api.url}/api/windows/bitcoin", params={"source": SOURCE, "limit": 1})
    newest = history.json()[-1]
    expect(btc.locator('[data-col="price"]')).to_have_text(f"${newest['close']:,.2f}")
    update = {**newest, "close": 12345.0, "avg_price": 12345.0, "low": 12000.0, "open": 12100.0}
    api.ingest([update])
    try:
        expect(btc.locator('[data-col="price"]')).to_have_text("$12,345.00")
        page.get_by_test_id("sort-change").click()  # re-render the table and charts
        page.wait_for_timeout(500)
    finally:
        api.ingest([newest])  # the other tests' bitcoin again
    expect(btc.locator('[data-col="price"]')).to_have_text(f"${newest['close']:,.2f}")

    violations = page.evaluate("window.__cspViolations")
    console_csp = [m for m in messages if "Content Security Policy" in m]
    context.close()
    assert violations == [] and console_csp == [], (violations, console_csp)
    assert errors == []
