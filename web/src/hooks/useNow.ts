// A ticking clock for "x seconds ago", countdowns and stale detection without any new data arriving.
// One shared one-second ticker; only the components that read it re-render on a tick, so the
// clock lives in the components that show time, not at the top of the tree.
import { useSyncExternalStore } from "react";

const TICK_MS = 1000;
let now = Date.now();
let timer: ReturnType<typeof setInterval> | undefined;
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (timer === undefined) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const l of listeners) l();
    }, TICK_MS);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/**
 * A value read from the clock; the component re-renders only when it changes. `read` must return
 * a primitive (a new object on every tick would re-render every time, and React rejects it).
 */
export function useClock<T extends string | number | boolean | null>(read: (now: number) => T): T {
  const snapshot = () => read(now);
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

const identity = (t: number) => t;

/** The time, updated every second. */
export function useNow(): number {
  return useClock(identity);
}
