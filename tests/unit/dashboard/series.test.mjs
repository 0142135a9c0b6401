// series.js: a card's readings, in timestamp order, each once, the newest kept.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Format } from "../../../metricstream/dashboard/format.js";
import { READINGS_KEPT, Series, readingsChart } from "../../../metricstream/dashboard/series.js";

const format = new Format({ locale: "en-US", timeZone: "UTC" });
const T = Date.UTC(2024, 0, 2, 13, 0, 0);

function seriesOf(readings, limit) {
  const series = new Series(limit);
  for (const [id, seconds, value, number = 0] of readings) series.add(id, T + seconds * 1000, value, number);
  return series;
}

test("readings are held in timestamp order, a late one in its place after those of its time", () => {
  const series = seriesOf([
    ["a", 1, 10],
    ["b", 5, 50],
    ["c", 3, 30], // stamped by its poster before the newest
    ["d", 5, 51], // the same time as the newest: after it
    ["e", 0, 0],
    ["f", 3, 31], // the same time as c: after it
  ]);
  assert.deepEqual(series.ids, ["e", "a", "c", "f", "b", "d"]);
  assert.deepEqual(series.values, [0, 10, 30, 31, 50, 51]);
  assert.deepEqual(series.times, [0, 1, 3, 3, 5, 5].map((seconds) => T + seconds * 1000));
  assert.equal(series.length, 6);
});

test("a reading is added once, by its id: the handoff from REST to the stream may repeat one", () => {
  const series = seriesOf([["a", 1, 10, 1]]);
  assert.equal(series.add("a", T + 1000, 10, 2), false);
  assert.equal(series.add("b", T + 2000, 20, 2), true);
  assert.deepEqual(series.ids, ["a", "b"]);
  assert.deepEqual(series.numbers, [1, 2]);
});

test("trim keeps the newest by timestamp, and forgets the ids of those it drops", () => {
  const series = seriesOf(
    [
      ["a", 4, 4],
      ["b", 1, 1],
      ["c", 3, 3],
      ["d", 2, 2],
    ],
    3,
  );
  series.trim();
  assert.deepEqual(series.ids, ["d", "c", "a"]);
  assert.deepEqual(series.values, [2, 3, 4]);
  assert.equal(series.seen.has("b"), false);
  assert.equal(series.add("b", T + 1000, 1, 0), true); // held no more: it may come again
  series.trim();
  assert.deepEqual(series.ids, ["d", "c", "a"]);
  assert.equal(new Series().limit, READINGS_KEPT);
});

test("clear empties it", () => {
  const series = seriesOf([["a", 1, 10]]);
  series.clear();
  assert.equal(series.length, 0);
  assert.equal(series.add("a", T, 1, 0), true);
});

test("integers: whether every value is whole", () => {
  assert.equal(seriesOf([["a", 1, 10], ["b", 2, -3]]).integers(), true);
  assert.equal(seriesOf([["a", 1, 10], ["b", 2, 2.5]]).integers(), false);
  assert.equal(new Series().integers(), true);
});

test("readingsChart: the points to draw, their range, and the card's texts", () => {
  const series = seriesOf([
    ["a", 0, 12.5],
    ["b", 65, 48.25],
    ["c", 30, 3],
  ]);
  const chart = readingsChart(series, false, format);
  assert.equal(chart.points, 3);
  assert.equal(chart.readings, 3);
  assert.equal(chart.extent, "3 readings over 1 min 5 s");
  assert.equal(chart.label, "Chart of 3 readings over 1 min 5 s, from 3.00 to 48.25");
  assert.equal(chart.message, null);
  assert.deepEqual([chart.low, chart.high, chart.from, chart.to], [3, 48.25, T, T + 65_000]);
  assert.deepEqual([0, 1, 2].map(chart.valueAt), [12.5, 3, 48.25]);
  assert.deepEqual([0, 1, 2].map(chart.timeAt), [T, T + 30_000, T + 65_000]);
  assert.equal(chart.band, null);
});

test("readingsChart of one reading, of whole values, and of none", () => {
  const one = readingsChart(seriesOf([["a", 0, 7]]), true, format);
  assert.equal(one.extent, "1 reading");
  assert.equal(one.label, "Chart of 1 reading, from 7 to 7");
  const none = readingsChart(new Series(), true, format);
  assert.equal(none.points, 0);
  assert.equal(none.extent, "");
  assert.equal(none.label, "Chart: no readings yet");
  assert.equal(none.message, "Waiting for readings");
});
