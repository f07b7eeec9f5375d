// Display names for coin ids; the wire carries only the id and ticker.
const KNOWN: Readonly<Record<string, string>> = {
  bitcoin: "Bitcoin",
  ethereum: "Ethereum",
  binancecoin: "BNB",
  solana: "Solana",
  cardano: "Cardano",
  ripple: "XRP",
  polkadot: "Polkadot",
  dogecoin: "Dogecoin",
  "avalanche-2": "Avalanche",
  chainlink: "Chainlink",
};

/** "bitcoin" -> "Bitcoin", "shiba-inu" -> "Shiba Inu"; CoinGecko's "-2" style suffixes dropped. */
export function coinName(id: string): string {
  const known = KNOWN[id];
  if (known) return known;
  const words = id.split(/[-_.]/).filter((w) => w && !/^\d+$/.test(w));
  return (words.length ? words : [id]).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}
