// The modules' shape: each loads without a DOM (so chart.js can be imported by another page, such as a
// notebook's widget), and the pure ones import only pure ones (drawing and DOM kept apart from them).
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

const FOLDER = new URL("../../../metricstream/dashboard/", import.meta.url);
const PURE = ["colors.js", "format.js", "history.js", "series.js"];
const MODULES = readdirSync(FOLDER).filter((name) => name.endsWith(".js"));

function importsOf(name) {
  const source = readFileSync(new URL(name, FOLDER), "utf8");
  const specifiers = source.matchAll(/^(?:import|export)\b[^;"'`()=]*?["']\.\/([^"']+)["']/gm);
  return [...specifiers].map((match) => match[1]);
}

test("every module but main.js (which starts the board) loads with no DOM", async () => {
  assert.equal(typeof document, "undefined");
  for (const name of MODULES.filter((each) => each !== "main.js")) {
    await import(new URL(name, FOLDER).href);
  }
});

test("chart.js gives a page what it needs to draw a metric's chart", async () => {
  const chart = await import(new URL("chart.js", FOLDER).href);
  const colors = await import(new URL("colors.js", FOLDER).href);
  assert.equal(typeof chart.drawChart, "function");
  assert.equal(chart.metricColor, colors.metricColor);
  assert.deepEqual(importsOf("chart.js").filter((name) => !PURE.includes(name)), []);
});

test("pure modules import only pure modules; nothing imports main.js", () => {
  for (const name of PURE) {
    assert.deepEqual(importsOf(name).filter((imported) => !PURE.includes(imported)), [], name);
  }
  for (const name of MODULES) assert.ok(!importsOf(name).includes("main.js"), name);
  assert.ok(importsOf("main.js").length > 0); // the pattern finds imports at all
});
