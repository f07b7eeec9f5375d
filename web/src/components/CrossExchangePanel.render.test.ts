// @vitest-environment happy-dom
// The cross-source panel rendered to markup: one row per source, the marks, the spread, the quotes.
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { MarketState } from "../lib/market";
import type { WindowPoint } from "../lib/types";
import { point, T0, WIN } from "../test/fixtures";
import { CrossExchangePanel } from "./CrossExchangePanel";

// The panel reads the real clock: use the window open now, so no price is stale.
const NOW_I = Math.floor((Date.now() - T0) / WIN);

function win(source: string, close: number, quote: string | null): WindowPoint {
  return point("bitcoin", NOW_I, { source, close, open: close, high: close, low: close, avg_price: close, quote });
}

function render(...ws: WindowPoint[]): Document {
  const history: Record<string, Record<string, WindowPoint[]>> = {};
  for (const w of ws) history[w.source] = { bitcoin: [w] };
  const props = { history: history as MarketState["history"], coin: "bitcoin", selected: "kraken", onSelect: () => {} };
  return new DOMParser().parseFromString(renderToStaticMarkup(createElement(CrossExchangePanel, props)), "text/html");
}

const q = (doc: Document, testId: string) => doc.querySelector(`[data-testid="${testId}"]`);

describe("CrossExchangePanel", () => {
  it("shows each source's last price with its quote, the highest and lowest, and the spread", () => {
    const doc = render(win("binance", 100, "USD"), win("coinbase", 100.5, "USD"), win("kraken", 100.25, "USD"));
    const rows = [...doc.querySelectorAll('[data-testid="cross-exchange-row"]')];
    expect(rows.map((r) => r.getAttribute("data-source"))).toEqual(["binance", "coinbase", "kraken"]);
    expect(rows.map((r) => r.getAttribute("data-rank"))).toEqual(["lowest", "highest", null]);
    expect(rows[1]?.textContent).toContain("Coinbase");
    expect(rows[1]?.textContent).toContain("100.50 USD");
    expect(rows[2]?.className).toContain("selected");
    const panel = q(doc, "cross-exchange");
    expect(Number(panel?.getAttribute("data-spread-bps"))).toBeCloseTo(50, 9);
    expect(panel?.getAttribute("data-mixed-quotes")).toBe("false");
    expect(q(doc, "cross-exchange-spread")?.textContent).toBe("spread 50.0 bps (highest vs lowest)");
    expect(q(doc, "cross-exchange-mixed")).toBeNull();
  });

  it("says so when the spread mixes USD and USDT, and shows an unknown quote as unknown", () => {
    const doc = render(win("binance", 100, "USDT"), win("kraken", 100, "USD"), win("coingecko", 100, null));
    expect(q(doc, "cross-exchange")?.getAttribute("data-mixed-quotes")).toBe("true");
    expect(q(doc, "cross-exchange-mixed")?.textContent).toContain("USD vs USDT");
    const quotes = [...doc.querySelectorAll('[data-testid="cross-exchange-row"]')].map((r) =>
      r.getAttribute("data-quote"),
    );
    expect(quotes).toEqual(["USDT", "", "USD"]); // Binance, CoinGecko, Kraken
    expect(doc.querySelector('[data-source="coingecko"] .quote')?.textContent).toBe("?");
  });

  it("is not shown with one source", () => {
    const doc = render(win("binance", 100, "USDT"));
    expect(q(doc, "cross-exchange")).toBeNull();
    expect(doc.body.innerHTML).toBe("");
  });
});
