// Display names for source ids. The wire carries only the id (`binance`, `coingecko`, ...); a
// source this table does not know is shown by its id, capitalised.
const NAMES: ReadonlyMap<string, string> = new Map([
  ["binance", "Binance"],
  ["coinbase", "Coinbase"],
  ["kraken", "Kraken"],
  ["coingecko", "CoinGecko"],
  ["simulated", "Simulated"],
  ["replay", "Replay"],
]);

export function sourceName(id: string): string {
  return NAMES.get(id) ?? id.charAt(0).toUpperCase() + id.slice(1);
}
