import { afterEach, describe, expect, it, vi } from "vitest";
import { socketUrl } from "./url";

const page = { protocol: "http:", host: "127.0.0.1:8000", search: "?coin=bitcoin&ws=wss://elsewhere.example/ws" };

describe("socketUrl outside development", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("ignores ?ws= in a built app: a link cannot point the dashboard at another server", () => {
    expect(socketUrl(page, undefined, false)).toBe("ws://127.0.0.1:8000/ws");
    expect(socketUrl({ ...page, search: "?ws=/feed" }, undefined, false)).toBe("ws://127.0.0.1:8000/ws");
    // The build-time setting still applies.
    expect(socketUrl(page, "wss://api.example/ws", false)).toBe("wss://api.example/ws");
  });

  it("follows import.meta.env.DEV by default", () => {
    vi.stubEnv("DEV", false);
    expect(socketUrl(page)).toBe("ws://127.0.0.1:8000/ws");
    vi.stubEnv("DEV", true);
    expect(socketUrl(page)).toBe("wss://elsewhere.example/ws");
  });
});
