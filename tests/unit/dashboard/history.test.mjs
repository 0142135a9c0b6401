// history.js: buckets of a window, folding live readings, scrolling; and which streamed readings an
// answer already holds (Handoff).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Format } from "../../../metricstream/dashboard/format.js";
import {
  Handoff,
  History,
  WINDOWS,
  bucketsChart,
  bucketsUrl,
} from "../../../metricstream/dashboard/history.js";

const format = new Format({ locale: "en-US", timeZone: "UTC" });
const NOW = Date.UTC(2024, 0, 2, 13, 0, 7); // 7 s into a minute: step 2 s of 10m, step 12 s of 1h
const S = 1000;

function row(start, values) {
  const sum = values.reduce((a, b) => a + b, 0);
  return {
    start: new Date(start).toISOString(),
    count: values.length,
    min: Math.min(...values),
    max: Math.max(...values),
    avg: sum / values.length,
    first: values[0],
    last: values[values.length - 1],
  };
}

describe("History", () => {
  test("the window ends with the current step, or with a bucket stamped ahead of our clock", () => {
    const history = new History(WINDOWS["10m"]);
    assert.equal(history.end(NOW), NOW + 1 * S); // the step of 6-8 s ends at 8 s
    assert.equal(history.end(NOW + 1 * S), NOW + 3 * S);
    history.load([row(NOW + 60 * S, [1])]);
    assert.equal(history.end(NOW), NOW + 62 * S);
  });

  test("load reads the server's rows; ready", () => {
    const history = new History(WINDOWS["1h"]);
    assert.equal(history.state, "loading");
    assert.equal(history.cutoff, Infinity);
    history.load([row(NOW - 31 * S, [1, 3]), row(NOW - 19 * S, [5])]);
    assert.equal(history.state, "ready");
    assert.deepEqual(
      history.buckets.map((b) => [b.start, b.count, b.avg, b.firstAt, b.lastAt]),
      [
        [NOW - 31 * S, 2, 2, NOW - 31 * S, NOW - 31 * S],
        [NOW - 19 * S, 1, 5, NOW - 19 * S, NOW - 19 * S],
      ],
    );
  });

  test("a reading folds into its bucket: count, average, min, max, first and last by time", () => {
    const history = new History(WINDOWS["10m"]);
    const start = NOW - 1 * S; // the bucket of 6-8 s
    history.load([row(start, [4, 2])]);
    history.fold(start + 1500, 9, NOW);
    history.fold(start + 200, -4, NOW); // later, but stamped earlier than the last: not the last
    const [bucket] = history.buckets;
    assert.deepEqual(
      [bucket.count, bucket.avg, bucket.min, bucket.max, bucket.first, bucket.last],
      [4, 2.75, -4, 9, 4, 9],
    );
    const started = new History(WINDOWS["10m"]);
    started.load([]);
    started.fold(start + 1000, 5, NOW); // starts the bucket
    started.fold(start + 300, 1, NOW); // stamped earlier in the same step: its first
    assert.deepEqual(started.buckets.map((b) => [b.start, b.count, b.first, b.last]), [[start, 2, 1, 5]]);
  });

  test("a reading starts a bucket in its place; one older than the window is left out", () => {
    const history = new History(WINDOWS["10m"]);
    history.load([row(NOW - 21 * S, [1]), row(NOW - 1 * S, [3])]);
    history.fold(NOW - 10 * S, 2, NOW);
    history.fold(NOW + 5 * S, 4, NOW); // stamped ahead of our clock
    history.fold(NOW - 600 * S, 0, NOW); // before the window's start (NOW + 1 s - 600 s)
    assert.deepEqual(
      history.buckets.map((bucket) => [bucket.start - NOW, bucket.avg]),
      [
        [-21 * S, 1],
        [-11 * S, 2],
        [-1 * S, 3],
        [5 * S, 4],
      ],
    );
  });

  test("buckets scroll out as time passes", () => {
    const history = new History(WINDOWS["10m"]);
    history.load([row(NOW - 561 * S, [1]), row(NOW - 301 * S, [2])]);
    history.trim(NOW);
    assert.equal(history.buckets.length, 2);
    history.trim(NOW + 120 * S);
    assert.deepEqual(
      history.buckets.map((bucket) => bucket.avg),
      [2],
    );
  });
});

test("bucketsUrl asks for the window, until one window past its end, by its step", () => {
  const history = new History(WINDOWS["1h"]);
  const url = new URL(bucketsUrl("id/1", history, NOW), "http://host/ms/");
  assert.equal(url.pathname, "/ms/metrics/id%2F1/readings");
  const end = Date.UTC(2024, 0, 2, 13, 0, 12);
  assert.equal(url.searchParams.get("since"), new Date(end - 3600 * S).toISOString());
  assert.equal(url.searchParams.get("until"), new Date(end + 3600 * S).toISOString());
  assert.equal(url.searchParams.get("step"), "12");
});

describe("bucketsChart", () => {
  test("the averages in a band from min to max, across the window, and the card's texts", () => {
    const history = new History(WINDOWS["10m"]);
    history.load([row(NOW - 5 * S, [1, 3]), row(NOW - 1 * S, [4, 6, 8])]);
    const chart = bucketsChart(history, format, NOW);
    assert.equal(chart.points, 2);
    assert.equal(chart.readings, 5);
    assert.equal(chart.extent, "5 readings, averages per 2 s");
    assert.equal(
      chart.label,
      "Chart of averages per 2 s over the last 10 minutes: 2 points, latest 6, lowest 1, highest 8",
    );
    assert.deepEqual([chart.low, chart.high, chart.integers, chart.message], [1, 8, true, null]);
    assert.deepEqual([0, 1].map(chart.valueAt), [2, 6]);
    assert.deepEqual([0, 1].map(chart.timeAt), [NOW - 4 * S, NOW]); // the middle of each step
    assert.deepEqual(chart.band(1), history.buckets[1]);
    assert.deepEqual([chart.from, chart.to], [NOW + 1 * S - 600 * S, NOW + 1 * S]);
  });

  test("a latest average with decimals is shown with them", () => {
    const history = new History(WINDOWS["10m"]);
    history.load([row(NOW - 1 * S, [1, 2])]);
    assert.match(bucketsChart(history, format, NOW).label, /latest 1\.50, lowest 1, highest 2$/);
  });

  test("says why there is nothing to draw: loading, failed, or no readings", () => {
    const history = new History(WINDOWS["1d"]);
    const loading = bucketsChart(history, format, NOW);
    assert.deepEqual([loading.message, loading.extent, loading.label], [
      "Loading history…",
      "Loading history…",
      "Chart: Loading history…",
    ]);
    history.state = "failed";
    assert.equal(bucketsChart(history, format, NOW).message, "History unavailable");
    history.load([]);
    const empty = bucketsChart(history, format, NOW);
    assert.equal(empty.message, "No readings in the last 24 hours");
    assert.equal(empty.extent, "0 readings, averages per 5 min");
  });
});

describe("Handoff", () => {
  test("an answer read where the stream stood when asked holds what was numbered until then", () => {
    const handoff = new Handoff();
    handoff.receive("e1");
    const asked = handoff.ask("e1");
    handoff.receive("e2"); // streamed while the request was out: not in the answer
    assert.equal(handoff.answered(asked, "e1", () => assert.fail("settled")), 1);
    assert.equal(handoff.answered(asked, null, () => assert.fail("settled")), 1); // not said: the same
  });

  test("an answer read at an event streamed while it was out holds up to that event", () => {
    const handoff = new Handoff();
    const asked = handoff.ask(null);
    handoff.receive("e1");
    handoff.receive("");
    handoff.receive("e3");
    assert.equal(handoff.answered(asked, "e3", () => assert.fail("settled")), 3);
    handoff.done();
    assert.equal(handoff.recent.size, 0); // nothing is out: no event is remembered
  });

  test("an answer read ahead of the stream holds all until the stream brings that event", () => {
    const handoff = new Handoff();
    const asked = handoff.ask(null);
    const settled = [];
    assert.equal(handoff.answered(asked, "e2", (number) => settled.push(number)), Infinity);
    handoff.done();
    handoff.receive("e1");
    assert.deepEqual(settled, []);
    handoff.receive("e2");
    assert.deepEqual(settled, [2]);
    handoff.receive("e2"); // once
    assert.deepEqual(settled, [2]);
  });

  test("events are remembered only while an answer is awaited; forget drops waiting answers", () => {
    const handoff = new Handoff();
    handoff.receive("e1");
    assert.equal(handoff.recent.size, 0);
    const asked = handoff.ask("e1");
    assert.equal(handoff.answered(asked, "e5", () => assert.fail("settled after forget")), Infinity);
    handoff.forget();
    handoff.receive("e5");
  });
});
