// @vitest-environment happy-dom
// The clock ticks every second; only the pills that show time may re-render on a tick. The charts
// and the table are memo()ed with stable callbacks, so neither a tick nor App's own re-render when
// the data turns stale renders them again.
import { act, createElement, memo, type FunctionComponent } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { agg, T0, WIN } from "./test/fixtures";

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

let root: Root;
let container: HTMLElement;

beforeEach(async () => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  vi.useFakeTimers({ now: T0 + WIN });
  vi.stubGlobal("WebSocket", FakeSocket);
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
    await vi.advanceTimersByTimeAsync(100); // the per-frame batch is flushed
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
