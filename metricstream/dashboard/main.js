// metricstream dashboard: the board, and the wiring of its parts.
//
//   connection.js  the state over REST, then the event stream from the position of that read; reset, backoff
//   card.js        one metric's card: series.js (its readings), history.js (its buckets), chart.js (drawing)
//   frames.js      events are applied once per animation frame, charts drawn within a budget
//   signin.js      the form, when reads need a token
//   format.js      numbers, times and durations; colors.js: a metric's colour, from its id
//
// The window picker: "Latest readings" (the default) draws each metric's newest readings. A longer window
// draws buckets (history.js), GET metrics/{id}/readings?since=&step= with a round step giving about as many
// points, their average in a band from min to max, kept live from the stream. The choice is kept in
// localStorage. One metric alone (`?metric=<id>`, what `hub.show(metric)` frames): its card, large, and a
// stream filtered to it; `&embed=1` drops the top bar. An id no metric has, or one deleted, says so.

import { Card } from "./card.js";
import { readTheme } from "./chart.js";
import { Connection, sessionState } from "./connection.js";
import { Format } from "./format.js";
import { FrameLoop, drawDue } from "./frames.js";
import { DEFAULT_WINDOW, WINDOWS, bucketsUrl } from "./history.js";
import { SignIn } from "./signin.js";

const WINDOW_KEY = "metricstream.window"; // where localStorage keeps the choice
const HISTORY_RETRY = 5000; // ms before buckets the server failed to give are asked for again
const LABELS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
  locked: "Sign-in needed",
};

const grid = document.getElementById("grid");
const empty = document.getElementById("empty");
const missing = document.getElementById("missing");
const summary = document.getElementById("summary");
const connectionState = document.getElementById("connection");
const connectionLabel = document.getElementById("connection-label");
const picker = document.getElementById("window");
const template = document.getElementById("card-template");
const query = new URLSearchParams(location.search);
const focus = query.has("metric") ? query.get("metric").trim().toLowerCase() : null;
const focusValid = focus === null || /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(focus);
let focusName = null; // set once the metric was on this page: a card gone after that was deleted

/** @type {import("./card.js").Look} the theme follows light and dark mode */
const look = { format: new Format(), theme: readTheme(document.documentElement) };
/** @type {Map<string, Card>} metric id -> card, in creation order */
const cards = new Map();
/** @type {WeakMap<Element, Card>} a card's observed node or canvas -> the card */
const cardOf = new WeakMap();
let queue = []; // [type, data, number, type, data, number, ...] waiting for the next frame
let readingsCounted = 0; // for the readings/s figure
let rate = 0;
let windowKey = DEFAULT_WINDOW;
let lastStep = 0; // the bucket step the windows were last moved on at

const frames = new FrameLoop(flush);
const connection = new Connection(focus, {
  state: showConnection,
  loading: () => (queue = []),
  loaded(metrics) {
    applyState(metrics);
    chooseWindow(windowKey); // the buckets of the state just read
  },
  event(type, data, number) {
    queue.push(type, data, number);
    frames.request();
  },
  locked: lock,
});
const signIn = new SignIn(document, showBoard, () => lock());

const resizes = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const card = cardOf.get(entry.target);
    card.width = entry.contentRect.width;
    card.height = entry.contentRect.height;
    card.dirty = true;
  }
  frames.request();
});

// Charts out of view are not drawn (20 canvases cost far more than the 6 on screen); they are drawn
// when they scroll into view.
const views = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const card = cardOf.get(entry.target);
      card.visible = entry.isIntersecting;
      if (card.visible && card.stale) {
        card.dirty = true;
        frames.request();
      }
    }
  },
  { rootMargin: "200px 0px" },
);

function addCard(metric) {
  const card = new Card(metric, template, look);
  cards.set(metric.id, card);
  cardOf.set(card.node, card);
  cardOf.set(card.canvas, card);
  resizes.observe(card.canvas);
  views.observe(card.node);
  grid.append(card.node);
  return card;
}

function removeCard(card) {
  resizes.unobserve(card.canvas);
  views.unobserve(card.node);
  card.remove();
  cards.delete(card.id);
}

// --- applying the state and the events --------------------------------------------------------

function applyState(metrics) {
  if (focus !== null) {
    metrics = metrics.filter((metric) => metric.id === focus);
    if (metrics.length) focusName = metrics[0].name;
    if (focusName !== null) document.title = `${focusName} · metricstream`;
  }
  const wanted = new Set(metrics.map((metric) => metric.id));
  for (const card of [...cards.values()]) {
    if (!wanted.has(card.id)) removeCard(card);
  }
  metrics.forEach((metric, index) => {
    const card = cards.get(metric.id) ?? addCard(metric);
    card.replace(metric.readings ?? [], connection.handoff.received);
    // creation order; a card already in place is not moved (that would replay its entry animation)
    if (grid.children[index] !== card.node) grid.insertBefore(card.node, grid.children[index] ?? null);
  });
  queue = [];
  showEmpty();
  showSummary();
  frames.request();
}

// Applies the queued events and shows the cards that changed; returns how many charts it drew.
function flush(budget) {
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
    } else if (batch[i] === "metric_deleted") {
      const gone = cards.get(data.id);
      if (gone !== undefined) {
        removeCard(gone);
        touched.delete(gone);
        reshaped = true;
      }
    } else {
      const card = cards.get(data.metric_id);
      if (card === undefined) {
        unknown = true; // cannot happen with an intact stream: the state is out of step
      } else if (card.add(data, batch[i + 2])) {
        touched.add(card);
        readingsCounted++;
      }
    }
  }
  for (const card of touched) card.trim();
  if (reshaped) {
    showEmpty();
    showSummary();
  }
  let drawn = 0;
  if (!document.hidden) {
    const due = drawDue(cards.values(), performance.now(), budget);
    drawn = due.drawn;
    if (due.behind) frames.request();
  }
  if (unknown) connection.reload();
  return drawn;
}

// --- what the page says around the cards -------------------------------------------------------

function showConnection(state) {
  if (connectionState.dataset.state === state) return;
  connectionState.dataset.state = state;
  connectionLabel.textContent = LABELS[state];
}

function showSummary() {
  if (signIn.shown) {
    summary.textContent = "not signed in";
    return;
  }
  const parts = [`${cards.size} metric${cards.size === 1 ? "" : "s"}`];
  if (rate > 0) parts.push(`${look.format.number(rate)} readings/s`);
  summary.textContent = parts.join(" · ");
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

// --- the window picker, and the buckets it asks for ---------------------------------------------

function chooseWindow(key) {
  windowKey = key;
  picker.value = key;
  grid.dataset.window = key;
  for (const card of cards.values()) {
    const history = card.setWindow(WINDOWS[key]);
    if (history !== null) loadHistory(card, history);
  }
  frames.request();
}

async function loadHistory(card, history) {
  const url = bucketsUrl(card.id, history, Date.now());
  const handoff = connection.handoff;
  const asked = handoff.ask(connection.position);
  try {
    const answer = await connection.readBuckets(url);
    // signed out, another window, or the card gone
    if (answer === null || card.history !== history || cards.get(card.id) !== card) return;
    if (answer.rows === null) {
      history.state = "failed";
      if (answer.retry) card.retry = setTimeout(() => loadHistory(card, history), HISTORY_RETRY);
    } else {
      // readings streamed after the event the answer was read at are folded in; for one the stream has
      // not brought yet, from the event after it on
      const cutoff = handoff.answered(asked, answer.at, (number) => (history.cutoff = number));
      card.loaded(answer.rows, cutoff);
    }
    card.dirty = true;
    frames.request();
  } finally {
    handoff.done();
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
function scrollWindows() {
  const view = WINDOWS[windowKey];
  if (!view.step) return;
  const step = Math.floor(Date.now() / (view.step * 1000));
  if (step === lastStep) return;
  lastStep = step;
  for (const card of cards.values()) card.dirty = true;
  frames.request();
}

// --- signed in or not ---------------------------------------------------------------------------

// Reads need a token the page has not given: everything stops, and the form asks for it.
function lock(message = "") {
  connection.stop();
  queue = [];
  for (const card of [...cards.values()]) removeCard(card);
  grid.hidden = true;
  empty.hidden = true;
  signIn.show(message);
  showConnection("locked");
  showSummary();
}

// The board, loaded and streamed (with the session cookie, when `signedIn`: then it can sign out).
function showBoard(signedIn) {
  signIn.hide(signedIn);
  showConnection("connecting");
  if (focusValid) connection.load();
  else showEmpty(); // no metric can have that id: nothing to load
}

async function start() {
  const state = await sessionState();
  if (state !== null && state.required && !state.signed_in) lock();
  else showBoard(state?.signed_in === true);
}

// --- start ------------------------------------------------------------------------------------

document.getElementById("host").textContent = location.host;
const base = new URL(".", location.href).href.replace(/\/$/, "");
for (const node of document.querySelectorAll(".origin")) node.textContent = base;
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  look.theme = readTheme(document.documentElement);
  for (const card of cards.values()) card.dirty = true;
  frames.request();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) frames.request();
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
  rate = readingsCounted;
  readingsCounted = 0;
  showSummary();
  scrollWindows();
}, 1000);
start();
