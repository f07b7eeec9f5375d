// Fails when src/generated/types.ts was not regenerated after schema.json changed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";
import { expect, it } from "vitest";

const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), "utf8");
// Both checks run the generators (one in a child process): seconds on a busy 2-core machine, so the
// limit is for a hung generator, not a slow one.
const GENERATOR_MS = 60_000;

it(
  "generated types match schema.json (run `npm run gen:types`)",
  async () => {
    const schema = JSON.parse(read("../generated/schema.json"));
    const options = JSON.parse(read("../../scripts/gen-types-options.json"));
    expect(read("../generated/types.ts")).toBe(await compile(schema, "CryptoPulse", options));
  },
  GENERATOR_MS,
);

it(
  "generated validators match schema.json (run `npm run gen:validators`)",
  () => {
    const script = fileURLToPath(new URL("../../scripts/gen-validators.mjs", import.meta.url));
    // Throws with the script's message when a generated file is stale.
    expect(execFileSync(process.execPath, [script, "--check"], { encoding: "utf8" })).toContain("up to date");
  },
  GENERATOR_MS,
);

it("validators are plain code: nothing compiles at run time (the CSP has no 'unsafe-eval')", () => {
  const code = read("../generated/validators.js");
  expect(code).not.toMatch(/new Function|\beval\(|require\(/);
  expect(code).not.toMatch(/from "ajv"/);
});
