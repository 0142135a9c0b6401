// A metric's colour, derived from its id alone: the same on every page that draws the metric (the board,
// its single-metric view, a notebook's chart), whatever else is on that page or in what order it came.
// The hue comes from a hash of the id; lightness and chroma are fixed in OKLCH, where equal lightness looks
// equally light, so every hue reads as well on the light surface as on the dark one (in HSL, blue at the
// lightness of yellow is much darker). Pure, so node tests pin it.

const LIGHTNESS = 0.66; // OKLab L
const CHROMA = 0.13; // in the sRGB gamut for most hues; the others are clipped, by under 4%

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

/** The metric's colour, oklch(0.66 0.13 <hue>) as "#rrggbb": a form that takes a hex alpha suffix.
 * @param {string} id
 * @returns {string}
 */
export function metricColor(id) {
  return oklchToHex(LIGHTNESS, CHROMA, metricHue(id));
}

/** OKLCH to sRGB (Björn Ottosson's Oklab, as CSS Color 4 converts it), clipped to the gamut.
 * @param {number} lightness @param {number} chroma @param {number} hue degrees
 */
function oklchToHex(lightness, chroma, hue) {
  const a = chroma * Math.cos((hue * Math.PI) / 180);
  const b = chroma * Math.sin((hue * Math.PI) / 180);
  const l = (lightness + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (lightness - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (lightness - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const linear = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  const channels = linear.map((value) => {
    const clipped = Math.min(1, Math.max(0, value));
    const encoded = clipped <= 0.0031308 ? 12.92 * clipped : 1.055 * clipped ** (1 / 2.4) - 0.055;
    return Math.round(encoded * 255)
      .toString(16)
      .padStart(2, "0");
  });
  return `#${channels.join("")}`;
}
