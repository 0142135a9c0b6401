// colors.js: a metric's colour from its id alone, the same on every page.
import assert from "node:assert/strict";
import { test } from "node:test";

import { metricColor, metricHue } from "../../../metricstream/dashboard/colors.js";

// ids that differ in one place, as UUIDv7s made in one millisecond do
const uuid = (i) => `0190f5a8-${String(i).padStart(4, "0")}-7000-8000-0000000000aa`;
const ids = Array.from({ length: 500 }, (_, i) => uuid(i));

// "#rrggbb" back to OKLCH: lightness, chroma, hue in degrees (the inverse of what colors.js computes, with
// Ottosson's matrices from sRGB to Oklab)
function oklch(color) {
  const [r, g, b] = [1, 3, 5].map((at) => {
    const encoded = parseInt(color.slice(at, at + 2), 16) / 255;
    return encoded <= 0.04045 ? encoded / 12.92 : ((encoded + 0.055) / 1.055) ** 2.4;
  });
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  const A = 1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s;
  const B = 0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s;
  return {
    lightness: 0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    chroma: Math.hypot(A, B),
    hue: ((Math.atan2(B, A) * 180) / Math.PI + 360) % 360,
  };
}

test("the same id gives the same colour; it does not depend on what else was coloured", () => {
  const first = ids.map(metricColor);
  const again = [...ids].reverse().map(metricColor).reverse();
  assert.deepEqual(again, first);
});

test("pinned: other pages (a notebook's chart) compute the same (FNV-1a of the id, mod 360)", () => {
  assert.equal(metricHue("cpu"), 289);
  assert.equal(metricHue("0190f5a8-0000-7000-8000-000000000000"), 36);
  assert.equal(metricHue("0190f5a8-0000-7000-8000-000000000001"), 215);
  assert.equal(metricColor("cpu"), "#9083dc");
  assert.equal(metricColor("0190f5a8-0000-7000-8000-000000000001"), "#00a5c3");
});

test("every colour is equally light and vivid, oklch(0.66 0.13 hue), near it where sRGB cannot show it", () => {
  for (const id of ids) {
    const color = metricColor(id);
    assert.match(color, /^#[0-9a-f]{6}$/);
    const { lightness, chroma, hue } = oklch(color);
    const turn = Math.abs(hue - metricHue(id));
    assert.ok(Math.min(turn, 360 - turn) < 4, `${id} ${color}: hue ${hue}, not ${metricHue(id)}`);
    assert.ok(Math.abs(lightness - 0.66) < 0.015, `${id} ${color}: lightness ${lightness}`);
    assert.ok(Math.abs(chroma - 0.13) < 0.02, `${id} ${color}: chroma ${chroma}`);
  }
});

test("ids that differ in one character spread over the colour wheel", () => {
  const sectors = new Set(ids.map((id) => Math.floor(metricHue(id) / 30)));
  assert.equal(sectors.size, 12);
  const hues = new Set(ids.map(metricHue));
  assert.ok(hues.size > 250, `${hues.size} hues for ${ids.length} ids`);
});
