"""The dashboard against a server that protects its reads (`api.protect_reads`, issue #11).

A real API server (BackgroundServer, serving the built web/dist) requires the token on /api/* and
/ws; windows arrive through POST /ingest as the stream job sends them. Debian's headless Chromium
(Playwright) opens the page without a token, pastes one, follows a `#token=` link as
`cryptopulse up` prints it, and offers a wrong one. Every request URL, console line and the
rendered HTML are checked for the token.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cryptopulse.api.server import BackgroundServer
from cryptopulse.config import ApiSettings, load_settings
from tests.factories import WINDOW, window

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "artifacts"
TOKEN = "e2e-Pulse_token-7f3a9c"
WRONG = "not-the-token"
TIMEOUT_MS = 15_000
QUIET_MS = 2_000  # no new socket within this after a refusal: the backoff's first retry is <= 0.5 s
SOURCE = "coingecko"
COINS = {"bitcoin": 97012.5, "ethereum": 3521.4, "solana": 182.75}
BTC_NOW = "$100,893.00"  # bitcoin's newest window: 97012.5 * 1.04
REFUSED_METRIC = 'cryptopulse_api_ws_refused_total{reason="unauthorized"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "web/dist is not built: run `npm --prefix web ci && npm --prefix web run build`"
        )
    data_dir = tmp_path_factory.mktemp("e2e-token")
    api = ApiSettings(token=TOKEN, protect_reads=True, web_dist=DIST)
    with BackgroundServer(load_settings(data_dir=data_dir, api=api)) as running:
        # Five windows per coin ending in the current one (the server refuses future windows).
        seconds = WINDOW.total_seconds()
        now = math.floor(datetime.now(UTC).timestamp() / seconds) * seconds
        start = datetime.fromtimestamp(now, UTC) - 4 * WINDOW
        records = [
            window(coin, i, price=price * (1 + 0.01 * i), final=i < 4, source=SOURCE, start=start)
            for coin, price in COINS.items()
            for i in range(5)
        ]
        response = httpx.post(
            f"{running.url}/ingest",
            content=orjson.dumps({"data": [r.model_dump(mode="json") for r in records]}),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == len(records), response.text
        # The reads really are protected.
        assert httpx.get(f"{running.url}/api/sources", timeout=10).status_code == 401
        yield running


def refusals(server: BackgroundServer) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(REFUSED_METRIC + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Tab:
    """A fresh browser context (own sessionStorage) that records what could leak the token."""

    def __init__(self, browser: Any, server: BackgroundServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.console: list[str] = []
        self.urls: list[str] = []
        self.api_auth: list[str | None] = []  # Authorization of each /api/* request
        self.sockets = 0
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: self.console.append(msg.text))
        self.page.on("request", self._request)
        self.page.on("websocket", self._socket)

    def _request(self, request: Any) -> None:
        self.urls.append(request.url)
        if "/api/" in request.url:
            self.api_auth.append(request.headers.get("authorization"))

    def _socket(self, ws: Any) -> None:
        self.sockets += 1
        self.urls.append(ws.url)

    def open(self, path: str = "/") -> None:
        self.page.goto(self.server.url + path)

    def expect_prompt(self, state: str) -> None:
        from playwright.sync_api import expect

        page = self.page
        expect(page.get_by_test_id("token-prompt")).to_be_visible()
        expect(page.get_by_test_id("token-message")).to_have_attribute("data-state", state)
        expect(
            page.get_by_role("heading", name="This server needs an access token")
        ).to_be_visible()
        expect(page.get_by_test_id("token-prompt")).to_contain_text("cryptopulse up")
        expect(page.get_by_test_id("token-prompt")).to_contain_text(
            ".cryptopulse/secrets/ingest-token"
        )
        expect(page.get_by_label("Access token", exact=True)).to_have_attribute("type", "password")
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "unauthorized")
        # No data: nothing from an earlier token stays on screen.
        expect(page.get_by_test_id("coin-row")).to_have_count(0)
        expect(page.locator('[data-testid="stat-coins"] .stat-value')).to_have_text("0")

    def expect_quiet(self) -> None:
        """Refused: no new connection attempt (the page waits for a token, no retry loop)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with pytest.raises(PlaywrightTimeout):
            self.page.wait_for_event("websocket", timeout=QUIET_MS)

    def expect_coins(self) -> None:
        from playwright.sync_api import expect

        page = self.page
        expect(page.get_by_test_id("coin-row")).to_have_count(len(COINS))
        expect(page.locator('[data-testid="stat-coins"] .stat-value')).to_have_text(str(len(COINS)))
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
        expect(page.get_by_test_id("token-prompt")).to_have_count(0)
        btc = page.locator('[data-testid="coin-row"][data-coin="bitcoin"]')
        expect(btc.locator('[data-col="price"]')).to_have_text(BTC_NOW)

    def paste(self, token: str) -> None:
        self.page.get_by_label("Access token", exact=True).fill(token)
        self.page.get_by_role("button", name="Use token").click()

    def stored_token(self) -> str | None:
        value: str | None = self.page.evaluate("sessionStorage.getItem('cryptopulse.token')")
        return value

    def close(self) -> None:
        try:
            html = self.page.content()
            assert TOKEN not in html, "the token is in the rendered HTML"
            assert WRONG not in html, "a token is in the rendered HTML"
            leaks = [u for u in self.urls if TOKEN in u or WRONG in u]
            # A #fragment never leaves the browser: Playwright reports navigations without it.
            assert leaks == [], f"a token in a request URL: {leaks}"
            logged = [line for line in self.console if TOKEN in line or WRONG in line]
            assert logged == [], f"a token in the console: {logged}"
            csp = [line for line in self.console if "Content Security Policy" in line]
            assert csp == [], f"CSP violations: {csp}"
            assert self.errors == [], f"uncaught errors in the page: {self.errors}"
        finally:
            self.context.close()


@pytest.fixture
def tab(browser: Any, server: BackgroundServer) -> Iterator[Tab]:
    opened = Tab(browser, server)
    yield opened
    opened.close()


def test_without_a_token_the_page_asks_for_one_and_shows_no_data(
    tab: Tab, server: BackgroundServer
) -> None:
    before = refusals(server)
    tab.open("/")
    tab.expect_prompt("missing")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(ARTIFACTS / "dashboard-token-prompt.png"), full_page=True)
    tab.expect_quiet()
    assert tab.sockets == 1
    assert refusals(server) == before + 1  # the server saw one refused socket, not a loop
    # The server accepts, then closes with 1008 and its reason: the page needs no /api probe.
    assert tab.api_auth == []


def test_a_pasted_token_shows_the_coins(tab: Tab) -> None:
    tab.open("/")
    tab.expect_prompt("missing")
    tab.paste(TOKEN)
    tab.expect_coins()
    assert tab.page.get_by_label("Access token", exact=True).count() == 0
    assert tab.stored_token() == TOKEN  # kept for this tab's session
    assert TOKEN not in tab.page.evaluate("location.href")


def test_a_token_link_shows_the_coins_and_leaves_the_address_bar(tab: Tab) -> None:
    tab.open(f"/?metric=volume#token={TOKEN}")
    tab.expect_coins()
    href: str = tab.page.evaluate("location.href")
    assert TOKEN not in href and "#" not in href, href
    assert href == f"{tab.server.url}/?metric=volume"  # the view state is kept
    assert tab.stored_token() == TOKEN
    # A reload (no fragment any more) still finds the token in the session.
    tab.page.reload()
    tab.expect_coins()


def test_a_wrong_token_shows_the_message_again(tab: Tab, server: BackgroundServer) -> None:
    from playwright.sync_api import expect

    tab.open(f"/#token={WRONG}")
    tab.expect_prompt("refused")
    assert WRONG not in tab.page.evaluate("location.href")
    assert tab.stored_token() is None  # a refused token is not kept
    # Read from the close reason (1008 "missing or wrong token"): no /api probe needed.
    assert tab.api_auth == []
    tab.expect_quiet()

    # The right one connects; a wrong one pasted later is refused again, and its data goes.
    tab.paste(TOKEN)
    tab.expect_coins()
    before = refusals(server)
    tab.page.evaluate(f"location.hash = 'token={WRONG}'")
    tab.expect_prompt("refused")
    assert refusals(server) == before + 1
    tab.paste(WRONG)
    tab.expect_prompt("refused")
    tab.paste("two words")
    expect(tab.page.get_by_role("alert").filter(has_text="That is not a token")).to_be_visible()
    expect(tab.page.get_by_label("Access token", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
