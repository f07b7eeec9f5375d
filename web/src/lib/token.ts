// The access token of a server with `api.protect_reads`. It arrives in the URL fragment
// (`#token=…`: browsers never send a fragment to a server, so it is in no access log), is kept
// for the tab's session, and travels as a WebSocket subprotocol `token.<TOKEN>` (a browser cannot
// set headers on a WebSocket; a query string would be logged) and as a bearer header on /api/*.
// Pure functions; hooks/useToken does the browser side.

/** The subprotocol the server picks; the token protocol is never echoed back. */
export const SOCKET_PROTOCOL = "cryptopulse";
export const CLOSE_POLICY_VIOLATION = 1008;
/** The server's close reason for a missing or wrong token (cryptopulse/api/app.py). */
export const REFUSED_REASON = "missing or wrong token";
export const TOKEN_STORAGE_KEY = "cryptopulse.token";

// A subprotocol must be an HTTP token (RFC 9110 tchar), or `new WebSocket` throws.
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The token without surrounding whitespace, or null when empty or not sendable as a subprotocol. */
export function cleanToken(raw: string | null | undefined): string | null {
  const token = raw?.trim() ?? "";
  return TOKEN_CHARS.test(token) ? token : null;
}

export interface HashToken {
  /** Whether the fragment had a `token=` part (then the address bar must be rewritten). */
  found: boolean;
  /** The token in it, when usable. */
  token: string | null;
  /** The fragment without any `token=` part ("" when nothing is left). */
  hash: string;
}

function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** Splits `token=<TOKEN>` out of a location hash (`#token=abc`, `#a=1&token=abc`), keeping the rest. */
export function takeTokenFromHash(hash: string): HashToken {
  const parts = hash.replace(/^#/, "").split("&");
  const rest: string[] = [];
  let found = false;
  let token: string | null = null;
  for (const part of parts) {
    if (part.startsWith("token=")) {
      found = true;
      token ??= cleanToken(decode(part.slice("token=".length)));
    } else if (part !== "") {
      rest.push(part);
    }
  }
  return { found, token, hash: rest.length > 0 ? `#${rest.join("&")}` : "" };
}

/** Subprotocols to offer on the WebSocket: none without a token (as before protect_reads). */
export function socketProtocols(token: string | null): string[] {
  return token === null ? [] : [SOCKET_PROTOCOL, `token.${token}`];
}

/** Headers for every request to /api/*. */
export function authHeaders(token: string | null): Record<string, string> {
  return token === null ? {} : { Authorization: `Bearer ${token}` };
}

/** Whether a WebSocket close is the server refusing the token. */
export function isRefusedClose(code: number, reason: string): boolean {
  return code === CLOSE_POLICY_VIOLATION && reason === REFUSED_REASON;
}

/**
 * The API URL next to a WebSocket URL (`ws://h/ws` → `http://h/api/…`). A browser hides why a
 * WebSocket handshake failed (a refused one and an unreachable server both close with 1006), so
 * the dashboard asks an /api/* endpoint, which answers 401 when the token is missing or wrong.
 */
export function apiUrl(socketUrl: string, path: string): string {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = `${url.pathname.replace(/\/ws\/?$/, "")}${path}`;
  url.search = "";
  url.hash = "";
  return url.toString();
}
