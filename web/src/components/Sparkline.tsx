// A tiny line of closing prices (the coins table's 24 h column): d3.line over width × height,
// coloured by whether the last close is above the first. No axes, no interaction.
import { line, scaleLinear } from "d3";
import { memo, useMemo } from "react";

interface Props {
  width: number;
  height: number;
  data: readonly number[];
}

const PAD = 1.5; // room for the stroke at the edges

export const Sparkline = memo(function Sparkline({ width, height, data }: Props) {
  const d = useMemo(() => {
    if (data.length < 2) return "";
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of data) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const x = scaleLinear([0, data.length - 1], [PAD, width - PAD]);
    // A flat line sits in the middle rather than on an edge.
    const y = hi > lo ? scaleLinear([lo, hi], [height - PAD, PAD]) : () => height / 2;
    return (
      line<number>()
        .x((_, i) => x(i))
        .y((v) => y(v))(data as number[]) ?? ""
    );
  }, [data, width, height]);
  const first = data[0];
  const last = data[data.length - 1];
  const tone = first !== undefined && last !== undefined && last < first ? "down" : "up";
  return (
    <svg
      className={`sparkline ${tone}`}
      width={width}
      height={height}
      data-testid="sparkline"
      data-points={data.length}
      aria-hidden
    >
      {d && <path d={d} />}
    </svg>
  );
});
