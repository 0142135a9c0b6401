// Numbers, times and durations as the dashboard writes them. Pure: the locale and the time zone are
// given (undefined: the browser's), and so is "now", so node's tests pin all three.

/** RFC 3339 with up to 9 fractional digits, in ms since the epoch; Date.parse is only required to read 3.
 * @param {string} text
 * @returns {number}
 */
export function parseTime(text) {
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

/** Durations need no locale: "under 1 s", "45 s", "2 min 5 s", "3 h 20 min", "4 days".
 * @param {number} milliseconds
 * @returns {string}
 */
export function formatDuration(milliseconds) {
  if (milliseconds < 1000) return "under 1 s";
  const seconds = Math.round(milliseconds / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

/** A metric's labels as a card shows them under its name: `host=a · dc=x`, in the order given (the server
 * sends them sorted by name); "" for none.
 * @param {Record<string, string> | null | undefined} labels
 */
export function formatLabels(labels) {
  return Object.entries(labels ?? {})
    .map(([name, value]) => `${name}=${value}`)
    .join(" · ");
}

/** A metric in one line, its name then its labels (`cpu dc=x · host=a`): what tells two series of one
 * name apart where there is room for one text (an aria-label, a tooltip).
 * @param {{name: string, labels?: Record<string, string> | null}} metric
 */
export function metricTitle(metric) {
  const labels = formatLabels(metric.labels);
  return labels ? `${metric.name} ${labels}` : metric.name;
}

/** The formats of one locale and time zone; Intl's formatters are made once, on first use. */
export class Format {
  /** @param {{locale?: string, timeZone?: string}} [where] undefined: the browser's */
  constructor({ locale, timeZone } = {}) {
    this.locale = locale;
    this.timeZone = timeZone;
    /** @type {Map<string, Intl.NumberFormat>} */
    this.numbers = new Map();
    /** @type {Record<"clock" | "calendar" | "day", Intl.DateTimeFormat> | null} */
    this.dates = null;
  }

  /** @param {number} value @param {Intl.NumberFormatOptions} [options] */
  number(value, options = {}) {
    const key = JSON.stringify(options);
    let format = this.numbers.get(key);
    if (format === undefined) {
      format = new Intl.NumberFormat(this.locale, options);
      this.numbers.set(key, format);
    }
    return format.format(value);
  }

  /** A reading's value, to about 3 significant digits.
   * @param {number} value
   * @param {boolean} [integers] every value in view is whole, so no decimals are shown
   */
  value(value, integers = false) {
    const magnitude = Math.abs(value);
    const decimals = (n) => ({ minimumFractionDigits: n, maximumFractionDigits: n });
    const compact = { notation: "compact", maximumFractionDigits: 2 }; // 1.23M
    if (magnitude >= 1e6) return this.number(value, compact);
    if (integers || magnitude >= 1000) return this.number(value, decimals(0));
    if (magnitude >= 100) return this.number(value, decimals(1));
    if (magnitude >= 1) return this.number(value, decimals(2));
    if (magnitude >= 0.001) return this.number(value, { maximumSignificantDigits: 3 });
    return value.toExponential(2);
  }

  /** @param {number} seconds */
  span(seconds) {
    if (seconds < 60) return `${this.number(seconds, { maximumFractionDigits: 3 })} s`;
    if (seconds < 3600) return `${this.number(seconds / 60, { maximumFractionDigits: 1 })} min`;
    return `${this.number(seconds / 3600, { maximumFractionDigits: 1 })} h`;
  }

  /** @param {number} milliseconds */
  duration(milliseconds) {
    return formatDuration(milliseconds);
  }

  /** A metric's input frequency: "every 0.5 s"; none when it has none.
   * @param {number | null | undefined} seconds
   */
  interval(seconds) {
    return seconds ? `every ${this.span(seconds)}` : "";
  }

  /** The time of day for a reading of today (the day of `now`), the date as well for an older one.
   * @param {number} time ms since the epoch
   * @param {number} now ms since the epoch
   */
  time(time, now) {
    const dates = this.dates ?? this.makeDates();
    const today = dates.day.format(time) === dates.day.format(now);
    return today ? dates.clock.format(time) : dates.calendar.format(time);
  }

  makeDates() {
    const { locale, timeZone } = this;
    this.dates = {
      clock: new Intl.DateTimeFormat(locale, {
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        timeZone,
      }),
      calendar: new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone }),
      day: new Intl.DateTimeFormat(locale, { year: "numeric", month: "numeric", day: "numeric", timeZone }),
    };
    return this.dates;
  }
}
