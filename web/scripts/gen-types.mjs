// Generates src/generated/types.ts from the backend's JSON Schema (src/generated/schema.json,
// written by `cryptopulse schema`), so the wire types are never hand-written.
// With --check it fails when types.ts is out of date instead of writing it.
import { readFile, writeFile } from "node:fs/promises";
import { compile } from "json-schema-to-typescript";

const here = new URL("../src/generated/", import.meta.url);
const schema = JSON.parse(await readFile(new URL("schema.json", here), "utf8"));
const options = JSON.parse(await readFile(new URL("gen-types-options.json", import.meta.url), "utf8"));
const ts = await compile(schema, "CryptoPulse", options);
const typesUrl = new URL("types.ts", here);

if (process.argv.includes("--check")) {
  const current = await readFile(typesUrl, "utf8").catch(() => "");
  if (current !== ts) {
    console.error("src/generated/types.ts is out of date: run `npm run gen:types`");
    process.exit(1);
  }
  console.log("generated types are up to date");
} else {
  await writeFile(typesUrl, ts);
  console.log("wrote src/generated/types.ts");
}
