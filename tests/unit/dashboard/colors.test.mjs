// colors.js: a metric's colour from its id alone, the same on every page.
import assert from "node:assert/strict";
import { test } from "node:test";

import { metricColor, metricHue } from "../../../metricstream/dashboard/colors.js";

// ids that differ in one place, as UUIDv7s made in one millisecond do
const uuid = (i) => `0190f5a8-${String(i).padStart(4, "0")}-7000-8000-0000000000aa`;
const ids = Array.from({ length: 500 }, (_, i) => uuid(i));

// "#rrggbb" back to hue (degrees), saturation and lightness (0-1)
function hsl(color) {
  const [r, g, b] = [1, 3, 5].map((at) => parseInt(color.slice(at, at + 2), 16) / 255);
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const lightness = (max + min) / 2;
  const chroma = max - min;
  const saturation = chroma / (1 - Math.abs(2 * lightness - 1));
  let hue = max === r ? ((g - b) / chroma) % 6 : max === g ? (b - r) / chroma + 2 : (r - g) / chroma + 4;
  hue = (hue * 60 + 360) % 360;
  return { hue, saturation, lightness };
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
  assert.equal(metricColor("0190f5a8-0000-7000-8000-000000000001"), "#2f76da");
});

test("the colour is hsl(hue, 70%, 52%) as #rrggbb", () => {
  for (const id of ids.slice(0, 50)) {
    const color = metricColor(id);
    assert.match(color, /^#[0-9a-f]{6}$/);
    const { hue, saturation, lightness } = hsl(color);
    assert.ok(Math.abs(hue - metricHue(id)) < 1.5 || Math.abs(hue - metricHue(id)) > 358.5, `${id}: ${hue}`);
    assert.ok(Math.abs(saturation - 0.7) < 0.01, `${id}: ${saturation}`);
    assert.ok(Math.abs(lightness - 0.52) < 0.01, `${id}: ${lightness}`);
  }
});

test("ids that differ in one character spread over the colour wheel", () => {
  const sectors = new Set(ids.map((id) => Math.floor(metricHue(id) / 30)));
  assert.equal(sectors.size, 12);
  const hues = new Set(ids.map(metricHue));
  assert.ok(hues.size > 250, `${hues.size} hues for ${ids.length} ids`);
});
