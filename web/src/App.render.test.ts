// @vitest-environment happy-dom
// The clock ticks every second; only the pills that show time may re-render on a tick. The charts
// and the table are memo()ed with stable callbacks, so neither a tick nor App's own re-render when
// the data turns stale renders them again.
import { act, createElement, memo, type FunctionComponent } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { agg, historyAnswer, T0, WIN } from "./test/fixtures";

const renders = vi.hoisted(() => ({ BarChart: 0, LineChart: 0, CoinTable: 0 }));

/** Replaces a memo() component with one that counts its renders (same inner function, same memo). */
function counted<P extends object>(name: keyof typeof renders, component: unknown) {
  const inner = (component as { type: FunctionComponent<P> }).type;
  return memo((props: P) => {
    renders[name]++;
    return inner(props);
  });
}

vi.mock("./components/BarChart", async (load) => {
  const m = await load<typeof import("./components/BarChart")>();
  return { BarChart: counted("BarChart", m.BarChart) };
});
vi.mock("./components/LineChart", async (load) => {
  const m = await load<typeof import("./components/LineChart")>();
  return { LineChart: counted("LineChart", m.LineChart) };
});
vi.mock("./components/CoinTable", async (load) => {
  const m = await load<typeof import("./components/CoinTable")>();
  return { CoinTable: counted("CoinTable", m.CoinTable) };
});
// happy-dom lays nothing out: give the chart boxes a size so the charts render.
vi.mock("./hooks/useElementSize", () => ({
  useElementSize: () => [{ current: null }, { width: 800, height: 400 }],
}));

/** A WebSocket that the test drives. */
class FakeSocket {
  static last: FakeSocket | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  readyState = 0;
  constructor() {
    FakeSocket.last = this;
  }
  close() {}
  send() {}
}

/** The history reads, answered in the server's wire format (the API server is not running here). */
const requests: URL[] = [];
const signals: (AbortSignal | undefined)[] = [];
/** History intervals whose answers never come (until the request is aborted). */
const hanging = new Set<string>();
async function serve(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  requests.push(url);
  signals.push(init?.signal ?? undefined);
  if (hanging.has(url.searchParams.get("interval") ?? "")) {
    return new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
  }
  const body = url.pathname.startsWith("/api/history/")
    ? historyAnswer(url)
    : {
        source: url.searchParams.get("source"),
        interval: "5m",
        start: "2026-11-23T22:00:00Z",
        end: "2026-11-24T22:00:00Z",
        closes: { bitcoin: [1, 2, 3] },
      };
  return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
}

let root: Root;
let container: HTMLElement;

beforeEach(async () => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  vi.useFakeTimers({ now: T0 + WIN });
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.stubGlobal("fetch", vi.fn(serve));
  requests.length = 0;
  signals.length = 0;
  hanging.clear();
  window.history.replaceState(null, "", "/");
  const { App } = await import("./App");
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  await act(async () => root.render(createElement(App)));
  const ws = FakeSocket.last;
  if (!ws) throw new Error("App opened no WebSocket");
  const snapshot = { type: "snapshot", data: [agg("bitcoin", 0), agg("ethereum", 0)] };
  await act(async () => {
    ws.readyState = 1;
    ws.onopen?.();
    ws.onmessage?.({ data: JSON.stringify(snapshot) });
    await vi.advanceTimersByTimeAsync(100); // the per-frame batch is flushed, the history read
  });
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const counts = () => ({ ...renders });
const text = (testId: string) => container.querySelector(`[data-testid="${testId}"]`)?.textContent ?? "";

it("a clock tick re-renders the data age, not the charts or the table", async () => {
  expect(container.querySelectorAll('[data-testid="coin-row"]')).toHaveLength(2);
  expect(renders.BarChart).toBeGreaterThan(0);
  expect(renders.LineChart).toBeGreaterThan(0);
  const before = counts();
  const ageBefore = text("data-age");
  await act(async () => vi.advanceTimersByTimeAsync(5000));
  expect(text("data-age")).not.toBe(ageBefore); // the clock did tick where it is shown
  expect(counts()).toEqual(before);
});

it("data turning stale re-renders App, and still not the charts or the table", async () => {
  const before = counts();
  expect(container.querySelector(".app")?.className).not.toContain("is-stale");
  await act(async () => vi.advanceTimersByTimeAsync(120_000));
  expect(container.querySelector(".app")?.className).toContain("is-stale");
  expect(counts()).toEqual(before);
});

it("a coin choice is a navigation in history, a metric choice replaces; the views follow", async () => {
  const push = vi.spyOn(window.history, "pushState");
  const replace = vi.spyOn(window.history, "replaceState");
  const click = (el: Element | null) => act(async () => el?.dispatchEvent(new MouseEvent("click", { bubbles: true })));
  await click(container.querySelector('[data-testid="coin-row"][data-coin="ethereum"]'));
  expect(push).toHaveBeenCalledOnce();
  expect(window.location.search).toBe("?coin=ethereum");
  expect(container.querySelector('[data-testid="coin-row"].selected')?.getAttribute("data-coin")).toBe("ethereum");
  await click(container.querySelector('[data-testid="metric-change"]'));
  expect(replace).toHaveBeenCalledOnce();
  expect(push).toHaveBeenCalledOnce();
  expect(window.location.search).toBe("?coin=ethereum&metric=change");
});

it("the chart loads its range from the history, follows the live edge, and switches range in the URL", async () => {
  const click = (el: Element | null) => act(async () => el?.dispatchEvent(new MouseEvent("click", { bubbles: true })));
  const history = () => requests.filter((u) => u.pathname === "/api/history/bitcoin");
  const starts = () =>
    [...container.querySelectorAll('[data-testid="candle"]')].map((c) => c.getAttribute("data-start"));
  // The history ends where the live windows this page holds begin (the snapshot's oldest).
  expect(history()).toHaveLength(1);
  const first = history()[0] as URL;
  expect(first.searchParams.get("interval")).toBe("5m");
  expect(first.searchParams.get("to")).toBe(new Date(T0).toISOString());
  expect(first.searchParams.get("source")).toBe("coingecko");
  expect(text("chart-interval")).toContain("24H · 5m candles");

  await click([...container.querySelectorAll("button")].find((b) => b.textContent?.includes("Candles")) ?? null);
  expect(window.location.search).toBe("?chart=candles");
  const loaded = starts();
  expect(loaded.length).toBe(288); // 287 backfilled 5 min candles, then the live one
  expect(new Set(loaded).size).toBe(loaded.length);
  const marks = container.querySelectorAll('[data-testid="candle"]');
  expect(marks[0]?.getAttribute("data-kind")).toBe("backfill");
  expect(marks[marks.length - 1]?.getAttribute("data-kind")).toBe("live");

  // A live window in the same 5 min bucket updates the last candle; one in the next adds one.
  const ws = FakeSocket.last as FakeSocket;
  const send = (data: unknown[]) =>
    act(async () => {
      ws.onmessage?.({ data: JSON.stringify({ type: "market_update", data }) });
      await vi.advanceTimersByTimeAsync(300);
    });
  await send([agg("bitcoin", 1, { close: 150, final: false })]);
  expect(starts()).toEqual(loaded);
  await send([agg("bitcoin", 10, { close: 160, final: false })]);
  // The range follows the live edge: the new candle comes in, the oldest goes out.
  expect(starts()).toEqual([...loaded.slice(1), new Date(T0 + 300_000).toISOString()]);

  // 7D: a navigation, a history read at 1 h, and the chart redrawn at that interval.
  const push = vi.spyOn(window.history, "pushState");
  await click(container.querySelector('[data-testid="range-7d"]'));
  await act(async () => vi.advanceTimersByTimeAsync(100));
  expect(push).toHaveBeenCalledOnce();
  expect(window.location.search).toBe("?chart=candles&range=7d");
  expect(container.querySelector('[data-testid="range-7d"]')?.getAttribute("aria-pressed")).toBe("true");
  expect(history().at(-1)?.searchParams.get("interval")).toBe("1h");
  expect(text("chart-interval")).toContain("7D · 1h candles");
  expect(container.querySelector('[data-testid="line-chart"]')?.getAttribute("data-points")).toBe(
    String(starts().length),
  );
  expect(starts().length).toBeGreaterThan(160);
  expect(starts().length).toBeLessThanOrEqual(169);
});

it("shows each coin's last 24 h as a sparkline in the table", () => {
  const spark = (coin: string) =>
    container.querySelector(`[data-testid="coin-row"][data-coin="${coin}"] [data-testid="sparkline"]`);
  expect(spark("bitcoin")?.getAttribute("data-points")).toBe("3");
  expect(spark("bitcoin")?.querySelector("path")?.getAttribute("d")).toMatch(/^M/);
  expect(spark("ethereum")?.getAttribute("data-points")).toBe("0");
  expect(requests.some((u) => u.pathname === "/api/sparklines" && u.searchParams.get("hours") === "24")).toBe(true);
});

it("aborts the read of a range left before its answer, and reads again after a reconnect", async () => {
  const click = (el: Element | null) => act(async () => el?.dispatchEvent(new MouseEvent("click", { bubbles: true })));
  const history = () => requests.filter((u) => u.pathname === "/api/history/bitcoin");
  hanging.add("4h");
  await click(container.querySelector('[data-testid="range-30d"]'));
  const slow = signals[requests.indexOf(history().at(-1) as URL)];
  expect(history().at(-1)?.searchParams.get("interval")).toBe("4h");
  expect(slow?.aborted).toBe(false);
  await click(container.querySelector('[data-testid="range-7d"]'));
  expect(slow?.aborted).toBe(true);
  expect(history().at(-1)?.searchParams.get("interval")).toBe("1h");

  // The server goes away and comes back: the socket reconnects and the range is read again.
  const reads = history().length;
  const old = FakeSocket.last as FakeSocket;
  await act(async () => {
    old.onclose?.({ code: 1006, reason: "" });
    await vi.advanceTimersByTimeAsync(20_000); // the reconnect's backoff
  });
  const ws = FakeSocket.last as FakeSocket;
  expect(ws).not.toBe(old);
  await act(async () => {
    ws.onopen?.();
    ws.onmessage?.({ data: JSON.stringify({ type: "snapshot", data: [agg("bitcoin", 0), agg("ethereum", 0)] }) });
    await vi.advanceTimersByTimeAsync(300);
  });
  expect(history().length).toBe(reads + 1);
  expect(history().at(-1)?.searchParams.get("interval")).toBe("1h");
});

it("with a second source for the coin, shows both prices across sources; a row switches the source", async () => {
  expect(container.querySelector('[data-testid="cross-exchange"]')).toBeNull(); // one source: hidden
  const ws = FakeSocket.last as FakeSocket;
  const update = { type: "market_update", data: [agg("bitcoin", 0, { source: "binance", close: 101, quote: "USDT" })] };
  await act(async () => {
    ws.onmessage?.({ data: JSON.stringify(update) });
    await vi.advanceTimersByTimeAsync(300);
  });
  const rows = [...container.querySelectorAll('[data-testid="cross-exchange-row"]')];
  expect(
    rows.map((r) => [r.getAttribute("data-source"), r.getAttribute("data-quote"), r.getAttribute("data-rank")]),
  ).toEqual([
    ["binance", "USDT", "highest"],
    ["coingecko", "", "lowest"],
  ]);
  expect(text("cross-exchange-mixed")).toContain("no quote currency from CoinGecko");
  // The panel shows ages, so it follows the clock; the charts and the table still do not.
  const before = counts();
  await act(async () => vi.advanceTimersByTimeAsync(5000));
  expect(counts()).toEqual(before);
  await act(async () => rows[0]?.querySelector("button")?.dispatchEvent(new MouseEvent("click", { bubbles: true })));
  expect(window.location.search).toBe("?source=binance");
  expect(container.querySelector(".app")?.getAttribute("data-source")).toBe("binance");
});
