// The access token (lib/token) in the browser: taken from `#token=` (a link `cryptopulse up`
// prints), which is removed from the address bar at once so it is not bookmarked or shared by
// accident, then kept in this tab's sessionStorage. Never logged, never rendered.
import { useCallback, useEffect, useState } from "react";
import { cleanToken, takeTokenFromHash, TOKEN_STORAGE_KEY } from "../lib/token";

/** A new object per submission, so offering the same token again reconnects. */
export interface Credential {
  readonly token: string | null;
}

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token lasts as long as the page
  }
}

function remember(token: string): void {
  try {
    storage()?.setItem(TOKEN_STORAGE_KEY, token);
  } catch {
    // quota or privacy mode: keep it in memory only
  }
}

/** Forgets the stored token (the server refused it); the page keeps what it has in memory. */
export function forgetStoredToken(): void {
  storage()?.removeItem(TOKEN_STORAGE_KEY);
}

/** The fragment's token (stored, and removed from the address bar), else the stored one. */
function loadToken(): string | null {
  const { found, token, hash } = takeTokenFromHash(window.location.hash);
  if (found) {
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${search}${hash}`);
    if (token !== null) {
      remember(token);
      return token;
    }
  }
  return cleanToken(storage()?.getItem(TOKEN_STORAGE_KEY));
}

export function useToken(): [Credential, (token: string) => void] {
  // Idempotent (a second call finds the stored token), so StrictMode's double call is harmless.
  const [credential, setCredential] = useState<Credential>(() => ({ token: loadToken() }));

  // A `#token=` link opened in a tab that already shows the dashboard changes only the fragment.
  useEffect(() => {
    const onHash = () => {
      if (takeTokenFromHash(window.location.hash).found) setCredential({ token: loadToken() });
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const submit = useCallback((token: string) => {
    remember(token);
    setCredential({ token });
  }, []);

  return [credential, submit];
}
