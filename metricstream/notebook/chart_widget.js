// hub.chart()'s view: the anywidget module that draws what the kernel's ChartFeed (chart_feed.py) sends
// over the widget's comm. It draws with the dashboard's own modules, so a metric looks and is coloured the
// same on both. anywidget loads one module from a blob URL, where these imports cannot resolve: chart.py
// inlines the dashboard modules they name into the one module the widget loads.
//
// The kernel sends (content, buffers), each buffer a metric's Float64 values, row by row:
//   state:  {kind, window, metrics: [{id, name, labels, unit, description, points}]}   rows (time ms,
//           value) or buckets (start ms, count, min, max, avg, first, last); replaces everything
//   update: {kind, added: [{id, name, labels, unit, description}], removed: [id], appended: [{id, points}]}
//           rows (time ms, value)
//   error:  {kind, message}
//
// Each metric is a figure: its caption (the legend) shows its name, its labels as the dashboard's cards
// show them (format.js formatLabels), so series of one name are told apart, and its newest value with its
// unit; the description is the name's tooltip.

import { drawChart, readTheme } from "../dashboard/chart.js";
import { metricColor } from "../dashboard/colors.js";
import { Format, formatLabels, metricTitle } from "../dashboard/format.js";
import { History, bucketsChart } from "../dashboard/history.js";
import { Series, readingsChart } from "../dashboard/series.js";

const BUCKET_FIELDS = ["start", "count", "min", "max", "avg", "first", "last"];
const format = new Format();

/** @param {DataView | ArrayBuffer} buffer */
function float64(buffer) {
  if (buffer instanceof ArrayBuffer) return new Float64Array(buffer);
  // a copy: a view's offset into the message need not be a multiple of 8
  const start = buffer.byteOffset;
  return new Float64Array(buffer.buffer.slice(start, start + buffer.byteLength));
}

/** @typedef {{id: string, name: string, labels?: Record<string, string>, unit?: string | null,
 *   description?: string | null}} ShownMetric what the kernel sends of a metric (older servers: no labels) */

/** One metric's data: its newest readings (series.js), or its buckets (history.js). */
class Line {
  /** @param {ShownMetric} metric @param {{limit?: number, step?: number}} shown */
  constructor(metric, shown) {
    this.id = metric.id;
    this.name = metric.name;
    this.labels = formatLabels(metric.labels);
    this.title = metricTitle(metric); // the name and labels in one text
    this.unit = metric.unit ?? "";
    this.description = metric.description ?? "";
    this.color = metricColor(metric.id);
    this.series = shown.limit ? new Series(shown.limit) : null;
    this.history = shown.limit ? null : new History(shown);
    this.added = 0; // names the readings for Series, which holds each id once
    if (this.history) this.history.load([]);
  }

  load(values, now) {
    if (this.series) return this.append(values, now);
    const rows = [];
    for (let i = 0; i < values.length; i += BUCKET_FIELDS.length) {
      const row = { start: new Date(values[i]).toISOString() };
      BUCKET_FIELDS.slice(1).forEach((field, at) => (row[field] = values[i + 1 + at]));
      rows.push(row);
    }
    this.history.load(rows);
  }

  append(values, now) {
    for (let i = 0; i < values.length; i += 2) {
      if (this.series) this.series.add(String(this.added++), values[i], values[i + 1], 0);
      else this.history.fold(values[i], values[i + 1], now);
    }
    if (this.series) this.series.trim();
    else this.history.trim(now);
  }

  chart(now) {
    if (this.series) return readingsChart(this.series, this.series.integers(), format);
    this.history.trim(now);
    return bucketsChart(this.history, format, now);
  }
}

/** What every view of one widget shows, kept on the model so a view opened later shows it too. */
class ChartState {
  constructor() {
    /** @type {Map<string, Line>} in the order shown */
    this.lines = new Map();
    this.window = { limit: 300 };
    this.message = "Loading…";
    /** @type {Set<() => void>} */
    this.listeners = new Set();
  }

  apply(content, buffers) {
    const now = Date.now();
    if (content.kind === "state") {
      this.window = content.window;
      this.lines = new Map();
      content.metrics.forEach((metric, i) => {
        const line = new Line(metric, this.window);
        line.load(float64(buffers[i]), now);
        this.lines.set(metric.id, line);
      });
      this.message = null;
    } else if (content.kind === "update") {
      for (const metric of content.added) this.lines.set(metric.id, new Line(metric, this.window));
      content.appended.forEach((item, i) => this.lines.get(item.id)?.append(float64(buffers[i]), now));
      for (const id of content.removed) this.lines.delete(id);
    } else if (content.kind === "error") {
      this.message = content.message;
    }
    for (const listener of this.listeners) listener();
  }
}

const states = new WeakMap();

function stateOf(model) {
  let state = states.get(model);
  if (state === undefined) {
    state = new ChartState();
    states.set(model, state);
    model.on("msg:custom", (content, buffers) => state.apply(content, buffers));
  }
  return state;
}

function initialize({ model }) {
  stateOf(model);
  // the kernel answers with the whole state: whatever it sent before this model existed is not lost
  model.send({ kind: "hello" });
}

// The dashboard's theme variables (chart.js readTheme) from JupyterLab's, so a dark JupyterLab gets a
// dark chart; elsewhere the dashboard's light colours.
const CSS = `
.metricstream-chart { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr));
  gap: 12px; font: 12px ui-sans-serif, system-ui, sans-serif; color: var(--jp-ui-font-color1, #0f172a);
  --muted: var(--jp-ui-font-color2, #64748b); --surface: var(--jp-layout-color0, #ffffff);
  --grid-line: var(--jp-border-color2, rgba(15, 23, 42, 0.07)); }
.metricstream-chart figure { margin: 0; min-width: 0; }
.metricstream-chart figcaption { display: flex; gap: 6px; align-items: baseline; }
.metricstream-chart figcaption b, .metricstream-chart figcaption .labels { overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
.metricstream-chart figcaption .labels { flex: 1 1 0; }
.metricstream-chart figcaption i { width: 10px; height: 10px; border-radius: 50%; flex: none; }
.metricstream-chart figcaption .reading { flex: none; white-space: nowrap; font-variant-numeric: tabular-nums; }
.metricstream-chart canvas { display: block; width: 100%; }
.metricstream-chart .axis, .metricstream-chart .note, .metricstream-chart .labels,
.metricstream-chart .unit { color: var(--muted); }
.metricstream-chart .axis { display: flex; justify-content: space-between; }
`;

/** One view: a figure per metric (caption, chart, time axis), redrawn once a frame at most. */
class View {
  constructor(model, el, state) {
    this.model = model;
    this.el = el;
    this.state = state;
    this.figures = new Map();
    this.frame = 0;
    this.root = document.createElement("div");
    this.root.className = "metricstream-chart";
    const style = document.createElement("style");
    style.textContent = CSS;
    el.append(style, this.root);
    this.schedule = () => {
      if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
    };
    state.listeners.add(this.schedule);
    model.on("change:height", this.schedule);
    this.resize = new ResizeObserver(this.schedule);
    this.resize.observe(this.root);
    // a window of buckets moves with time, readings or not
    this.ticker = setInterval(() => this.state.window.limit || this.schedule(), 1000);
    this.schedule();
  }

  figure(line) {
    let figure = this.figures.get(line.id);
    if (figure === undefined) {
      figure = document.createElement("figure");
      figure.dataset.metricId = line.id;
      figure.dataset.color = line.color;
      figure.innerHTML =
        '<figcaption><i></i><b></b><span class="labels"></span><span class="reading">' +
        '<span class="value"></span> <span class="unit"></span></span></figcaption><canvas></canvas>' +
        '<div class="axis"><span class="from"></span><span class="label"></span><span class="to"></span></div>';
      figure.querySelector("i").style.background = line.color;
      // names, labels, units and descriptions may hold any text: set as text, never as markup
      const name = figure.querySelector("b");
      name.textContent = line.name;
      name.title = line.description ? `${line.title}\n${line.description}` : line.title;
      const labels = figure.querySelector(".labels");
      labels.textContent = line.labels;
      labels.title = line.labels;
      figure.querySelector(".unit").textContent = line.unit;
      this.figures.set(line.id, figure);
    }
    return figure;
  }

  draw() {
    this.frame = 0;
    const { lines, message } = this.state;
    const now = Date.now();
    const height = this.model.get("height");
    const theme = readTheme(this.root);
    for (const [id, figure] of this.figures) {
      if (!lines.has(id)) {
        figure.remove();
        this.figures.delete(id);
      }
    }
    let points = 0;
    const figures = [];
    for (const line of lines.values()) {
      const figure = this.figure(line);
      figures.push(figure);
      const chart = line.chart(now);
      const canvas = figure.querySelector("canvas");
      canvas.style.height = `${height}px`;
      canvas.setAttribute("aria-label", `${line.title}: ${chart.label}`);
      const width = canvas.clientWidth || this.root.clientWidth;
      drawChart(canvas, chart, { width, height, color: line.color, theme, format, ratio: devicePixelRatio });
      figure.dataset.points = String(chart.message === null ? chart.points : 0);
      points += chart.message === null ? chart.points : 0;
      this.label(figure, chart, now);
      this.reading(figure, chart);
    }
    const note = lines.size ? [] : [this.note(message ?? "No metrics yet")];
    this.root.replaceChildren(...figures, ...note);
    this.el.dataset.points = String(points);
    this.el.dataset.metrics = String(lines.size);
  }

  /** The time axis: its two ends, and what it is. */
  label(figure, chart, now) {
    const shown = chart.message === null && chart.points > 0;
    figure.querySelector(".from").textContent = shown ? format.time(chart.from, now) : "";
    figure.querySelector(".to").textContent = shown ? format.time(chart.to, now) : "";
    const windowed = !this.state.window.limit;
    figure.querySelector(".label").textContent = windowed ? `time (${this.state.window.title})` : "time";
  }

  /** The newest value (of a window of buckets, the newest bucket's average), before the unit. */
  reading(figure, chart) {
    const count = chart.message === null ? chart.points : 0;
    const latest = count ? chart.valueAt(count - 1) : null;
    const integers = chart.integers && Number.isInteger(latest);
    figure.querySelector(".value").textContent = latest === null ? "–" : format.value(latest, integers);
  }

  note(text) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = text;
    return note;
  }

  remove() {
    cancelAnimationFrame(this.frame);
    clearInterval(this.ticker);
    this.resize.disconnect();
    this.state.listeners.delete(this.schedule);
    this.model.off("change:height", this.schedule);
  }
}

function render({ model, el }) {
  const view = new View(model, el, stateOf(model));
  return () => view.remove();
}

export default { initialize, render };
export { metricColor };
