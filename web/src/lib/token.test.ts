import { describe, expect, it } from "vitest";
import {
  apiUrl,
  authHeaders,
  cleanToken,
  isRefusedClose,
  REFUSED_REASON,
  socketProtocols,
  takeTokenFromHash,
} from "./token";

describe("takeTokenFromHash", () => {
  it("takes the token and leaves no fragment behind", () => {
    expect(takeTokenFromHash("#token=abc_DEF-123")).toEqual({ found: true, token: "abc_DEF-123", hash: "" });
  });
  it("keeps other fragment parts", () => {
    expect(takeTokenFromHash("#a=1&token=t0k&b=2")).toEqual({ found: true, token: "t0k", hash: "#a=1&b=2" });
    expect(takeTokenFromHash("#section")).toEqual({ found: false, token: null, hash: "#section" });
  });
  it("finds nothing in an empty fragment", () => {
    expect(takeTokenFromHash("")).toEqual({ found: false, token: null, hash: "" });
    expect(takeTokenFromHash("#")).toEqual({ found: false, token: null, hash: "" });
  });
  it("percent-decodes, and '+' stays a plus", () => {
    expect(takeTokenFromHash("#token=a%2Bb%7Ec").token).toBe("a+b~c");
    expect(takeTokenFromHash("#token=a+b").token).toBe("a+b");
  });
  it("removes an unusable token from the address bar too", () => {
    for (const hash of ["#token=", "#token=a%20b", "#token=%E0%A4%A", "#token=caf%C3%A9"]) {
      expect(takeTokenFromHash(hash)).toEqual({ found: true, token: null, hash: "" });
    }
  });
  it("takes the first usable of several", () => {
    expect(takeTokenFromHash("#token=&token=second&token=third")).toEqual({ found: true, token: "second", hash: "" });
  });
});

describe("cleanToken", () => {
  it("trims pasted whitespace", () => {
    expect(cleanToken("  abc\n")).toBe("abc");
  });
  it("refuses what cannot travel as a WebSocket subprotocol", () => {
    expect(cleanToken("")).toBeNull();
    expect(cleanToken("   ")).toBeNull();
    expect(cleanToken(null)).toBeNull();
    expect(cleanToken("a b")).toBeNull();
    expect(cleanToken("a,b")).toBeNull();
    expect(cleanToken('a"b')).toBeNull();
    expect(cleanToken("tökén")).toBeNull();
  });
});

describe("socketProtocols and authHeaders", () => {
  it("offer the token only when one is known", () => {
    expect(socketProtocols(null)).toEqual([]);
    expect(socketProtocols("s3cret")).toEqual(["cryptopulse", "token.s3cret"]);
    expect(authHeaders(null)).toEqual({});
    expect(authHeaders("s3cret")).toEqual({ Authorization: "Bearer s3cret" });
  });
});

describe("isRefusedClose", () => {
  it("is the server's 1008 with its reason only", () => {
    expect(isRefusedClose(1008, REFUSED_REASON)).toBe(true);
    expect(isRefusedClose(1008, "origin not allowed")).toBe(false);
    expect(isRefusedClose(1006, "")).toBe(false);
    expect(isRefusedClose(1013, REFUSED_REASON)).toBe(false);
  });
});

describe("apiUrl", () => {
  it("is the same host's /api over http(s), without query or fragment", () => {
    expect(apiUrl("ws://127.0.0.1:8000/ws", "/api/sources")).toBe("http://127.0.0.1:8000/api/sources");
    expect(apiUrl("wss://pulse.example/ws", "/api/sources")).toBe("https://pulse.example/api/sources");
    expect(apiUrl("wss://pulse.example/pulse/ws?x=1#y", "/api/sources")).toBe(
      "https://pulse.example/pulse/api/sources",
    );
  });
});
