import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { expect, it } from "vitest";
import { ChartTooltip } from "./ChartTooltip";

const place = (x: number, y: number) =>
  renderToStaticMarkup(createElement(ChartTooltip, { x, y, chartWidth: 600, chartHeight: 300, children: "hi" }));

it("sits beside the pointer, and stays inside the chart near its edges", () => {
  expect(place(100, 50)).toBe('<div class="tooltip" role="tooltip" style="left:112px;top:62px">hi</div>');
  expect(place(590, 290)).toContain('style="left:400px;top:180px"');
});
