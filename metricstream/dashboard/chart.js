// One chart on a canvas: a line of values over time, the area under it (or for buckets a band from min to
// max), guides at the highest and lowest value, and the newest point. It reads nothing global at load and
// holds no state, so any page may import it: the dashboard's cards, and a notebook's chart widget loaded
// from another origin. Colours: `metricColor(id)` (colors.js) gives a metric's, the same everywhere.
//
//   import { drawChart, metricColor } from "<hub>/dashboard/chart.js";
//   drawChart(canvas, chart, { width: 300, height: 120, color: metricColor(id) });

import { metricColor } from "./colors.js";
import { Format } from "./format.js";

export { metricColor };

/** What to draw: series.js's readingsChart and history.js's bucketsChart describe their data so.
 * @typedef {object} Chart
 * @property {number} points how many points
 * @property {(i: number) => number} timeAt point i's time, ms
 * @property {(i: number) => number} valueAt point i's value
 * @property {((i: number) => {min: number, max: number}) | null} band point i's range, for buckets
 * @property {number} from the time axis, ms
 * @property {number} to
 * @property {number} low the lowest and highest value drawn
 * @property {number} high
 * @property {boolean} integers every value is whole: labels without decimals
 * @property {string | null} message drawn instead of the chart (no points, or none yet)
 * @property {number} readings the texts a card shows beside the chart
 * @property {string} extent
 * @property {string} label
 */

/** @typedef {{muted: string, grid: string, surface: string, font: string}} Theme */

/** The dashboard's light colours, for a page without its stylesheet. */
export const LIGHT_THEME = {
  muted: "#64748b",
  grid: "rgba(15, 23, 42, 0.07)",
  surface: "#ffffff",
  font: 'ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif',
};

/** The theme of the dashboard's CSS variables where `element` is (dark mode included); those not set
 * there keep LIGHT_THEME's.
 * @param {Element} element
 * @returns {Theme}
 */
export function readTheme(element) {
  const style = getComputedStyle(element);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    muted: read("--muted", LIGHT_THEME.muted),
    grid: read("--grid-line", LIGHT_THEME.grid),
    surface: read("--surface", LIGHT_THEME.surface),
    font: read("--font", LIGHT_THEME.font),
  };
}

const DEFAULT_FORMAT = new Format();

/** Draws `chart` on `canvas`, sized `width` x `height` CSS pixels (its backing store follows, times
 * `ratio`: window.devicePixelRatio). Clears the canvas once.
 * @param {HTMLCanvasElement} canvas
 * @param {Chart} chart
 * @param {{width: number, height: number, ratio?: number, color: string, theme?: Theme,
 *   format?: Format}} options color: "#rrggbb"
 */
export function drawChart(canvas, chart, options) {
  const { width, height, ratio = 1, color, theme = LIGHT_THEME, format = DEFAULT_FORMAT } = options;
  if (!width || !height) return;
  const pixelWidth = Math.round(width * ratio);
  const pixelHeight = Math.round(height * ratio);
  if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
    canvas.width = pixelWidth;
    canvas.height = pixelHeight;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = `11px ${theme.font}`;
  if (chart.message !== null) {
    context.fillStyle = theme.muted;
    context.textAlign = "center";
    context.textBaseline = "middle";
    context.fillText(chart.message, width / 2, height / 2);
    return;
  }
  const { points: count, low, high, valueAt, band } = chart;

  // value axis: the window's range with some air, never empty
  let span = high - low;
  const pad = span > 0 ? span * 0.12 : Math.abs(high) * 0.05 || 1;
  span += 2 * pad;
  const bottom = low - pad;
  const top = 14; // room for the upper label
  const plotHeight = height - top - 4;
  const y = (value) => top + plotHeight * (1 - (value - bottom) / span);
  const x = timeAxis(chart, width);

  // guides at the window's highest and lowest value
  context.strokeStyle = theme.grid;
  context.lineWidth = 1;
  context.setLineDash([3, 4]);
  context.beginPath();
  for (const value of high === low ? [high] : [high, low]) {
    const level = Math.round(y(value)) + 0.5;
    context.moveTo(0, level);
    context.lineTo(width, level);
  }
  context.stroke();
  context.setLineDash([]);

  // the line; under it the area, or for buckets the band from min to max
  const line = new Path2D();
  line.moveTo(x(0), y(valueAt(0)));
  for (let i = 1; i < count; i++) line.lineTo(x(i), y(valueAt(i)));
  if (band === null) {
    const area = new Path2D(line);
    area.lineTo(x(count - 1), height);
    area.lineTo(x(0), height);
    area.closePath();
    const fill = context.createLinearGradient(0, top, 0, height);
    fill.addColorStop(0, `${color}40`);
    fill.addColorStop(1, `${color}00`);
    context.fillStyle = fill;
    context.fill(area);
  } else {
    const range = new Path2D();
    range.moveTo(x(0), y(band(0).max));
    for (let i = 1; i < count; i++) range.lineTo(x(i), y(band(i).max));
    for (let i = count - 1; i >= 0; i--) range.lineTo(x(i), y(band(i).min));
    range.closePath();
    context.fillStyle = `${color}33`;
    context.fill(range);
  }
  context.strokeStyle = color;
  context.lineWidth = 1.75;
  context.lineJoin = "round";
  context.lineCap = "round";
  context.stroke(line);

  // the newest point
  context.beginPath();
  context.arc(x(count - 1), y(valueAt(count - 1)), 3.5, 0, 2 * Math.PI);
  context.fillStyle = color;
  context.fill();
  context.lineWidth = 2;
  context.strokeStyle = theme.surface;
  context.stroke();

  // labels of the guides, with a halo so the line never makes them unreadable
  context.fillStyle = theme.muted;
  context.strokeStyle = theme.surface;
  context.lineWidth = 3;
  context.textAlign = "left";
  const label = (value, baseline, offset) => {
    const text = format.value(value, chart.integers);
    context.textBaseline = baseline;
    context.strokeText(text, 4, Math.round(y(value)) + offset);
    context.fillText(text, 4, Math.round(y(value)) + offset);
  };
  label(high, "bottom", -2);
  if (high !== low) label(low, "top", 3);
}

/** Point i's x; points that all share one time are spread evenly instead.
 * @param {Chart} chart @param {number} width
 */
function timeAxis(chart, width) {
  const { points: count, timeAt, from } = chart;
  const duration = chart.to - from;
  if (duration > 0) return (i) => 4 + (width - 8) * ((timeAt(i) - from) / duration);
  return (i) => (count > 1 ? 4 + ((width - 8) * i) / (count - 1) : width - 8);
}
