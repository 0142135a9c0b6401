// The animation-frame budget. Events are applied once per animation frame, and a card that changed is
// shown again at most every CARD_INTERVAL ms, its chart only while on screen. Without a GPU a chart's
// raster costs about a millisecond, so 20 charts redrawn in one frame make it late: each frame redraws
// those that waited longest, up to a budget that follows what frames cost (measured from the animation
// frame to the end of its rendering), so a slow machine keeps its frame rate and redraws each chart less
// often. The choices (drawDue, nextBudget) are pure; FrameLoop runs them in the browser's frames.

export const CARD_INTERVAL = 30; // ms: a card is shown again at most ~30 times a second
export const FRAME_BUDGET = 10; // ms of a frame's work (of 16.7 at 60 Hz) that chart draws may bring it to
const FIRST_BUDGET = 6; // charts per frame before any frame was measured

/** What drawDue needs of a card (card.js).
 * @typedef {object} Drawable
 * @property {boolean} dirty its data or size changed since it was shown
 * @property {boolean} stale its chart does not show its data yet
 * @property {boolean} visible on screen
 * @property {number} shownAt when it was last shown (performance.now())
 * @property {(now: number, draw: boolean) => boolean} render shows its texts, and its chart when `draw`;
 *   whether it drew
 */

/** Shows the cards that are due, those that waited longest first: the texts of those off screen, the
 * charts of up to `budget` on screen. `behind`: some are left for a later frame.
 * @param {Iterable<Drawable>} cards
 * @param {number} now performance.now()
 * @param {number} budget charts to draw at most
 * @returns {{drawn: number, behind: boolean}}
 */
export function drawDue(cards, now, budget) {
  const due = [];
  for (const card of cards) {
    if (card.dirty || (card.stale && card.visible)) due.push(card);
  }
  due.sort((a, b) => a.shownAt - b.shownAt);
  let drawn = 0;
  let behind = false;
  for (const card of due) {
    if (now - card.shownAt < CARD_INTERVAL) behind = true; // shown moments ago: its turn comes soon
    else if (!card.visible) card.render(now, false);
    else if (drawn < budget) drawn += card.render(now, true) ? 1 : 0;
    else behind = true;
  }
  return { drawn, behind };
}

/** The budget after a frame that cost `cost` ms: over FRAME_BUDGET, a quarter fewer charts (at least one);
 * under it, one more if the frame drew as many as it could (`full`).
 * @param {number} budget @param {number} cost @param {boolean} full
 */
export function nextBudget(budget, cost, full) {
  if (cost > FRAME_BUDGET) return Math.max(1, Math.floor((budget * 3) / 4));
  return full ? budget + 1 : budget;
}

/** Runs `work(budget)` (returning how many charts it drew) in the next animation frame, once however often
 * it is asked for, and learns the budget from what each frame cost.
 */
export class FrameLoop {
  /** @param {(budget: number) => number} work */
  constructor(work) {
    this.work = work;
    this.budget = FIRST_BUDGET;
    this.requested = false;
    this.fallback = 0;
    this.frameStart = 0;
    // A message posted from an animation frame is received once the frame's rendering (style, layout,
    // paint, the canvases' raster) is done: the time until then is what the frame cost.
    this.frameEnd = new MessageChannel();
    this.frameEnd.port1.onmessage = ({ data: full }) => {
      this.budget = nextBudget(this.budget, performance.now() - this.frameStart, full);
    };
  }

  request() {
    if (!this.requested) {
      this.requested = true;
      requestAnimationFrame(() => {
        this.requested = false;
        this.frameStart = performance.now();
        const drawn = this.run();
        if (drawn > 0) this.frameEnd.port2.postMessage(drawn >= this.budget);
      });
    }
    // a background tab runs no animation frames: the work is done anyway, and drawn when it is shown again
    if (!this.fallback) this.fallback = setTimeout(() => this.run(), 1000);
  }

  run() {
    clearTimeout(this.fallback);
    this.fallback = 0;
    return this.work(this.budget);
  }
}
