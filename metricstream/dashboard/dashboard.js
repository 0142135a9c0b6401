// metricstream dashboard: the state over REST, then the event stream from the position of that read.
//
// 1. GET metrics?with_readings=true&readings_limit=HISTORY; its X-Last-Event-ID is where the state stands.
// 2. EventSource events/watch?last_event_id=<that id>: every change after the read. The browser resumes
//    by itself after a dropped connection, sending the last id it saw (the `connected` frame carries one,
//    so even a connection that saw no event resumes from the right place).
// 3. `reset` (the server no longer knows our position): load the state again and reopen from there.
//
// The window picker: "Latest readings" (the default) draws each metric's newest HISTORY readings. A longer
// window draws buckets, GET metrics/{id}/readings?since=&step= with a round step giving about HISTORY
// points: their average, in a band from min to max. Each streamed reading is then folded into its bucket
// (or starts one) and buckets scroll out as time passes. Which streamed readings an answer already holds
// is told by its X-Last-Event-ID: those up to that event are not counted again. (A store whose reads take
// time, sqlite, may still hold one of the next few readings: its bucket then counts it twice, until the
// next load.) The choice is kept in localStorage.
//
// Events are queued as they arrive and applied once per animation frame. A card that changed is shown
// again at most every CARD_INTERVAL ms, its chart only while on screen. Without a GPU a chart's raster
// costs about a millisecond, so 20 charts redrawn in one frame make it late: each frame redraws those that
// waited longest, up to a budget that follows what frames cost (measured from the animation frame to the
// end of its rendering), so a slow machine keeps its frame rate and redraws each chart less often.
// A reading is applied once, by its id: the REST->stream handoff may repeat one. Each chart holds the
// newest HISTORY readings, in timestamp order.
// URLs are relative, so the dashboard also works behind a proxy that mounts the server under a path.
//
// Signing in: when reads need a token (GET dashboard/session says `required` and not `signed_in`), the page
// shows a form instead of the board and posts the token to dashboard/session, which answers with an
// HttpOnly session cookie; from then on its same-origin fetches and EventSource send that cookie by
// themselves, so no token is ever put in a URL or kept by the page. A 401 (a token changed, a cookie
// cleared) brings the form back; an EventSource cannot tell a 401, so a refused stream asks the state.
"use strict";

(() => {
  const HISTORY = 300; // readings kept and drawn per metric
  const CARD_INTERVAL = 30; // ms: a card is shown again at most ~30 times a second
  const FRAME_BUDGET = 10; // ms of a frame's work (of 16.7 at 60 Hz) that chart draws may bring it to
  const STATE_URL = `metrics?with_readings=true&readings_limit=${HISTORY}`;
  const STREAM_URL = "events/watch";
  const SESSION_URL = "dashboard/session";
  // The picker's choices (index.html lists them): span and bucket step in seconds; no step: raw readings.
  const WINDOWS = {
    live: { step: 0 },
    "10m": { step: 2, span: 600, title: "the last 10 minutes" },
    "1h": { step: 12, span: 3600, title: "the last hour" },
    "6h": { step: 60, span: 6 * 3600, title: "the last 6 hours" },
    "1d": { step: 300, span: 24 * 3600, title: "the last 24 hours" },
  };
  const DEFAULT_WINDOW = "live";
  const WINDOW_KEY = "metricstream.window"; // where localStorage keeps the choice
  const HISTORY_RETRY = 5000; // ms before buckets the server failed to give are asked for again
  const PALETTE = ["#6366f1", "#14b8a6", "#f59e0b", "#ec4899", "#0ea5e9", "#8b5cf6", "#22c55e", "#f97316"];
  const LABELS = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    disconnected: "Disconnected",
    locked: "Sign-in needed",
  };

  const grid = document.getElementById("grid");
  const empty = document.getElementById("empty");
  const summary = document.getElementById("summary");
  const connection = document.getElementById("connection");
  const connectionLabel = document.getElementById("connection-label");
  const picker = document.getElementById("window");
  const template = document.getElementById("card-template");
  // One metric alone (`?metric=<id>`, what `hub.show(metric)` frames): its card, large, and a stream
  // filtered to it; `&embed=1` drops the top bar. An id no metric has, or one deleted, says so.
  const query = new URLSearchParams(location.search);
  const focus = query.has("metric") ? query.get("metric").trim().toLowerCase() : null;
  const focusValid = focus === null || /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(focus);
  const missing = document.getElementById("missing");
  let focusName = null; // set once the metric was on this page: a card gone after that was deleted
  const signin = document.getElementById("signin");
  const signinForm = document.getElementById("signin-form");
  const signinToken = document.getElementById("signin-token");
  const signinError = document.getElementById("signin-error");
  const signout = document.getElementById("signout");

  const cards = new Map(); // metric id -> Card, in creation order
  let nextColor = 0;
  let source = null; // the EventSource in use, if any
  let generation = 0; // bumped by every load: events of an older stream are dropped
  let position = null; // id of the newest event seen: where to reopen the stream
  let failures = 0; // failed attempts since the last successful connection
  let retryTimer = 0;
  let loadedAt = 0;
  let queue = []; // [type, data, number, type, data, number, ...] waiting for the next frame
  let frameRequested = false;
  let fallbackTimer = 0;
  let readingsCounted = 0; // for the readings/s figure
  let rate = 0;
  let drawBudget = 6; // charts drawn per frame at most, adjusted after each frame (frameEnd)
  let frameStart = 0; // when the animation frame being measured began
  let windowKey = DEFAULT_WINDOW;
  let received = 0; // events received so far: each event's number, in stream order
  let historyRequests = 0; // bucket requests awaiting their answer
  const recentEvents = new Map(); // event id -> number, of the events received while requests are out
  const awaitedEvents = new Map(); // event id -> [History]: answers holding events not streamed yet

  // --- formatting --------------------------------------------------------------------------------

  const formats = new Map();
  function numberFormat(options) {
    const key = JSON.stringify(options);
    let format = formats.get(key);
    if (!format) {
      format = new Intl.NumberFormat(undefined, options);
      formats.set(key, format);
    }
    return format;
  }

  // `integers`: every value in view is whole, so no decimals are shown.
  function formatValue(value, integers = false) {
    const magnitude = Math.abs(value);
    const decimals = (n) => numberFormat({ minimumFractionDigits: n, maximumFractionDigits: n });
    const compact = { notation: "compact", maximumFractionDigits: 2 }; // 1.23M
    if (magnitude >= 1e6) return numberFormat(compact).format(value);
    if (integers || magnitude >= 1000) return decimals(0).format(value);
    if (magnitude >= 100) return decimals(1).format(value);
    if (magnitude >= 1) return decimals(2).format(value);
    if (magnitude >= 0.001) return numberFormat({ maximumSignificantDigits: 3 }).format(value);
    return value.toExponential(2);
  }

  function formatSpan(seconds) {
    if (seconds < 60) return `${numberFormat({ maximumFractionDigits: 3 }).format(seconds)} s`;
    if (seconds < 3600) return `${numberFormat({ maximumFractionDigits: 1 }).format(seconds / 60)} min`;
    return `${numberFormat({ maximumFractionDigits: 1 }).format(seconds / 3600)} h`;
  }

  function formatInterval(seconds) {
    return seconds ? `every ${formatSpan(seconds)}` : "";
  }

  function formatDuration(milliseconds) {
    if (milliseconds < 1000) return "under 1 s";
    const seconds = Math.round(milliseconds / 1000);
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
    return `${Math.round(hours / 24)} days`;
  }

  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const calendar = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  // The time of day for today's readings, the date as well for older ones.
  function formatTime(time) {
    const today = new Date(time).toDateString() === new Date().toDateString();
    return today ? clock.format(time) : calendar.format(time);
  }

  // RFC 3339 with up to 9 fractional digits; Date.parse is only required to read 3.
  function parseTime(text) {
    return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
  }

  // --- colours from the stylesheet, so the charts follow light and dark mode ----------------------

  let colors = readColors();
  function readColors() {
    const style = getComputedStyle(document.documentElement);
    const read = (name) => style.getPropertyValue(name).trim();
    return {
      muted: read("--muted"),
      grid: read("--grid-line"),
      surface: read("--surface"),
      font: read("--font"),
    };
  }

  // --- one card per metric -----------------------------------------------------------------------

  const resizes = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const card = entry.target.card;
      card.width = entry.contentRect.width;
      card.height = entry.contentRect.height;
      card.dirty = true;
    }
    requestFrame();
  });

  // Charts out of view are not drawn (20 canvases cost far more than the 6 on screen); they are drawn
  // when they scroll into view.
  const views = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        const card = entry.target.card;
        card.visible = entry.isIntersecting;
        if (card.visible && card.stale) {
          card.dirty = true;
          requestFrame();
        }
      }
    },
    { rootMargin: "200px 0px" },
  );

  // One card's buckets in a window longer than a minute: the server's answer, and every streamed
  // reading after the position it was read at.
  class History {
    constructor(view) {
      this.view = view;
      this.step = view.step * 1000;
      this.span = view.span * 1000;
      // ascending by start (ms): {start, count, min, max, avg, first, last, firstAt, lastAt}
      this.buckets = [];
      this.state = "loading"; // then "ready"; "failed" while the server gives none
      this.cutoff = Infinity; // readings numbered up to this one are in the answer (none until it came)
      this.retryTimer = 0;
    }

    // The window ends with the current step, so the chart moves a whole bucket at a time; or later, with
    // a bucket stamped by a clock ahead of ours.
    end() {
      const now = (Math.floor(Date.now() / this.step) + 1) * this.step;
      const last = this.buckets[this.buckets.length - 1];
      return last === undefined ? now : Math.max(now, last.start + this.step);
    }

    load(rows) {
      this.buckets = rows.map((row) => {
        const start = parseTime(row.start);
        // the times of a bucket's first and last reading are not given: later readings come later
        return { ...row, start, firstAt: start, lastAt: start };
      });
      this.state = "ready";
    }

    // Folds a reading into its bucket, or starts one.
    fold(time, value) {
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
      } else if (start >= this.end() - this.span) {
        const created = { start, count: 1, min: value, max: value, avg: value, first: value, last: value };
        buckets.splice(at, 0, { ...created, firstAt: time, lastAt: time });
      }
    }

    // Drops the buckets that scrolled out of the window.
    trim() {
      const first = this.end() - this.span;
      let out = 0;
      while (out < this.buckets.length && this.buckets[out].start < first) out++;
      if (out > 0) this.buckets.splice(0, out);
    }
  }

  class Card {
    constructor(metric) {
      this.id = metric.id;
      this.node = template.content.firstElementChild.cloneNode(true);
      this.node.dataset.metricId = metric.id;
      this.accent = PALETTE[nextColor++ % PALETTE.length];
      this.node.style.setProperty("--accent", this.accent);
      this.name = this.node.querySelector(".card-name");
      this.name.textContent = metric.name;
      this.name.title = metric.name;
      this.node.setAttribute("aria-label", metric.name);
      this.node.querySelector(".card-frequency").textContent = formatInterval(metric.input_frequency);
      this.value = this.node.querySelector(".value");
      this.delta = this.node.querySelector(".delta");
      this.extent = this.node.querySelector(".card-window");
      this.time = this.node.querySelector(".card-time");
      this.canvas = this.node.querySelector("canvas");
      this.canvas.card = this;
      this.node.card = this;
      this.context = this.canvas.getContext("2d");
      this.width = 0;
      this.height = 0;
      this.times = []; // ascending
      this.values = [];
      this.ids = [];
      this.numbers = []; // the number of the event that brought each reading (for the state: the load's)
      this.seen = new Set(); // ids of the readings held
      this.history = null; // the buckets, in a window longer than a minute
      this.shown = {};
      this.dirty = true;
      this.visible = false;
      this.stale = true; // the chart does not show the data yet
      this.shownAt = -Infinity;
      resizes.observe(this.canvas);
      views.observe(this.node);
    }

    remove() {
      clearTimeout(this.history?.retryTimer);
      resizes.unobserve(this.canvas);
      views.unobserve(this.node);
      this.node.remove();
    }

    // The buckets of `view` from now on (none for the raw readings): a new History, still to be loaded.
    setWindow(view) {
      clearTimeout(this.history?.retryTimer);
      this.history = view.step ? new History(view) : null;
      this.dirty = true;
      return this.history;
    }

    // Adds a reading in timestamp order; false if it is held already.
    add(reading, number) {
      if (this.seen.has(reading.id)) return false;
      const time = parseTime(reading.timestamp);
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
      this.values.splice(at, 0, reading.value);
      this.ids.splice(at, 0, reading.id);
      this.numbers.splice(at, 0, number);
      this.seen.add(reading.id);
      if (this.history !== null && number > this.history.cutoff) this.history.fold(time, reading.value);
      this.dirty = true;
      return true;
    }

    replace(readings, number) {
      clearTimeout(this.history?.retryTimer);
      this.history = null; // buckets of the old state: the caller asks for the window's buckets again
      this.times = [];
      this.values = [];
      this.ids = [];
      this.numbers = [];
      this.seen.clear();
      for (const reading of readings) this.add(reading, number);
      this.trim();
      this.dirty = true;
    }

    // Keeps the newest HISTORY readings.
    trim() {
      const extra = this.times.length - HISTORY;
      if (extra <= 0) return;
      for (const id of this.ids.splice(0, extra)) this.seen.delete(id);
      this.times.splice(0, extra);
      this.values.splice(0, extra);
      this.numbers.splice(0, extra);
    }

    // The server's buckets came: folds in the readings streamed after the position they were read at.
    loaded(rows, cutoff) {
      const history = this.history;
      history.load(rows);
      history.cutoff = cutoff;
      for (let i = 0; i < this.numbers.length; i++) {
        if (this.numbers[i] > cutoff) history.fold(this.times[i], this.values[i]);
      }
      this.dirty = true;
    }

    // Updates the text, and the chart when `draw`; returns whether the chart was drawn.
    render(now, draw) {
      this.dirty = false;
      this.shownAt = now;
      const count = this.values.length;
      let integers = true;
      for (const value of this.values) {
        if (!Number.isInteger(value)) {
          integers = false;
          break;
        }
      }
      const latest = count ? this.values[count - 1] : null;
      this.show("latest", String(latest), () => {
        if (latest === null) delete this.node.dataset.value;
        else this.node.dataset.value = String(latest);
      });
      const shown = count ? formatValue(latest, integers) : "–";
      this.show("value", shown, (text) => (this.value.textContent = text));
      let delta = "";
      if (count > 1 && latest !== this.values[count - 2]) {
        const change = latest - this.values[count - 2];
        delta = `${change > 0 ? "▲" : "▼"} ${formatValue(Math.abs(change), integers)}`;
      }
      this.show("delta", delta, (text) => (this.delta.textContent = text));
      const time = count ? this.times[count - 1] : null;
      this.show("time", String(time), () => {
        this.time.textContent = time === null ? "no readings yet" : formatTime(time);
        if (time !== null) this.time.dateTime = new Date(time).toISOString();
      });

      const chart = this.history === null ? this.rawChart(integers) : this.bucketChart();
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
      this.draw(chart);
      return true;
    }

    rawChart(integers) {
      const { times, values } = this;
      const count = values.length;
      let low = Infinity;
      let high = -Infinity;
      for (const value of values) {
        if (value < low) low = value;
        if (value > high) high = value;
      }
      let extent = count === 1 ? "1 reading" : `${count} readings`;
      if (count > 1) extent += ` over ${formatDuration(times[count - 1] - times[0])}`;
      let label = `Chart of ${extent}`;
      if (count) label += `, from ${formatValue(low, integers)} to ${formatValue(high, integers)}`;
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

    bucketChart() {
      const history = this.history;
      history.trim();
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
      const averages = `averages per ${formatSpan(view.step)}`;
      let extent = `${numberFormat({}).format(readings)} reading${readings === 1 ? "" : "s"}, ${averages}`;
      let label = `Chart of ${averages} over ${view.title}: ${count} point${count === 1 ? "" : "s"}`;
      if (count) {
        const latest = buckets[count - 1].avg;
        label += `, latest ${formatValue(latest, integers && Number.isInteger(latest))}`;
        label += `, lowest ${formatValue(low, integers)}, highest ${formatValue(high, integers)}`;
      }
      let message = count ? null : `No readings in ${view.title}`;
      if (history.state !== "ready") {
        message = history.state === "loading" ? "Loading history…" : "History unavailable";
        extent = message;
        label = `Chart: ${message}`;
      }
      const end = history.end();
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

    show(key, text, apply) {
      if (this.shown[key] !== text) {
        this.shown[key] = text;
        apply(text);
      }
    }

    draw(chart) {
      const { canvas, context, width, height } = this;
      if (!width || !height) return;
      const ratio = window.devicePixelRatio || 1;
      const pixelWidth = Math.round(width * ratio);
      const pixelHeight = Math.round(height * ratio);
      if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
        canvas.width = pixelWidth;
        canvas.height = pixelHeight;
      }
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
      context.clearRect(0, 0, width, height);
      context.font = `11px ${colors.font}`;
      if (chart.message !== null) {
        context.fillStyle = colors.muted;
        context.textAlign = "center";
        context.textBaseline = "middle";
        context.fillText(chart.message, width / 2, height / 2);
        return;
      }
      const { points: count, low, high, timeAt, valueAt, band, from } = chart;

      // value axis: the window's range with some air, never empty
      let span = high - low;
      const pad = span > 0 ? span * 0.12 : Math.abs(high) * 0.05 || 1;
      span += 2 * pad;
      const bottom = low - pad;
      const top = 14; // room for the upper label
      const plotHeight = height - top - 4;
      const y = (value) => top + plotHeight * (1 - (value - bottom) / span);
      const duration = chart.to - from;
      // time axis; readings that all share one timestamp are spread evenly instead
      const x =
        duration > 0
          ? (i) => 4 + (width - 8) * ((timeAt(i) - from) / duration)
          : (i) => (count > 1 ? 4 + ((width - 8) * i) / (count - 1) : width - 8);

      // guides at the window's highest and lowest value
      context.strokeStyle = colors.grid;
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
        fill.addColorStop(0, `${this.accent}40`);
        fill.addColorStop(1, `${this.accent}00`);
        context.fillStyle = fill;
        context.fill(area);
      } else {
        const range = new Path2D();
        range.moveTo(x(0), y(band(0).max));
        for (let i = 1; i < count; i++) range.lineTo(x(i), y(band(i).max));
        for (let i = count - 1; i >= 0; i--) range.lineTo(x(i), y(band(i).min));
        range.closePath();
        context.fillStyle = `${this.accent}33`;
        context.fill(range);
      }
      context.strokeStyle = this.accent;
      context.lineWidth = 1.75;
      context.lineJoin = "round";
      context.lineCap = "round";
      context.stroke(line);

      // the newest point
      const lastX = x(count - 1);
      const lastY = y(valueAt(count - 1));
      context.beginPath();
      context.arc(lastX, lastY, 3.5, 0, 2 * Math.PI);
      context.fillStyle = this.accent;
      context.fill();
      context.lineWidth = 2;
      context.strokeStyle = colors.surface;
      context.stroke();

      // labels of the guides, with a halo so the line never makes them unreadable
      context.fillStyle = colors.muted;
      context.strokeStyle = colors.surface;
      context.lineWidth = 3;
      context.textAlign = "left";
      const label = (value, baseline, offset) => {
        const text = formatValue(value, chart.integers);
        context.textBaseline = baseline;
        context.strokeText(text, 4, Math.round(y(value)) + offset);
        context.fillText(text, 4, Math.round(y(value)) + offset);
      };
      label(high, "bottom", -2);
      if (high !== low) label(low, "top", 3);
    }
  }

  function addCard(metric) {
    const card = new Card(metric);
    cards.set(metric.id, card);
    grid.append(card.node);
    return card;
  }

  // --- applying state and events ----------------------------------------------------------------

  function applyState(metrics) {
    if (focus !== null) {
      metrics = metrics.filter((metric) => metric.id === focus);
      if (metrics.length) focusName = metrics[0].name;
      if (focusName !== null) document.title = `${focusName} · metricstream`;
    }
    const wanted = new Set(metrics.map((metric) => metric.id));
    for (const [id, card] of cards) {
      if (!wanted.has(id)) {
        card.remove();
        cards.delete(id);
      }
    }
    metrics.forEach((metric, index) => {
      const card = cards.get(metric.id) ?? addCard(metric);
      card.replace(metric.readings ?? [], received);
      // creation order; a card already in place is not moved (that would replay its entry animation)
      if (grid.children[index] !== card.node) grid.insertBefore(card.node, grid.children[index] ?? null);
    });
    queue = [];
    showEmpty();
    showSummary();
    requestFrame();
  }

  function showEmpty() {
    empty.hidden = cards.size > 0 || focus !== null;
    grid.hidden = cards.size === 0;
    if (focus !== null) showMissing();
  }

  // The one-metric view without its card: why.
  function showMissing() {
    missing.hidden = cards.size > 0;
    if (!missing.hidden) {
      const reason = !focusValid ? "invalid" : focusName === null ? "unknown" : "deleted";
      const title = { invalid: "Not a metric id", unknown: "No such metric", deleted: "Metric deleted" };
      const detail = {
        invalid: `“${focus}” is not a metric id: ?metric= takes one, as GET /metrics lists them.`,
        unknown: `No metric has the id ${focus} here: it may have been deleted.`,
        deleted: `“${focusName}” was deleted.`,
      };
      missing.dataset.reason = reason;
      missing.querySelector("h2").textContent = title[reason];
      missing.querySelector("p").textContent = detail[reason];
    }
  }

  // A message posted from an animation frame is received once the frame's rendering (style, layout,
  // paint, the canvases' raster) is done: the time until then is what the frame cost. Over the budget,
  // fewer charts are drawn per frame; under it, after a frame that drew as many as it could, one more.
  const frameEnd = new MessageChannel();
  frameEnd.port1.onmessage = ({ data: full }) => {
    const cost = performance.now() - frameStart;
    if (cost > FRAME_BUDGET) drawBudget = Math.max(1, Math.floor((drawBudget * 3) / 4));
    else if (full) drawBudget++;
  };

  function requestFrame() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(() => {
        frameRequested = false;
        frameStart = performance.now();
        const drawn = flush();
        if (drawn > 0) frameEnd.port2.postMessage(drawn >= drawBudget);
      });
    }
    // a background tab runs no animation frames: apply the data anyway, draw when it is shown again
    if (!fallbackTimer) fallbackTimer = setTimeout(flush, 1000);
  }

  // Applies the queued events and shows the cards that changed; returns how many charts it drew.
  function flush() {
    clearTimeout(fallbackTimer);
    fallbackTimer = 0;
    const batch = queue;
    queue = [];
    const touched = new Set();
    let unknown = false;
    let reshaped = false; // a card came or went
    for (let i = 0; i < batch.length; i += 3) {
      const data = JSON.parse(batch[i + 1]);
      if (batch[i] === "metric_created") {
        if (!cards.has(data.id) && (focus === null || data.id === focus)) {
          const history = addCard(data).setWindow(WINDOWS[windowKey]);
          if (history !== null) {
            history.state = "ready"; // a new metric: its readings are all still to come
            history.cutoff = batch[i + 2];
          }
          reshaped = true;
        }
        continue;
      }
      if (batch[i] === "metric_deleted") {
        const gone = cards.get(data.id);
        if (gone !== undefined) {
          gone.remove();
          cards.delete(data.id);
          touched.delete(gone);
          reshaped = true;
        }
        continue;
      }
      const card = cards.get(data.metric_id);
      if (card === undefined) {
        unknown = true; // cannot happen with an intact stream: the state is out of step
      } else if (card.add(data, batch[i + 2])) {
        touched.add(card);
        readingsCounted++;
      }
    }
    for (const card of touched) card.trim();
    if (reshaped) {
      showEmpty();
      showSummary();
    }
    let drawn = 0;
    if (!document.hidden) {
      const now = performance.now();
      const due = [];
      for (const card of cards.values()) {
        if (card.dirty || (card.stale && card.visible)) due.push(card);
      }
      due.sort((a, b) => a.shownAt - b.shownAt); // those that waited longest first
      let behind = false;
      for (const card of due) {
        if (now - card.shownAt < CARD_INTERVAL) behind = true; // shown moments ago: its turn comes soon
        else if (!card.visible) card.render(now, false);
        else if (drawn < drawBudget) drawn += card.render(now, true) ? 1 : 0;
        else behind = true;
      }
      if (behind) requestFrame();
    }
    if (unknown) reload();
    return drawn;
  }

  function countRate() {
    rate = readingsCounted;
    readingsCounted = 0;
    showSummary();
  }

  function showSummary() {
    if (!signin.hidden) {
      summary.textContent = "not signed in";
      return;
    }
    const parts = [`${cards.size} metric${cards.size === 1 ? "" : "s"}`];
    if (rate > 0) parts.push(`${numberFormat({}).format(rate)} readings/s`);
    summary.textContent = parts.join(" · ");
  }

  // --- the window picker, and the buckets it asks for ---------------------------------------------

  function chooseWindow(key) {
    windowKey = key;
    picker.value = key;
    grid.dataset.window = key;
    for (const card of cards.values()) {
      const history = card.setWindow(WINDOWS[key]);
      if (history !== null) loadHistory(card, history);
    }
    requestFrame();
  }

  async function loadHistory(card, history) {
    const end = history.end();
    const since = new Date(end - history.span).toISOString();
    // until a window past the end: a reading stamped by a clock ahead of ours is not left out
    const until = new Date(end + history.span).toISOString();
    const url =
      `metrics/${encodeURIComponent(card.id)}/readings?since=${encodeURIComponent(since)}` +
      `&until=${encodeURIComponent(until)}&step=${history.view.step}`;
    const askedAt = position;
    const askedNumber = received;
    historyRequests++;
    try {
      let rows = null;
      let at = null;
      let retry = true;
      try {
        const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
        retry = response.status >= 500; // a refusal (4xx) stands: asking again will not change it
        if (response.status === 401) {
          showSignIn(await errorOf(response));
          return;
        }
        if (response.ok) {
          at = response.headers.get("X-Last-Event-ID");
          const answer = await response.json();
          // a server without buckets ignores `step` and answers raw readings
          if (Array.isArray(answer) && answer.every((row) => typeof row.start === "string")) rows = answer;
        }
      } catch {
        // the network or the server is away: ask again later
      }
      if (card.history !== history || cards.get(card.id) !== card) return; // another window, or gone
      if (rows === null) {
        history.state = "failed";
        if (retry) history.retryTimer = setTimeout(() => loadHistory(card, history), HISTORY_RETRY);
      } else if (at === null || at === askedAt) {
        card.loaded(rows, askedNumber);
      } else if (recentEvents.has(at)) {
        card.loaded(rows, recentEvents.get(at));
      } else {
        // read at an event the stream has not brought yet: what it brings up to that one is in `rows`
        card.loaded(rows, Infinity);
        awaitedEvents.set(at, [...(awaitedEvents.get(at) ?? []), history]);
      }
      card.dirty = true;
      requestFrame();
    } finally {
      if (--historyRequests === 0) recentEvents.clear();
    }
  }

  function storedWindow() {
    try {
      const key = localStorage.getItem(WINDOW_KEY);
      return key !== null && Object.hasOwn(WINDOWS, key) ? key : DEFAULT_WINDOW;
    } catch {
      return DEFAULT_WINDOW; // storage disabled: the default every time
    }
  }

  function storeWindow(key) {
    try {
      localStorage.setItem(WINDOW_KEY, key);
    } catch {
      // storage disabled or full: the choice lasts until the page is reloaded
    }
  }

  // Moves every bucket window on when a new step begins (a bucket scrolls out, an empty one comes in).
  let lastStep = 0;
  function scrollWindows() {
    const view = WINDOWS[windowKey];
    if (!view.step) return;
    const step = Math.floor(Date.now() / (view.step * 1000));
    if (step === lastStep) return;
    lastStep = step;
    for (const card of cards.values()) card.dirty = true;
    requestFrame();
  }

  // --- the connection ---------------------------------------------------------------------------

  function setState(state) {
    if (connection.dataset.state === state) return;
    connection.dataset.state = state;
    connectionLabel.textContent = LABELS[state];
  }

  function connected() {
    failures = 0;
    setState("connected");
  }

  function failed() {
    failures++;
    // one failure is a blip (the server ended the stream, the browser retries); two mean it is down
    setState(failures > 1 ? "disconnected" : "reconnecting");
  }

  function backoff() {
    const delay = Math.min(15000, 1000 * 2 ** Math.max(0, failures - 1));
    return delay * (0.75 + Math.random() / 2);
  }

  function closeStream() {
    if (source !== null) {
      source.close();
      source = null;
    }
  }

  function openStream(since) {
    closeStream();
    let url = since === null ? STREAM_URL : `${STREAM_URL}?last_event_id=${encodeURIComponent(since)}`;
    if (focus !== null) url += `${since === null ? "?" : "&"}metric_id=${encodeURIComponent(focus)}`;
    const stream = new EventSource(url);
    source = stream;
    const current = generation;
    const live = () => source === stream && generation === current;
    const receive = (event) => {
      if (!live()) return;
      const number = ++received;
      const id = event.lastEventId;
      if (id) {
        position = id;
        if (historyRequests > 0) recentEvents.set(id, number);
        const waiting = awaitedEvents.get(id);
        if (waiting !== undefined) {
          awaitedEvents.delete(id);
          for (const history of waiting) history.cutoff = number; // readings from the next one on count
        }
      }
      queue.push(event.type, event.data, number);
      requestFrame();
    };
    stream.addEventListener("metric_created", receive);
    stream.addEventListener("metric_reading_created", receive);
    stream.addEventListener("metric_deleted", receive);
    stream.addEventListener("reset", () => live() && reload());
    stream.onopen = () => live() && connected();
    stream.onmessage = (event) => {
      if (!live()) return;
      // A filtered stream (one metric) names its position by an event of that metric (docs/protocol.md),
      // which loadHistory cannot compare with an answer's X-Last-Event-ID; the browser resumes from it.
      if (event.lastEventId && focus === null) position = event.lastEventId;
      if (event.data === "connected") connected();
      else if (event.data === "disconnected") setState("reconnecting"); // the browser comes back by itself
    };
    stream.onerror = () => {
      if (!live()) return;
      failed();
      if (stream.readyState === EventSource.CLOSED) {
        // an HTTP error answer (503 while the server shuts down): the browser gives up, we do not
        source = null;
        streamRefused(current);
      }
    };
  }

  async function load() {
    if (!focusValid) {
      showEmpty(); // no metric can have that id: nothing to load
      return;
    }
    const current = ++generation;
    clearTimeout(retryTimer);
    closeStream();
    queue = [];
    awaitedEvents.clear(); // every window is loaded again below
    loadedAt = performance.now();
    let metrics;
    let since;
    try {
      const response = await fetch(STATE_URL, { cache: "no-store", headers: { Accept: "application/json" } });
      if (response.status === 401) {
        const message = await errorOf(response);
        if (current === generation) showSignIn(message);
        return;
      }
      if (!response.ok) throw new Error(`GET ${STATE_URL} answered ${response.status}`);
      since = response.headers.get("X-Last-Event-ID");
      metrics = await response.json();
    } catch {
      if (current !== generation) return;
      failed();
      retryTimer = setTimeout(load, backoff());
      return;
    }
    if (current !== generation) return;
    applyState(metrics);
    position = since;
    openStream(since);
    chooseWindow(windowKey); // the buckets of the state just read
  }

  // Loads the state again, at most once a second (a server that keeps answering `reset` is not hammered).
  function reload() {
    closeStream();
    clearTimeout(retryTimer);
    const wait = loadedAt + 1000 - performance.now();
    if (wait > 0) retryTimer = setTimeout(load, wait);
    else load();
  }

  // --- signing in -------------------------------------------------------------------------------

  // {required, signed_in}, or null when the server does not say (away, or one without sign-in).
  async function sessionState() {
    try {
      const response = await fetch(SESSION_URL, { cache: "no-store", headers: { Accept: "application/json" } });
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  async function errorOf(response) {
    try {
      return (await response.json()).error ?? "";
    } catch {
      return `the server answered ${response.status}`;
    }
  }

  // The stream got an HTTP error (a 401, or 503 while the server stops): sign in, or try again later.
  async function streamRefused(current) {
    const state = await sessionState();
    if (current !== generation) return;
    if (state !== null && state.required && !state.signed_in) showSignIn();
    else retryTimer = setTimeout(() => openStream(position), backoff());
  }

  // Reads need a token the page has not given: everything stops, and the form asks for it.
  function showSignIn(message = "") {
    generation++; // what an older load or stream still brings is dropped
    clearTimeout(retryTimer);
    closeStream();
    queue = [];
    for (const card of cards.values()) card.remove();
    cards.clear();
    grid.hidden = true;
    empty.hidden = true;
    signout.hidden = true;
    signin.hidden = false;
    signinError.textContent = message;
    signinError.hidden = !message;
    setState("locked");
    showSummary();
    signinToken.focus();
  }

  // The board, loaded and streamed (with the session cookie, when `signedIn`: then it can sign out).
  function showBoard(signedIn) {
    signin.hidden = true;
    signout.hidden = !signedIn;
    setState("connecting");
    load();
  }

  async function start() {
    const state = await sessionState();
    if (state !== null && state.required && !state.signed_in) showSignIn();
    else showBoard(state?.signed_in === true);
  }

  signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = signinForm.querySelector("button");
    button.disabled = true;
    let message;
    try {
      const response = await fetch(SESSION_URL, {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token: signinToken.value }),
      });
      if (response.ok) {
        const state = await response.json();
        signinToken.value = "";
        signinError.hidden = true;
        showBoard(state.signed_in === true);
        return;
      }
      message = await errorOf(response);
    } catch {
      message = "the server could not be reached: try again";
    } finally {
      button.disabled = false;
    }
    signinError.textContent = message;
    signinError.hidden = false;
    signinToken.select();
  });

  signout.addEventListener("click", async () => {
    try {
      await fetch(SESSION_URL, { method: "DELETE", cache: "no-store" });
    } catch {
      // the server is away: the page signs out all the same (its cookie lasts until the server clears it)
    }
    showSignIn();
  });

  // --- start ------------------------------------------------------------------------------------

  document.getElementById("host").textContent = location.host;
  const base = new URL(".", location.href).href.replace(/\/$/, "");
  for (const node of document.querySelectorAll(".origin")) node.textContent = base;
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    colors = readColors();
    for (const card of cards.values()) card.dirty = true;
    requestFrame();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) requestFrame();
  });
  picker.addEventListener("change", () => {
    storeWindow(picker.value);
    chooseWindow(picker.value);
  });
  if (focus !== null) document.body.dataset.view = "metric";
  if (query.get("embed") === "1") document.body.dataset.embed = "";
  windowKey = storedWindow();
  picker.value = windowKey;
  grid.dataset.window = windowKey;
  setInterval(() => {
    countRate();
    scrollWindows();
  }, 1000);
  start();
})();
