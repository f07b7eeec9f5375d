// D3 draws axes (ticks, labels) into a <g> React owns; React draws every other mark.
import { select } from "d3";
import type { Axis as D3Axis, AxisDomain } from "d3";
import { useLayoutEffect, useRef } from "react";

interface Props<D extends AxisDomain> {
  axis: D3Axis<D>;
  transform?: string;
  className?: string;
}

export function Axis<D extends AxisDomain>({ axis, transform, className }: Props<D>) {
  const ref = useRef<SVGGElement>(null);
  useLayoutEffect(() => {
    if (ref.current) select(ref.current).call(axis);
  }, [axis]);
  return <g ref={ref} transform={transform} className={`axis ${className ?? ""}`} />;
}
