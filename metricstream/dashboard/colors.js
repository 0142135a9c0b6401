// A metric's colour, derived from its id alone: the same on every page that draws the metric (the board,
// its single-metric view, a notebook's chart), whatever else is on that page or in what order it came.
// Pure, so node tests pin it.

const SATURATION = 0.7;
const LIGHTNESS = 0.52; // readable on the light surface and on the dark one

/** A stable hash of the id (32-bit FNV-1a over its UTF-16 code units) as a hue, 0-359.
 * @param {string} id
 * @returns {number}
 */
export function metricHue(id) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 360;
}

/** The metric's colour as "#rrggbb" (hsl(hue, 70%, 52%)): a form that takes a hex alpha suffix.
 * @param {string} id
 * @returns {string}
 */
export function metricColor(id) {
  const hue = metricHue(id);
  // hsl to rgb, as CSS Color 4 defines it
  const chroma = SATURATION * Math.min(LIGHTNESS, 1 - LIGHTNESS);
  const channel = (n) => {
    const k = (n + hue / 30) % 12;
    const level = LIGHTNESS - chroma * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(level * 255)
      .toString(16)
      .padStart(2, "0");
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}
