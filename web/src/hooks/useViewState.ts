// View state (selected source and coin, bar metric, chart kind and range) mirrored in the URL; back/forward work.
import { useCallback, useEffect, useRef, useState } from "react";
import { readView, writeView, type ViewState } from "../lib/url";

/** Puts `next` into the address bar: a source, coin or range change is a navigation (back returns to
 * the previous one); metric and chart kind just replace. */
function writeHistory(prev: ViewState, next: ViewState): void {
  const search = writeView(window.location.search, next);
  if (search === window.location.search) return;
  const url = `${window.location.pathname}${search}${window.location.hash}`;
  if (next.coin !== prev.coin || next.source !== prev.source || next.range !== prev.range)
    window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

export function useViewState(): [ViewState, (patch: Partial<ViewState>) => void] {
  const [view, setView] = useState<ViewState>(() => readView(window.location.search));
  // The view as last written, so an update computes the next one (and touches history) outside
  // of a state updater: updaters must stay pure.
  const current = useRef(view);

  useEffect(() => {
    const onPop = () => {
      current.current = readView(window.location.search);
      setView(current.current);
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const update = useCallback((patch: Partial<ViewState>) => {
    const prev = current.current;
    const next = { ...prev, ...patch };
    current.current = next;
    writeHistory(prev, next);
    setView(next);
  }, []);

  return [view, update];
}
