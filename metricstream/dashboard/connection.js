// The connection to the server: the state over REST, then the event stream from the position of that read.
//
// 1. GET metrics?with_readings=true&readings_limit=READINGS_KEPT; its X-Last-Event-ID is where the state
//    stands.
// 2. EventSource events/watch?last_event_id=<that id>: every change after the read. The browser resumes
//    by itself after a dropped connection, sending the last id it saw (the `connected` frame carries one,
//    so even a connection that saw no event resumes from the right place).
// 3. `reset` (the server no longer knows our position): load the state again and reopen from there.
//
// A 401 means reads need a token the page has not given; an EventSource cannot tell a 401, so a refused
// stream asks the sign-in state (dashboard/session). URLs are relative, so the dashboard also works behind
// a proxy that mounts the server under a path.

import { Handoff } from "./history.js";
import { READINGS_KEPT } from "./series.js";

const STATE_URL = `metrics?with_readings=true&readings_limit=${READINGS_KEPT}`;
const STREAM_URL = "events/watch";
export const SESSION_URL = "dashboard/session";
const EVENT_TYPES = ["metric_created", "metric_reading_created", "metric_deleted"];
const JSON_ONLY = { cache: "no-store", headers: { Accept: "application/json" } };

/** The message of an error answer ({"error": ...}). @param {Response} response */
export async function errorOf(response) {
  try {
    return (await response.json()).error ?? "";
  } catch {
    return `the server answered ${response.status}`;
  }
}

/** {required, signed_in}, or null when the server does not say (away, or one without sign-in).
 * @returns {Promise<{required: boolean, signed_in: boolean} | null>}
 */
export async function sessionState() {
  try {
    const response = await fetch(SESSION_URL, JSON_ONLY);
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** What the connection tells the board.
 * @typedef {object} Listener
 * @property {(state: "connecting" | "connected" | "reconnecting" | "disconnected") => void} state
 * @property {() => void} loading a load began: what older streams brought is void
 * @property {(metrics: object[]) => void} loaded the state read, the stream opened after it
 * @property {(type: string, data: string, number: number) => void} event a streamed event, numbered
 * @property {(message?: string) => void} locked reads need a token: everything stops
 */

export class Connection {
  /**
   * @param {string | null} focus the one metric to follow (?metric=), or null for all
   * @param {Listener} listener
   */
  constructor(focus, listener) {
    this.focus = focus;
    this.listener = listener;
    this.handoff = new Handoff(); // numbers the events, for the bucket answers' cutoffs
    /** @type {EventSource | null} */
    this.source = null;
    this.generation = 0; // bumped by every load: events of an older stream are dropped
    /** @type {string | null} id of the newest event seen: where to reopen the stream */
    this.position = null;
    this.failures = 0; // failed attempts since the last successful connection
    this.retryTimer = 0;
    this.loadedAt = 0; // performance.now() of the latest load
  }

  async load() {
    const current = ++this.generation;
    clearTimeout(this.retryTimer);
    this.closeStream();
    this.listener.loading();
    this.handoff.forget(); // every window is loaded again after this load
    this.loadedAt = performance.now();
    let metrics;
    let since;
    try {
      const response = await fetch(STATE_URL, JSON_ONLY);
      if (response.status === 401) {
        const message = await errorOf(response);
        if (current === this.generation) this.listener.locked(message);
        return;
      }
      if (!response.ok) throw new Error(`GET ${STATE_URL} answered ${response.status}`);
      since = response.headers.get("X-Last-Event-ID");
      metrics = await response.json();
    } catch {
      if (current !== this.generation) return;
      this.failed();
      this.retryTimer = setTimeout(() => this.load(), this.backoff());
      return;
    }
    if (current !== this.generation) return;
    this.position = since;
    this.openStream(since);
    this.listener.loaded(metrics);
  }

  /** Loads the state again, at most once a second (a server that keeps answering `reset` is not hammered). */
  reload() {
    this.closeStream();
    clearTimeout(this.retryTimer);
    const wait = this.loadedAt + 1000 - performance.now();
    if (wait > 0) this.retryTimer = setTimeout(() => this.load(), wait);
    else this.load();
  }

  /** Stops everything: what an older load or stream still brings is dropped. */
  stop() {
    this.generation++;
    clearTimeout(this.retryTimer);
    this.closeStream();
  }

  /** A metric's buckets: the rows and the event they were read at, or null rows and whether to ask again;
   * null when reads need a token (the listener was told).
   * @param {string} url
   * @returns {Promise<{rows: object[] | null, at: string | null, retry: boolean} | null>}
   */
  async readBuckets(url) {
    let retry = true; // the network or the server is away: ask again later
    try {
      const response = await fetch(url, JSON_ONLY);
      retry = response.status >= 500; // a refusal (4xx) stands: asking again will not change it
      if (response.status === 401) {
        this.listener.locked(await errorOf(response));
        return null;
      }
      if (response.ok) {
        const at = response.headers.get("X-Last-Event-ID");
        const rows = await response.json();
        // a server without buckets ignores `step` and answers raw readings
        const buckets = Array.isArray(rows) && rows.every((row) => typeof row.start === "string");
        if (buckets) return { rows, at, retry };
      }
    } catch {
      // no answer, or not JSON: `retry` says whether to ask again
    }
    return { rows: null, at: null, retry };
  }

  closeStream() {
    if (this.source !== null) {
      this.source.close();
      this.source = null;
    }
  }

  /** @param {string | null} since */
  openStream(since) {
    this.closeStream();
    const { focus, handoff, listener } = this;
    let url = since === null ? STREAM_URL : `${STREAM_URL}?last_event_id=${encodeURIComponent(since)}`;
    if (focus !== null) url += `${since === null ? "?" : "&"}metric_id=${encodeURIComponent(focus)}`;
    const stream = new EventSource(url);
    this.source = stream;
    const current = this.generation;
    const live = () => this.source === stream && this.generation === current;
    const receive = (event) => {
      if (!live()) return;
      const id = event.lastEventId;
      if (id) this.position = id;
      listener.event(event.type, event.data, handoff.receive(id));
    };
    for (const type of EVENT_TYPES) stream.addEventListener(type, receive);
    stream.addEventListener("reset", () => live() && this.reload());
    stream.onopen = () => live() && this.connected();
    stream.onmessage = (event) => {
      if (!live()) return;
      // A filtered stream (one metric) names its position by an event of that metric (docs/protocol.md),
      // which a bucket answer's X-Last-Event-ID cannot be compared with; the browser resumes from it.
      if (event.lastEventId && focus === null) this.position = event.lastEventId;
      if (event.data === "connected") this.connected();
      // `disconnected`: the server is going away, and the browser comes back by itself
      else if (event.data === "disconnected") listener.state("reconnecting");
    };
    stream.onerror = () => {
      if (!live()) return;
      this.failed();
      if (stream.readyState === EventSource.CLOSED) {
        // an HTTP error answer (503 while the server shuts down): the browser gives up, we do not
        this.source = null;
        this.refused(current);
      }
    };
  }

  connected() {
    this.failures = 0;
    this.listener.state("connected");
  }

  failed() {
    this.failures++;
    // one failure is a blip (the server ended the stream, the browser retries); two mean it is down
    this.listener.state(this.failures > 1 ? "disconnected" : "reconnecting");
  }

  backoff() {
    const delay = Math.min(15000, 1000 * 2 ** Math.max(0, this.failures - 1));
    return delay * (0.75 + Math.random() / 2);
  }

  /** The stream got an HTTP error (a 401, or 503 while the server stops): sign in, or try again later.
   * @param {number} current the generation of the refused stream
   */
  async refused(current) {
    const state = await sessionState();
    if (current !== this.generation) return;
    if (state !== null && state.required && !state.signed_in) this.listener.locked();
    else this.retryTimer = setTimeout(() => this.openStream(this.position), this.backoff());
  }
}
