// View state (selected source and coin, bar metric, chart kind) mirrored in the URL; back/forward work.
import { useCallback, useEffect, useState } from "react";
import { readView, writeView, type ViewState } from "../lib/url";

export function useViewState(): [ViewState, (patch: Partial<ViewState>) => void] {
  const [view, setView] = useState<ViewState>(() => readView(window.location.search));

  useEffect(() => {
    const onPop = () => setView(readView(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const update = useCallback((patch: Partial<ViewState>) => {
    setView((v) => {
      const next = { ...v, ...patch };
      const search = writeView(window.location.search, next);
      if (search !== window.location.search) {
        // A source or coin change is a navigation (back returns to the previous one); metric and
        // chart kind just replace.
        const url = `${window.location.pathname}${search}${window.location.hash}`;
        const navigates =
          (patch.coin !== undefined && patch.coin !== v.coin) ||
          (patch.source !== undefined && patch.source !== v.source);
        if (navigates) window.history.pushState(null, "", url);
        else window.history.replaceState(null, "", url);
      }
      return next;
    });
  }, []);

  return [view, update];
}
