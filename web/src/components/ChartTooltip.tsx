// The charts' one tooltip: an HTML box beside the pointer, kept inside the chart's box.
import type { ReactNode } from "react";

/** Room the box needs (CSS caps its width at 220 px); it flips inside the chart near an edge. */
const BOX_W = 200;
const BOX_H = 120;
const OFFSET = 12;

interface Props {
  /** Pointer position relative to the chart's top-left corner. */
  x: number;
  y: number;
  chartWidth: number;
  chartHeight: number;
  /** Room the box needs in height, when it has more lines than most. */
  boxHeight?: number;
  children: ReactNode;
}

export function ChartTooltip({ x, y, chartWidth, chartHeight, boxHeight = BOX_H, children }: Props) {
  const left = Math.min(x + OFFSET, Math.max(0, chartWidth - BOX_W));
  const top = Math.max(0, Math.min(y + OFFSET, chartHeight - boxHeight));
  return (
    <div className="tooltip" role="tooltip" style={{ left, top }}>
      {children}
    </div>
  );
}
