"""Exchange streams on the dashboard (#14), as a user runs them: `cryptopulse up --source
binance,coinbase` against local fakes of both exchanges (their documented wire formats, see
tests/fakes/), the dashboard in headless Chromium.

Binance's trades become windows with a VWAP, traded volume and trade count: the candle chart draws
a VWAP line over the candles and volume bars under them. With two exchanges running, the
cross-exchange panel shows each one's last price in its own quote currency (USDT, USD) and the
spread between them, and says that the spread mixes quotes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import playwright.sync_api as playwright
import pytest

from tests import waiting
from tests.e2e.test_pipeline import ARTIFACTS, Pipeline, running
from tests.fakes.binance import FakeBinance
from tests.fakes.coinbase import FakeCoinbase

pytestmark = pytest.mark.e2e

COIN = "bitcoin"
TWO_OR_MORE = re.compile(r"^([2-9]|[1-9]\d+)$")
A_NUMBER = re.compile(r"^\d+(\.\d+)?(e[+-]?\d+)?$")
wait_for = functools.partial(waiting.wait_for, interval=0.5)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with FakeBinance(trade_interval=0.1).start() as binance, FakeCoinbase().start() as coinbase:
        env = {
            "CRYPTOPULSE_PRODUCER__BINANCE__WS_URL": binance.url,
            "CRYPTOPULSE_PRODUCER__COINBASE__WS_URL": coinbase.url,
        }
        options = ("--source", "binance,coinbase", "--coins", "bitcoin,ethereum", "--trigger", "1")
        with running(tmp_path_factory.mktemp("exchanges-e2e"), *options, env=env) as p:
            yield p
            assert p.stop() == 0, p.output()[-3000:]
            p.assert_nothing_left()


def traded(pipeline: Pipeline, source: str) -> dict[str, Any] | None:
    """The source's latest COIN window when it holds trades (None until the API has one)."""
    try:
        r = httpx.get(f"{pipeline.url}api/coins", params={"source": source}, timeout=5)
    except httpx.HTTPError:
        return None
    windows: list[dict[str, Any]] = r.json() if r.status_code == 200 else []
    return next((w for w in windows if w["coin"] == COIN and w["vwap"] is not None), None)


def test_exchange_trades_draw_vwap_volume_and_the_spread(pipeline: Pipeline, browser: Any) -> None:
    wait_for(lambda: traded(pipeline, "binance") is not None, 240, "a Binance window with trades")
    wait_for(lambda: traded(pipeline, "coinbase") is not None, 120, "a Coinbase window")
    window = traded(pipeline, "binance")
    assert window is not None
    # The trades' figures, in the quote currency Binance trades bitcoin in.
    assert window["quote"] == "USDT"
    assert window["trade_count"] >= 1 and window["traded_volume"] > 0
    assert window["low"] <= window["vwap"] <= window["high"]
    assert (traded(pipeline, "coinbase") or {}).get("quote") == "USD"

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{pipeline.url}?source=binance&coin={COIN}&chart=candles&range=1h")
    candles = page.get_by_test_id("candle")
    playwright.expect(candles.first).to_be_visible(timeout=60_000)
    vwap = page.get_by_test_id("vwap-line")
    # Two candles with a VWAP (the second window closes within 30 s): a line is drawn.
    playwright.expect(vwap).to_have_attribute("data-points", TWO_OR_MORE, timeout=90_000)
    assert (vwap.get_attribute("d") or "").count("L") >= 1
    assert page.get_by_test_id("volume-bar").count() >= 1
    volumes = page.get_by_test_id("volume-bar").evaluate_all(
        "bars => bars.map(b => Number(b.dataset.volume))"
    )
    assert all(v > 0 for v in volumes), volumes

    panel = page.get_by_test_id("cross-exchange")
    playwright.expect(panel).to_be_visible(timeout=30_000)
    rows = page.get_by_test_id("cross-exchange-row")
    playwright.expect(rows).to_have_count(2, timeout=30_000)
    quotes = dict(rows.evaluate_all("rows => rows.map(r => [r.dataset.source, r.dataset.quote])"))
    assert quotes == {"binance": "USDT", "coinbase": "USD"}
    # Both prices fresh: a spread in basis points (the fakes' walks differ).
    playwright.expect(panel).to_have_attribute("data-spread-bps", A_NUMBER, timeout=30_000)
    playwright.expect(page.get_by_test_id("cross-exchange-mixed")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-exchanges.png"), full_page=True)
    assert errors == []
    page.close()
