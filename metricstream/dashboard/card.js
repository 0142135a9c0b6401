// One metric's card: its DOM (from index.html's template), its readings (series.js), its buckets in a
// longer window (history.js), and its chart (chart.js). What is shown is written only when it changed.

import { drawChart } from "./chart.js";
import { metricColor } from "./colors.js";
import { formatLabels, metricTitle, parseTime } from "./format.js";
import { History, bucketsChart } from "./history.js";
import { Series, readingsChart } from "./series.js";

/** What every card shares, owned by main.js: the formats, and the theme that follows light and dark mode.
 * @typedef {{format: import("./format.js").Format, theme: import("./chart.js").Theme}} Look
 */

export class Card {
  /**
   * @param {{id: string, name: string, input_frequency?: number | null,
   *   labels?: Record<string, string>, unit?: string | null}} metric
   * @param {HTMLTemplateElement} template
   * @param {Look} look
   */
  constructor(metric, template, look) {
    this.id = metric.id;
    this.look = look;
    this.node = /** @type {HTMLElement} */ (template.content.firstElementChild.cloneNode(true));
    this.node.dataset.metricId = metric.id;
    this.color = metricColor(metric.id);
    this.node.style.setProperty("--accent", this.color);
    const name = this.node.querySelector(".card-name");
    name.textContent = metric.name;
    name.title = metric.name;
    // names, labels and units may hold any text: set as text, never as markup
    const labels = formatLabels(metric.labels);
    const shownLabels = this.node.querySelector(".card-labels");
    shownLabels.textContent = labels;
    shownLabels.title = labels;
    this.node.querySelector(".unit").textContent = metric.unit ?? "";
    this.node.setAttribute("aria-label", metricTitle(metric));
    this.node.querySelector(".card-frequency").textContent = look.format.interval(metric.input_frequency);
    this.value = this.node.querySelector(".value");
    this.delta = this.node.querySelector(".delta");
    this.extent = this.node.querySelector(".card-window");
    this.time = this.node.querySelector(".card-time");
    this.canvas = this.node.querySelector("canvas");
    this.width = 0; // the canvas's size in CSS pixels, as the ResizeObserver gives it
    this.height = 0;
    this.series = new Series();
    /** @type {History | null} the buckets, in a window longer than a minute */
    this.history = null;
    this.retry = 0; // timer asking again for buckets the server failed to give
    /** @type {Record<string, string>} what is shown, by what */
    this.shown = {};
    this.dirty = true;
    this.visible = false;
    this.stale = true; // the chart does not show the data yet
    this.shownAt = -Infinity;
  }

  remove() {
    clearTimeout(this.retry);
    this.node.remove();
  }

  /** The buckets of `view` from now on (none for the raw readings): a new History, still to be loaded.
   * @param {import("./history.js").View} view
   */
  setWindow(view) {
    clearTimeout(this.retry);
    this.history = view.step ? new History(view) : null;
    this.dirty = true;
    return this.history;
  }

  /** Adds a streamed reading brought by event `number`; false if it is held already.
   * @param {{id: string, timestamp: string, value: number}} reading @param {number} number
   */
  add(reading, number) {
    const time = parseTime(reading.timestamp);
    if (!this.series.add(reading.id, time, reading.value, number)) return false;
    const history = this.history;
    if (history !== null && number > history.cutoff) history.fold(time, reading.value, Date.now());
    this.dirty = true;
    return true;
  }

  /** The readings of a state just loaded, read at event `number`. */
  replace(readings, number) {
    clearTimeout(this.retry);
    this.history = null; // buckets of the old state: the caller asks for the window's buckets again
    this.series.clear();
    for (const reading of readings) this.add(reading, number);
    this.series.trim();
    this.dirty = true;
  }

  trim() {
    this.series.trim();
  }

  /** The server's buckets came: folds in the readings streamed after the position they were read at.
   * @param {Parameters<History["load"]>[0]} rows @param {number} cutoff
   */
  loaded(rows, cutoff) {
    const history = this.history;
    history.load(rows);
    history.cutoff = cutoff;
    const { times, values, numbers } = this.series;
    const now = Date.now();
    for (let i = 0; i < numbers.length; i++) {
      if (numbers[i] > cutoff) history.fold(times[i], values[i], now);
    }
    this.dirty = true;
  }

  /** Updates the texts, and the chart when `draw`; returns whether the chart was drawn.
   * @param {number} now performance.now() @param {boolean} draw
   */
  render(now, draw) {
    this.dirty = false;
    this.shownAt = now;
    const { format } = this.look;
    const { times, values, length: count } = this.series;
    const integers = this.series.integers();
    const latest = count ? values[count - 1] : null;
    this.show("latest", String(latest), () => {
      if (latest === null) delete this.node.dataset.value;
      else this.node.dataset.value = String(latest);
    });
    const value = count ? format.value(latest, integers) : "–";
    this.show("value", value, (text) => (this.value.textContent = text));
    let delta = "";
    if (count > 1 && latest !== values[count - 2]) {
      const change = latest - values[count - 2];
      delta = `${change > 0 ? "▲" : "▼"} ${format.value(Math.abs(change), integers)}`;
    }
    this.show("delta", delta, (text) => (this.delta.textContent = text));
    const time = count ? times[count - 1] : null;
    this.show("time", String(time), () => {
      this.time.textContent = time === null ? "no readings yet" : format.time(time, Date.now());
      if (time !== null) this.time.dateTime = new Date(time).toISOString();
    });

    const chart = this.chart(integers);
    this.show("points", String(chart.points), (text) => (this.node.dataset.points = text));
    this.show("readings", String(chart.readings), (text) => (this.node.dataset.readings = text));
    const state = this.history?.state ?? "";
    this.show("history", state, () => {
      if (state) this.node.dataset.history = state;
      else delete this.node.dataset.history;
    });
    this.show("window", chart.extent, (text) => (this.extent.textContent = text));
    this.show("label", chart.label, (text) => this.canvas.setAttribute("aria-label", text));
    if (!draw) {
      this.stale = true;
      return false;
    }
    this.stale = false;
    const { width, height, color } = this;
    const ratio = window.devicePixelRatio || 1;
    drawChart(this.canvas, chart, { width, height, color, ratio, ...this.look });
    return true;
  }

  /** @param {boolean} integers */
  chart(integers) {
    const history = this.history;
    if (history === null) return readingsChart(this.series, integers, this.look.format);
    const now = Date.now();
    history.trim(now);
    return bucketsChart(history, this.look.format, now);
  }

  /** Applies `text` where `key` is shown, unless it is shown already. */
  show(key, text, apply) {
    if (this.shown[key] !== text) {
      this.shown[key] = text;
      apply(text);
    }
  }
}
