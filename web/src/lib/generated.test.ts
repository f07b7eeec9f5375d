// Fails when src/generated/types.ts was not regenerated after schema.json changed.
import { readFileSync } from "node:fs";
import { compile } from "json-schema-to-typescript";
import { expect, it } from "vitest";

const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), "utf8");

it("generated types match schema.json (run `npm run gen:types`)", async () => {
  const schema = JSON.parse(read("../generated/schema.json"));
  const options = JSON.parse(read("../../scripts/gen-types-options.json"));
  expect(read("../generated/types.ts")).toBe(await compile(schema, "CryptoPulse", options));
});
