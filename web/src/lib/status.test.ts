import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { DataAgePill, SourceBadge } from "../components/SourceStatus";
import { status, T0 } from "../test/fixtures";
import { formatTime } from "./format";
import { HEARTBEAT_LATE_MS } from "./market";
import { sourceBadge } from "./status";
import { SOURCE_STATES, type SourceState } from "./types";

const lastGood = T0 - 95_000;
const badgeFor = (state: SourceState, source = "coingecko") =>
  sourceBadge(source, status(source, state, { last_good: new Date(lastGood).toISOString(), detail: "d" }), T0 + 1000);

describe("sourceBadge", () => {
  it.each([
    ["connecting", "Connecting to coingecko"],
    ["live", "Live"],
    ["degraded", `Degraded — last good ${formatTime(lastGood)}, retrying`],
    ["unreachable", "coingecko unreachable"],
    ["simulated", "Simulated data"],
    ["replay", "Replay"],
  ] as const)("%s -> %s", (state, label) => {
    const b = badgeFor(state);
    expect(b.state).toBe(state);
    expect(b.label).toBe(label);
    expect(b.late).toBeNull();
    expect(b.title).toContain("d (coingecko: status at");
  });

  it("never says Live for anything but the live state", () => {
    for (const state of SOURCE_STATES.filter((s) => s !== "live")) {
      expect(badgeFor(state).label).not.toMatch(/live/i);
    }
    expect(sourceBadge("coingecko", null, T0).label).not.toMatch(/live/i);
  });

  it("degraded without a last good time still says it is retrying", () => {
    expect(sourceBadge("coingecko", status("coingecko", "degraded"), T0).label).toBe("Degraded — retrying");
  });

  it("says when a source has data but no status", () => {
    expect(sourceBadge("replay", null, T0)).toMatchObject({ state: "unknown", label: "No status from replay" });
    expect(sourceBadge(null, null, T0)).toMatchObject({ state: "unknown", label: "No source yet" });
  });

  it("flags a status whose heartbeat stopped", () => {
    const s = status("coingecko", "live");
    expect(sourceBadge("coingecko", s, T0 + HEARTBEAT_LATE_MS).late).toBeNull();
    expect(sourceBadge("coingecko", s, T0 + 5 * 60_000).late).toBe("last heard 5 min ago");
  });
});

describe("badge and data age markup", () => {
  it("gives every state its own data-state, class, icon and text", () => {
    const seen = new Set<string>();
    for (const state of SOURCE_STATES) {
      const html = renderToStaticMarkup(createElement(SourceBadge, { badge: badgeFor(state), source: "coingecko" }));
      expect(html).toContain(`data-state="${state}"`);
      expect(html).toContain(`class="pill badge ${state}"`);
      expect(html).toContain('data-testid="source-badge"');
      expect(html).toContain('data-source="coingecko"');
      expect(html).toContain("<svg");
      const icon = /class="lucide ([^"]+)"/.exec(html)?.[1];
      expect(icon).toBeDefined();
      seen.add(icon ?? "");
      expect(html).toContain(badgeFor(state).label.replace("&", "&amp;"));
    }
    expect(seen.size).toBe(SOURCE_STATES.length);
  });

  it("shows the data age, and flags stale data", () => {
    const fresh = renderToStaticMarkup(
      createElement(DataAgePill, { age: { ageMs: 12_400, stale: false }, newestEndMs: T0, windowMs: 30_000 }),
    );
    expect(fresh).toContain('data-state="fresh"');
    expect(fresh).toContain("data 12 s old");
    expect(fresh).not.toContain("stale<");
    const stale = renderToStaticMarkup(
      createElement(DataAgePill, { age: { ageMs: 200_000, stale: true }, newestEndMs: T0, windowMs: 30_000 }),
    );
    expect(stale).toContain('data-state="stale"');
    expect(stale).toContain("data 3 min old");
    expect(stale).toContain(">stale<");
    const empty = renderToStaticMarkup(
      createElement(DataAgePill, { age: { ageMs: null, stale: false }, newestEndMs: null, windowMs: 30_000 }),
    );
    expect(empty).toContain('data-state="empty"');
    expect(empty).toContain("no data yet");
  });
});
