// format.js: numbers, times and durations, in a locale and time zone pinned by the test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Format,
  formatDuration,
  formatLabels,
  metricTitle,
  parseTime,
} from "../../../metricstream/dashboard/format.js";

const format = new Format({ locale: "en-US", timeZone: "UTC" });
// ICU versions differ in which space comes before AM/PM (U+0020 or U+202F)
const spaced = (text) => text.replace(/\s/g, " ");

describe("Format.value", () => {
  test("about three significant digits, by magnitude", () => {
    assert.equal(format.value(48.5), "48.50");
    assert.equal(format.value(7), "7.00");
    assert.equal(format.value(150.25), "150.3");
    assert.equal(format.value(1234.5), "1,235");
    assert.equal(format.value(0.5), "0.5");
    assert.equal(format.value(0.012345), "0.0123");
    assert.equal(format.value(-3.25), "-3.25");
  });

  test("millions compact, the tiniest in exponent form", () => {
    assert.equal(format.value(1_234_567), "1.23M");
    assert.equal(format.value(-2_500_000_000), "-2.5B");
    assert.equal(format.value(0.0001), "1.00e-4");
  });

  test("no decimals when every value in view is whole", () => {
    assert.equal(format.value(7, true), "7");
    assert.equal(format.value(150, true), "150");
    assert.equal(format.value(1_234_567, true), "1.23M");
  });

  test("in the given locale", () => {
    assert.equal(new Format({ locale: "de-DE" }).value(48.5), "48,50");
    assert.equal(new Format({ locale: "de-DE" }).value(1234.5), "1.235");
  });
});

test("span and interval: s, min or h", () => {
  assert.equal(format.span(0.5), "0.5 s");
  assert.equal(format.span(12), "12 s");
  assert.equal(format.span(90), "1.5 min");
  assert.equal(format.span(7200), "2 h");
  assert.equal(format.interval(1), "every 1 s");
  assert.equal(format.interval(0), "");
  assert.equal(format.interval(null), "");
});

test("number: grouped, formatters made once per options", () => {
  assert.equal(format.number(12345), "12,345");
  assert.equal(format.number(0.25, { style: "percent" }), "25%");
  const made = format.numbers.size;
  format.number(6789);
  assert.equal(format.numbers.size, made);
});

test("duration: the largest two units", () => {
  assert.equal(formatDuration(999), "under 1 s");
  assert.equal(formatDuration(45_000), "45 s");
  assert.equal(formatDuration(59_600), "1 min");
  assert.equal(formatDuration(125_000), "2 min 5 s");
  assert.equal(formatDuration(3 * 3600_000), "3 h");
  assert.equal(formatDuration(3 * 3600_000 + 20 * 60_000), "3 h 20 min");
  assert.equal(formatDuration(5 * 86_400_000), "5 days");
  assert.equal(format.duration(45_000), "45 s");
});

describe("Format.time", () => {
  const time = Date.UTC(2024, 0, 2, 13, 4, 5);

  test("the time of day for a reading of today", () => {
    assert.equal(spaced(format.time(time, time + 3600_000)), "01:04:05 PM");
  });

  test("the date as well for an older one, or one of another day in the time zone", () => {
    assert.equal(spaced(format.time(time, time + 86_400_000)), "Jan 2, 2024, 1:04 PM");
    const tokyo = new Format({ locale: "en-US", timeZone: "Asia/Tokyo" }); // 22:04 there: midnight is near
    assert.equal(spaced(tokyo.time(time, time + 3 * 3600_000)), "Jan 2, 2024, 10:04 PM");
    assert.equal(spaced(tokyo.time(time, time + 1 * 3600_000)), "10:04:05 PM");
  });
});

test("parseTime reads RFC 3339 with up to 9 fractional digits", () => {
  const time = Date.UTC(2024, 0, 2, 13, 4, 5, 123);
  assert.equal(parseTime("2024-01-02T13:04:05.123456789Z"), time);
  assert.equal(parseTime("2024-01-02T13:04:05.123Z"), time);
  assert.equal(parseTime("2024-01-02T15:04:05.1234+02:00"), time);
  assert.equal(parseTime("2024-01-02T13:04:05Z"), time - 123);
});

test("formatLabels: name=value pairs joined by a middle dot, as given; nothing for none", () => {
  assert.equal(formatLabels({ dc: "x", host: "a" }), "dc=x · host=a");
  assert.equal(formatLabels({ path: "a=b, c" }), "path=a=b, c");
  assert.equal(formatLabels({}), "");
  assert.equal(formatLabels(undefined), "");
  assert.equal(formatLabels(null), "");
});

test("metricTitle: the name, then its labels as formatLabels writes them; the name alone without", () => {
  assert.equal(metricTitle({ name: "cpu", labels: { dc: "x", host: "a" } }), "cpu dc=x · host=a");
  assert.equal(metricTitle({ name: "cpu", labels: {} }), "cpu");
  assert.equal(metricTitle({ name: "cpu" }), "cpu"); // a server from before labels sends none
});
