// A card's buckets in a window longer than a minute: the server's answer (GET metrics/{id}/readings?step=),
// and every streamed reading after the position it was read at, folded into its bucket (or starting one).
// Buckets scroll out as time passes. Pure: the time is always given, so node tests drive it.
//
// Which streamed readings an answer already holds is told by its X-Last-Event-ID (Handoff, below): those up
// to that event are not counted again. (A store whose reads take time, sqlite, may still hold one of the
// next few readings: its bucket then counts it twice, until the next load.)

import { parseTime } from "./format.js";

/** @typedef {{step: number, span?: number, title?: string}} View span and step in seconds; no step: raw */

/** The picker's choices (index.html lists them): about READINGS_KEPT buckets each. */
export const WINDOWS = {
  live: { step: 0 },
  "10m": { step: 2, span: 600, title: "the last 10 minutes" },
  "1h": { step: 12, span: 3600, title: "the last hour" },
  "6h": { step: 60, span: 6 * 3600, title: "the last 6 hours" },
  "1d": { step: 300, span: 24 * 3600, title: "the last 24 hours" },
};
export const DEFAULT_WINDOW = "live";

/** @typedef {{start: number, count: number, min: number, max: number, avg: number, first: number,
 *   last: number, firstAt: number, lastAt: number}} Bucket times in ms since the epoch */

export class History {
  /** @param {View} view one of WINDOWS, with a step */
  constructor(view) {
    this.view = view;
    this.step = view.step * 1000;
    this.span = view.span * 1000;
    /** @type {Bucket[]} ascending by start */
    this.buckets = [];
    /** @type {"loading" | "ready" | "failed"} "failed" while the server gives none */
    this.state = "loading";
    this.cutoff = Infinity; // readings numbered up to this one are in the answer (none until it came)
  }

  /** The window ends with the current step, so the chart moves a whole bucket at a time; or later, with a
   * bucket stamped by a clock ahead of ours.
   * @param {number} now ms since the epoch
   */
  end(now) {
    const current = (Math.floor(now / this.step) + 1) * this.step;
    const last = this.buckets[this.buckets.length - 1];
    return last === undefined ? current : Math.max(current, last.start + this.step);
  }

  /** The server's buckets, as GET metrics/{id}/readings?step= answers them.
   * @param {{start: string, count: number, min: number, max: number, avg: number, first: number,
   *   last: number}[]} rows
   */
  load(rows) {
    this.buckets = rows.map((row) => {
      const start = parseTime(row.start);
      // the times of a bucket's first and last reading are not given: later readings come later
      return { ...row, start, firstAt: start, lastAt: start };
    });
    this.state = "ready";
  }

  /** Folds a reading into its bucket, or starts one (unless it is older than the window).
   * @param {number} time @param {number} value @param {number} now
   */
  fold(time, value, now) {
    const start = Math.floor(time / this.step) * this.step;
    const buckets = this.buckets;
    let at = buckets.length;
    while (at > 0 && buckets[at - 1].start > start) at--;
    const bucket = buckets[at - 1];
    if (bucket !== undefined && bucket.start === start) {
      bucket.count++;
      bucket.avg += (value - bucket.avg) / bucket.count;
      if (value < bucket.min) bucket.min = value;
      if (value > bucket.max) bucket.max = value;
      if (time >= bucket.lastAt) {
        bucket.last = value;
        bucket.lastAt = time;
      }
      if (time < bucket.firstAt) {
        bucket.first = value;
        bucket.firstAt = time;
      }
    } else if (start >= this.end(now) - this.span) {
      const created = { start, count: 1, min: value, max: value, avg: value, first: value, last: value };
      buckets.splice(at, 0, { ...created, firstAt: time, lastAt: time });
    }
  }

  /** Drops the buckets that scrolled out of the window. @param {number} now */
  trim(now) {
    const first = this.end(now) - this.span;
    let out = 0;
    while (out < this.buckets.length && this.buckets[out].start < first) out++;
    if (out > 0) this.buckets.splice(0, out);
  }
}

/** The request for a metric's buckets in the window ending now.
 * @param {string} metricId @param {History} history @param {number} now
 */
export function bucketsUrl(metricId, history, now) {
  const end = history.end(now);
  const since = new Date(end - history.span).toISOString();
  // until a window past the end: a reading stamped by a clock ahead of ours is not left out
  const until = new Date(end + history.span).toISOString();
  return (
    `metrics/${encodeURIComponent(metricId)}/readings?since=${encodeURIComponent(since)}` +
    `&until=${encodeURIComponent(until)}&step=${history.view.step}`
  );
}

/** What a card shows of its buckets in the window ending at `now`: the chart's data (chart.js), and its
 * texts.
 * @param {History} history
 * @param {import("./format.js").Format} format
 * @param {number} now ms since the epoch
 * @returns {import("./chart.js").Chart}
 */
export function bucketsChart(history, format, now) {
  const { buckets, step, view } = history;
  const count = buckets.length;
  let readings = 0;
  let low = Infinity;
  let high = -Infinity;
  let integers = true;
  for (const bucket of buckets) {
    readings += bucket.count;
    if (bucket.min < low) low = bucket.min;
    if (bucket.max > high) high = bucket.max;
    integers &&= Number.isInteger(bucket.min) && Number.isInteger(bucket.max);
  }
  const averages = `averages per ${format.span(view.step)}`;
  let extent = `${format.number(readings)} reading${readings === 1 ? "" : "s"}, ${averages}`;
  let label = `Chart of ${averages} over ${view.title}: ${count} point${count === 1 ? "" : "s"}`;
  if (count) {
    const latest = buckets[count - 1].avg;
    label += `, latest ${format.value(latest, integers && Number.isInteger(latest))}`;
    label += `, lowest ${format.value(low, integers)}, highest ${format.value(high, integers)}`;
  }
  let message = count ? null : `No readings in ${view.title}`;
  if (history.state !== "ready") {
    message = history.state === "loading" ? "Loading history…" : "History unavailable";
    extent = message;
    label = `Chart: ${message}`;
  }
  const end = history.end(now);
  const half = step / 2;
  return {
    points: count,
    readings,
    extent,
    label,
    message,
    low,
    high,
    integers,
    timeAt: (i) => buckets[i].start + half,
    valueAt: (i) => buckets[i].avg,
    band: (i) => buckets[i],
    from: end - history.span,
    to: end,
  };
}

/** Which streamed readings a bucket answer already holds. Every streamed event gets a number, in stream
 * order; an answer read at the event its X-Last-Event-ID names holds the readings numbered up to that
 * event's, which may be one the stream has brought already, or not yet.
 */
export class Handoff {
  constructor() {
    this.received = 0; // events received so far: the number of the newest
    this.asking = 0; // answers awaited
    /** @type {Map<string, number>} event id -> number, of the events received while answers are awaited */
    this.recent = new Map();
    /** @type {Map<string, ((number: number) => void)[]>} answers read at an event not streamed yet */
    this.awaited = new Map();
  }

  /** Numbers an event the stream brought, in order. @param {string} id "" for an event without one */
  receive(id) {
    const number = ++this.received;
    if (id) {
      if (this.asking > 0) this.recent.set(id, number);
      const waiting = this.awaited.get(id);
      if (waiting !== undefined) {
        this.awaited.delete(id);
        for (const settle of waiting) settle(number);
      }
    }
    return number;
  }

  /** A request is sent while the stream stands at `position` (the id of its newest event).
   * @param {string | null} position
   * @returns {{position: string | null, number: number}} to give to `answered`
   */
  ask(position) {
    this.asking++;
    return { position, number: this.received };
  }

  /** The cutoff of an answer read at event `at` (null: not said): readings numbered up to it are in the
   * answer. Infinity when the stream has not brought that event yet: `settle` gets its number when it does.
   * @param {{position: string | null, number: number}} asked
   * @param {string | null} at
   * @param {(number: number) => void} settle
   */
  answered(asked, at, settle) {
    if (at === null || at === asked.position) return asked.number;
    const number = this.recent.get(at);
    if (number !== undefined) return number;
    this.awaited.set(at, [...(this.awaited.get(at) ?? []), settle]);
    return Infinity;
  }

  /** The request is over (answered or failed). */
  done() {
    if (--this.asking === 0) this.recent.clear();
  }

  /** The state is loaded again: answers awaiting an event are for windows loaded again too. */
  forget() {
    this.awaited.clear();
  }
}
