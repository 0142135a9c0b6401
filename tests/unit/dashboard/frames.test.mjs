// frames.js: which cards a frame shows, and the budget of charts per frame.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CARD_INTERVAL, FRAME_BUDGET, drawDue, nextBudget } from "../../../metricstream/dashboard/frames.js";

const NOW = 10_000;

/** A card as drawDue sees it, recording how it was shown. */
function card(name, { dirty = true, stale = false, visible = true, shownAt = 0, draws = true } = {}) {
  return {
    name,
    dirty,
    stale,
    visible,
    shownAt,
    shown: [],
    render(now, draw) {
      this.shown.push(draw ? "chart" : "text");
      this.shownAt = now;
      this.dirty = false;
      return draw && draws;
    },
  };
}

test("the charts of those that waited longest, up to the budget; the rest are behind", () => {
  const cards = [card("c", { shownAt: 300 }), card("a", { shownAt: 100 }), card("b", { shownAt: 200 })];
  assert.deepEqual(drawDue(cards, NOW, 2), { drawn: 2, behind: true });
  assert.deepEqual(
    cards.map((each) => [each.name, each.shown]),
    [
      ["c", []],
      ["a", ["chart"]],
      ["b", ["chart"]],
    ],
  );
});

test("off screen: the texts only, whatever the budget, and the chart stays stale", () => {
  const hidden = card("hidden", { visible: false });
  assert.deepEqual(drawDue([hidden], NOW, 0), { drawn: 0, behind: false });
  assert.deepEqual(hidden.shown, ["text"]);
});

test("a card shown moments ago waits for its turn", () => {
  const recent = card("recent", { shownAt: NOW - CARD_INTERVAL + 1 });
  assert.deepEqual(drawDue([recent], NOW, 5), { drawn: 0, behind: true });
  assert.deepEqual(recent.shown, []);
  assert.deepEqual(drawDue([recent], NOW + 1, 5), { drawn: 1, behind: false });
});

test("unchanged cards are left alone; a stale one is drawn once on screen", () => {
  const clean = card("clean", { dirty: false });
  const stale = card("stale", { dirty: false, stale: true });
  const staleHidden = card("stale, hidden", { dirty: false, stale: true, visible: false });
  assert.deepEqual(drawDue([clean, stale, staleHidden], NOW, 5), { drawn: 1, behind: false });
  assert.deepEqual([clean.shown, stale.shown, staleHidden.shown], [[], ["chart"], []]);
});

test("a card that could not draw (no size yet) does not count against the budget", () => {
  const cards = [card("a", { draws: false }), card("b", { shownAt: 1 })];
  assert.deepEqual(drawDue(cards, NOW, 1), { drawn: 1, behind: false });
});

test("the budget: a quarter less after a late frame, one more after a full one in time", () => {
  assert.equal(nextBudget(8, FRAME_BUDGET + 1, true), 6);
  assert.equal(nextBudget(1, 100, false), 1);
  assert.equal(nextBudget(6, FRAME_BUDGET, true), 7);
  assert.equal(nextBudget(6, 2, false), 6);
});
