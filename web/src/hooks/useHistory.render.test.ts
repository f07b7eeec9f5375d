// @vitest-environment happy-dom
// useHistory in a component: the history read is answered in the server's wire format (the API
// server is not running here), the live windows are the hook's input as the socket would give them.
import { act, createElement, useEffect } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import type { WindowPoint } from "../lib/types";
import { historyAnswer, point, T0, WIN } from "../test/fixtures";
import { useHistory, type HistoryView } from "./useHistory";

let view: HistoryView | null = null;
const requests: URL[] = [];

function Harness({ live }: { live: readonly WindowPoint[] }) {
  const v = useHistory("ws://localhost/ws", "coingecko", "bitcoin", "24h", live, null, true);
  useEffect(() => {
    view = v;
  });
  return null;
}

let root: Root;
let container: HTMLElement;

beforeEach(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  vi.useFakeTimers({ now: T0 + WIN + 5_000 });
  requests.length = 0;
  view = null;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string | URL | Request) => {
      const url = new URL(input instanceof Request ? input.url : input);
      requests.push(url);
      return new Response(JSON.stringify(historyAnswer(url)), { headers: { "Content-Type": "application/json" } });
    }),
  );
  container = document.createElement("div");
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const render = (live: readonly WindowPoint[]) =>
  act(async () => {
    root.render(createElement(Harness, { live }));
    await vi.advanceTimersByTimeAsync(10); // the history answer
  });

it("after the history is read again up to the first live windows, the chart holds all of them", async () => {
  // The coin is known before the socket's snapshot: the first read ends at the clock.
  await render([]);
  expect(requests).toHaveLength(1);
  expect(Date.parse(requests[0]?.searchParams.get("to") ?? "")).toBeGreaterThanOrEqual(T0 + WIN + 5_000);
  // The snapshot: windows 0 and 1 of the 5 min bucket from T0, and nothing after it (no update).
  const live = [point("bitcoin", 0, { open: 90, close: 91, tick_count: 4 }), point("bitcoin", 1, { tick_count: 5 })];
  await render(live);
  // Read again, up to the oldest live window, which the live part then holds from.
  expect(requests.map((u) => u.searchParams.get("to"))).toContain(new Date(T0).toISOString());
  const last = view?.candles[view.candles.length - 1];
  expect(last?.startMs).toBe(T0);
  expect(last?.kind).toBe("live");
  expect(last?.tick_count).toBe(9); // both windows, not only those after the first read's boundary
  expect(last?.open).toBe(90);
  expect(view?.candles.filter((c) => c.startMs === T0)).toHaveLength(1);
});
