// A card's raw readings: the newest READINGS_KEPT, in timestamp order, each held once by its id (the
// REST->stream handoff may repeat one). Pure, so node tests drive it.

/** Readings kept and drawn per metric (and asked for with the state). */
export const READINGS_KEPT = 300;

export class Series {
  /** @param {number} [limit] readings kept */
  constructor(limit = READINGS_KEPT) {
    this.limit = limit;
    // parallel arrays, ascending by time: cheaper to append, trim and draw than an array of objects
    /** @type {number[]} ms since the epoch */
    this.times = [];
    /** @type {number[]} */
    this.values = [];
    /** @type {string[]} */
    this.ids = [];
    /** @type {number[]} the number of the event that brought each reading (for the state: the load's) */
    this.numbers = [];
    /** @type {Set<string>} ids of the readings held */
    this.seen = new Set();
  }

  get length() {
    return this.times.length;
  }

  /** Adds a reading in timestamp order (after those of the same time); false if it is held already.
   * @param {string} id @param {number} time @param {number} value @param {number} number
   */
  add(id, time, value, number) {
    if (this.seen.has(id)) return false;
    let at = this.times.length;
    if (at > 0 && time < this.times[at - 1]) {
      // a timestamp given by the poster, older than the newest: find its place
      let low = 0;
      while (low < at) {
        const middle = (low + at) >> 1;
        if (this.times[middle] <= time) low = middle + 1;
        else at = middle;
      }
    }
    this.times.splice(at, 0, time);
    this.values.splice(at, 0, value);
    this.ids.splice(at, 0, id);
    this.numbers.splice(at, 0, number);
    this.seen.add(id);
    return true;
  }

  clear() {
    this.times = [];
    this.values = [];
    this.ids = [];
    this.numbers = [];
    this.seen.clear();
  }

  /** Keeps the newest `limit` readings: the oldest by timestamp go, and may be added again later. */
  trim() {
    const extra = this.times.length - this.limit;
    if (extra <= 0) return;
    for (const id of this.ids.splice(0, extra)) this.seen.delete(id);
    this.times.splice(0, extra);
    this.values.splice(0, extra);
    this.numbers.splice(0, extra);
  }

  /** Whether every value is whole (then none is shown with decimals). */
  integers() {
    for (const value of this.values) {
      if (!Number.isInteger(value)) return false;
    }
    return true;
  }
}

/** What a card shows of its raw readings: the chart's data (chart.js), and its texts.
 * @param {Series} series
 * @param {boolean} integers every value is whole
 * @param {import("./format.js").Format} format
 * @returns {import("./chart.js").Chart}
 */
export function readingsChart(series, integers, format) {
  const { times, values } = series;
  const count = values.length;
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  let extent = count === 1 ? "1 reading" : `${count} readings`;
  if (count > 1) extent += ` over ${format.duration(times[count - 1] - times[0])}`;
  let label = `Chart of ${extent}`;
  if (count) label += `, from ${format.value(low, integers)} to ${format.value(high, integers)}`;
  return {
    points: count,
    readings: count,
    extent: count ? extent : "",
    label: count ? label : "Chart: no readings yet",
    message: count ? null : "Waiting for readings",
    low,
    high,
    integers,
    timeAt: (i) => times[i],
    valueAt: (i) => values[i],
    band: null,
    from: times[0],
    to: times[count - 1],
  };
}
