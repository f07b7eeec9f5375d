// Display names for coin ids; the wire carries only the id and ticker. The table is the
// backend's (cryptopulse/coins.py), written to src/generated/coins.json by `cryptopulse schema --coins`.
import table from "../generated/coins.json";

const KNOWN: ReadonlyMap<string, string> = new Map(table.map((coin) => [coin.id, coin.name]));

/** "bitcoin" -> "Bitcoin", "shiba-inu" -> "Shiba Inu"; CoinGecko's "-2" style suffixes dropped. */
export function coinName(id: string): string {
  const known = KNOWN.get(id);
  if (known) return known;
  const words = id.split(/[-_.]/).filter((w) => w && !/^\d+$/.test(w));
  return (words.length ? words : [id]).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}
