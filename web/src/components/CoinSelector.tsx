// "All cryptocurrencies" plus every coin. A native <select> is keyboard and screen-reader
// accessible everywhere, including phones, without reimplementing a listbox.
import { coinName } from "../lib/coins";
import type { WindowPoint } from "../lib/types";

interface Props {
  coins: readonly WindowPoint[];
  value: string | null;
  onChange: (coin: string | null) => void;
}

export function CoinSelector({ coins, value, onChange }: Props) {
  const known = value === null || coins.some((c) => c.coin === value);
  return (
    <label className="selector">
      <span>Coin</span>
      <select
        value={value ?? "all"}
        onChange={(e) => onChange(e.target.value === "all" ? null : e.target.value)}
        data-testid="coin-selector"
      >
        <option value="all">All cryptocurrencies</option>
        {/* A coin from a shared link that has not arrived yet still shows as selected. */}
        {!known && value !== null && <option value={value}>{coinName(value)}</option>}
        {coins.map((c) => (
          <option key={c.coin} value={c.coin}>
            {coinName(c.coin)} ({c.symbol.toUpperCase()})
          </option>
        ))}
      </select>
    </label>
  );
}
