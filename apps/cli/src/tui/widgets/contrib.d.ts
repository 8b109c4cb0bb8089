// blessed-contrib's widgets are loaded one by one (its index loads maps, markdown and images too).
declare module "blessed-contrib/lib/widget/charts/line.js" {
  import type { Widgets } from "blessed";

  interface LineChart extends Widgets.BoxElement {
    setData(series: { title: string; x: string[]; y: number[]; style?: { line?: string } }[]): void;
  }
  const line: (options: Record<string, unknown>) => LineChart;
  export default line;
}

declare module "blessed-contrib/lib/widget/gauge.js" {
  import type { Widgets } from "blessed";

  interface Gauge extends Widgets.BoxElement {
    setPercent(percent: number): void;
  }
  const gauge: (options: Record<string, unknown>) => Gauge;
  export default gauge;
}
