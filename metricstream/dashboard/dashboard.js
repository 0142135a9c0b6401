// metricstream dashboard: the state over REST, then the event stream from the position of that read.
//
// 1. GET metrics?with_readings=true&readings_limit=HISTORY; its X-Last-Event-ID is where the state stands.
// 2. EventSource events/watch?last_event_id=<that id>: every change after the read. The browser resumes
//    by itself after a dropped connection, sending the last id it saw (the `connected` frame carries one,
//    so even a connection that saw no event resumes from the right place).
// 3. `reset` (the server no longer knows our position): load the state again and reopen from there.
//
// Events are queued as they arrive and applied once per animation frame; only the cards that changed are
// updated, and their charts redrawn only while on screen and at most every CHART_INTERVAL ms (canvas
// raster is the dominant cost without a GPU). A reading is applied once, by its id: the REST->stream
// handoff may repeat one. Each chart holds the newest HISTORY readings, in timestamp order.
// URLs are relative, so the dashboard also works behind a proxy that mounts the server under a path.
"use strict";

(() => {
  const HISTORY = 300; // readings kept and drawn per metric
  const CHART_INTERVAL = 30; // ms: a chart is redrawn at most ~30 times a second (every other frame)
  const STATE_URL = `metrics?with_readings=true&readings_limit=${HISTORY}`;
  const STREAM_URL = "events/watch";
  const PALETTE = ["#6366f1", "#14b8a6", "#f59e0b", "#ec4899", "#0ea5e9", "#8b5cf6", "#22c55e", "#f97316"];
  const LABELS = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    disconnected: "Disconnected",
  };

  const grid = document.getElementById("grid");
  const empty = document.getElementById("empty");
  const summary = document.getElementById("summary");
  const connection = document.getElementById("connection");
  const connectionLabel = document.getElementById("connection-label");
  const template = document.getElementById("card-template");

  const cards = new Map(); // metric id -> Card, in creation order
  let nextColor = 0;
  let source = null; // the EventSource in use, if any
  let generation = 0; // bumped by every load: events of an older stream are dropped
  let position = null; // id of the newest event seen: where to reopen the stream
  let failures = 0; // failed attempts since the last successful connection
  let retryTimer = 0;
  let loadedAt = 0;
  let queue = []; // [type, data, type, data, ...] waiting for the next frame
  let frameRequested = false;
  let fallbackTimer = 0;
  let readingsCounted = 0; // for the readings/s figure
  let rate = 0;

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

  function formatInterval(seconds) {
    if (!seconds) return "";
    if (seconds < 60) return `every ${numberFormat({ maximumFractionDigits: 3 }).format(seconds)} s`;
    if (seconds < 3600) return `every ${numberFormat({ maximumFractionDigits: 1 }).format(seconds / 60)} min`;
    return `every ${numberFormat({ maximumFractionDigits: 1 }).format(seconds / 3600)} h`;
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
      this.seen = new Set(); // ids of the readings held
      this.shown = {};
      this.dirty = true;
      this.visible = false;
      this.stale = true; // the chart does not show the data yet
      this.drawnAt = -Infinity;
      resizes.observe(this.canvas);
      views.observe(this.node);
    }

    remove() {
      resizes.unobserve(this.canvas);
      views.unobserve(this.node);
      this.node.remove();
    }

    // Adds a reading in timestamp order; false if it is held already.
    add(reading) {
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
        this.times.splice(at, 0, time);
        this.values.splice(at, 0, reading.value);
        this.ids.splice(at, 0, reading.id);
      } else {
        this.times.push(time);
        this.values.push(reading.value);
        this.ids.push(reading.id);
      }
      this.seen.add(reading.id);
      this.dirty = true;
      return true;
    }

    replace(readings) {
      this.times = [];
      this.values = [];
      this.ids = [];
      this.seen.clear();
      for (const reading of readings) this.add(reading);
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
    }

    render(now) {
      this.dirty = false;
      const count = this.values.length;
      let low = Infinity;
      let high = -Infinity;
      let integers = true;
      for (const value of this.values) {
        if (value < low) low = value;
        if (value > high) high = value;
        if (integers && !Number.isInteger(value)) integers = false;
      }
      const latest = count ? this.values[count - 1] : null;
      this.show("points", String(count), () => (this.node.dataset.points = String(count)));
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
      let extent = count === 1 ? "1 reading" : `${count} readings`;
      if (count > 1) extent += ` over ${formatDuration(this.times[count - 1] - this.times[0])}`;
      this.show("window", count ? extent : "", (text) => (this.extent.textContent = text));
      const time = count ? this.times[count - 1] : null;
      this.show("time", String(time), () => {
        this.time.textContent = time === null ? "no readings yet" : formatTime(time);
        if (time !== null) this.time.dateTime = new Date(time).toISOString();
      });
      if (!this.visible || now - this.drawnAt < CHART_INTERVAL) {
        this.stale = true;
        return;
      }
      this.stale = false;
      this.drawnAt = now;
      this.draw(low, high, integers);
    }

    show(key, text, apply) {
      if (this.shown[key] !== text) {
        this.shown[key] = text;
        apply(text);
      }
    }

    draw(low, high, integers) {
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
      const count = this.values.length;
      context.font = `11px ${colors.font}`;
      if (count === 0) {
        context.fillStyle = colors.muted;
        context.textAlign = "center";
        context.textBaseline = "middle";
        context.fillText("Waiting for readings", width / 2, height / 2);
        return;
      }

      // value axis: the window's range with some air, never empty
      let span = high - low;
      const pad = span > 0 ? span * 0.12 : Math.abs(high) * 0.05 || 1;
      span += 2 * pad;
      const bottom = low - pad;
      const top = 14; // room for the upper label
      const plotHeight = height - top - 4;
      const y = (value) => top + plotHeight * (1 - (value - bottom) / span);
      const first = this.times[0];
      const duration = this.times[count - 1] - first;
      // time axis; readings that all share one timestamp are spread evenly instead
      const x =
        duration > 0
          ? (i) => 4 + (width - 8) * ((this.times[i] - first) / duration)
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

      // the line, and the area under it
      const line = new Path2D();
      line.moveTo(x(0), y(this.values[0]));
      for (let i = 1; i < count; i++) line.lineTo(x(i), y(this.values[i]));
      const area = new Path2D(line);
      area.lineTo(x(count - 1), height);
      area.lineTo(x(0), height);
      area.closePath();
      const fill = context.createLinearGradient(0, top, 0, height);
      fill.addColorStop(0, `${this.accent}40`);
      fill.addColorStop(1, `${this.accent}00`);
      context.fillStyle = fill;
      context.fill(area);
      context.strokeStyle = this.accent;
      context.lineWidth = 1.75;
      context.lineJoin = "round";
      context.lineCap = "round";
      context.stroke(line);

      // the newest reading
      const lastX = x(count - 1);
      const lastY = y(this.values[count - 1]);
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
        const text = formatValue(value, integers);
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
    const wanted = new Set(metrics.map((metric) => metric.id));
    for (const [id, card] of cards) {
      if (!wanted.has(id)) {
        card.remove();
        cards.delete(id);
      }
    }
    metrics.forEach((metric, index) => {
      const card = cards.get(metric.id) ?? addCard(metric);
      card.replace(metric.readings ?? []);
      // creation order; a card already in place is not moved (that would replay its entry animation)
      if (grid.children[index] !== card.node) grid.insertBefore(card.node, grid.children[index] ?? null);
    });
    queue = [];
    showEmpty();
    showSummary();
    requestFrame();
  }

  function showEmpty() {
    empty.hidden = cards.size > 0;
    grid.hidden = cards.size === 0;
  }

  function requestFrame() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(() => {
        frameRequested = false;
        flush();
      });
    }
    // a background tab runs no animation frames: apply the data anyway, draw when it is shown again
    if (!fallbackTimer) fallbackTimer = setTimeout(flush, 1000);
  }

  function flush() {
    clearTimeout(fallbackTimer);
    fallbackTimer = 0;
    const batch = queue;
    queue = [];
    const touched = new Set();
    let unknown = false;
    let reshaped = false; // a card came or went
    for (let i = 0; i < batch.length; i += 2) {
      const data = JSON.parse(batch[i + 1]);
      if (batch[i] === "metric_created") {
        if (!cards.has(data.id)) {
          addCard(data);
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
      } else if (card.add(data)) {
        touched.add(card);
        readingsCounted++;
      }
    }
    for (const card of touched) card.trim();
    if (reshaped) {
      showEmpty();
      showSummary();
    }
    if (!document.hidden) {
      const now = performance.now();
      let behind = false;
      for (const card of cards.values()) {
        if (card.dirty || (card.stale && card.visible)) card.render(now);
        behind ||= card.stale && card.visible;
      }
      if (behind) requestFrame(); // a chart drawn moments ago: its turn comes in a frame or two
    }
    if (unknown) reload();
  }

  function countRate() {
    rate = readingsCounted;
    readingsCounted = 0;
    showSummary();
  }

  function showSummary() {
    const parts = [`${cards.size} metric${cards.size === 1 ? "" : "s"}`];
    if (rate > 0) parts.push(`${numberFormat({}).format(rate)} readings/s`);
    summary.textContent = parts.join(" · ");
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
    const url = since === null ? STREAM_URL : `${STREAM_URL}?last_event_id=${encodeURIComponent(since)}`;
    const stream = new EventSource(url);
    source = stream;
    const current = generation;
    const live = () => source === stream && generation === current;
    const receive = (event) => {
      if (!live()) return;
      if (event.lastEventId) position = event.lastEventId;
      queue.push(event.type, event.data);
      requestFrame();
    };
    stream.addEventListener("metric_created", receive);
    stream.addEventListener("metric_reading_created", receive);
    stream.addEventListener("metric_deleted", receive);
    stream.addEventListener("reset", () => live() && reload());
    stream.onopen = () => live() && connected();
    stream.onmessage = (event) => {
      if (!live()) return;
      if (event.lastEventId) position = event.lastEventId;
      if (event.data === "connected") connected();
      else if (event.data === "disconnected") setState("reconnecting"); // the browser comes back by itself
    };
    stream.onerror = () => {
      if (!live()) return;
      failed();
      if (stream.readyState === EventSource.CLOSED) {
        // an HTTP error answer (503 while the server shuts down): the browser gives up, we do not
        source = null;
        retryTimer = setTimeout(() => openStream(position), backoff());
      }
    };
  }

  async function load() {
    const current = ++generation;
    clearTimeout(retryTimer);
    closeStream();
    queue = [];
    loadedAt = performance.now();
    let metrics;
    let since;
    try {
      const response = await fetch(STATE_URL, { cache: "no-store", headers: { Accept: "application/json" } });
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
  }

  // Loads the state again, at most once a second (a server that keeps answering `reset` is not hammered).
  function reload() {
    closeStream();
    clearTimeout(retryTimer);
    const wait = loadedAt + 1000 - performance.now();
    if (wait > 0) retryTimer = setTimeout(load, wait);
    else load();
  }

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
  setInterval(countRate, 1000);
  load();
})();
