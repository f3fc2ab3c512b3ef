// Turning uint8 planes into RGBA pixels for the canvas layers.

export const PALETTE: [number, number, number][] = [
  [0, 0, 0],
  [255, 64, 64],
  [64, 220, 64],
  [64, 128, 255],
  [255, 220, 0],
  [255, 64, 255],
  [0, 230, 230],
  [255, 150, 0],
  [150, 90, 255],
  [180, 255, 90],
];

export function labelColor(value: number): [number, number, number] {
  return PALETTE[value % PALETTE.length] ?? [255, 255, 255];
}

// one RGBA word per value, in the platform's byte order (every browser is little-endian)
const GREY = new Uint32Array(256).map((_, v) => (255 << 24) | (v << 16) | (v << 8) | v);
const LABEL = new Uint32Array(256).map((_, v) => {
  if (v === 0) return 0;
  const [r, g, b] = labelColor(v);
  return (255 << 24) | (b << 16) | (g << 8) | r;
});

/** Grey (C=1) or RGB (C=3) uint8 pixels into RGBA. */
export function imageRGBA(src: Uint8Array, w: number, h: number, c: number): ImageData {
  const out = new ImageData(w, h);
  const d = out.data;
  const n = w * h;
  if (c === 1) {
    const words = new Uint32Array(d.buffer, d.byteOffset, n);
    for (let i = 0; i < n; i++) words[i] = GREY[src[i]];
  } else {
    for (let i = 0; i < n; i++) {
      d[4 * i] = src[c * i];
      d[4 * i + 1] = src[c * i + 1];
      d[4 * i + 2] = src[c * i + 2];
      d[4 * i + 3] = 255;
    }
  }
  return out;
}

function isEdge(mask: Uint8Array, w: number, h: number, i: number): boolean {
  const v = mask[i];
  const r = Math.floor(i / w);
  const c = i - r * w;
  return (
    c === 0 || c === w - 1 || r === 0 || r === h - 1 ||
    mask[i - 1] !== v || mask[i + 1] !== v || mask[i - w] !== v || mask[i + w] !== v
  );
}

/** Colour one mask pixel into `out` (filled, or only where the label changes). */
export function paintMaskPixel(out: ImageData, mask: Uint8Array, i: number, outline: boolean): void {
  const v = mask[i];
  const d = out.data;
  if (v === 0 || (outline && !isEdge(mask, out.width, out.height, i))) {
    d[4 * i + 3] = 0;
    return;
  }
  const [r, g, b] = labelColor(v);
  d[4 * i] = r;
  d[4 * i + 1] = g;
  d[4 * i + 2] = b;
  d[4 * i + 3] = 255;
}

export function maskRGBA(mask: Uint8Array, w: number, h: number, outline: boolean): ImageData {
  const out = new ImageData(w, h);
  if (outline) {
    for (let i = 0; i < w * h; i++) if (mask[i]) paintMaskPixel(out, mask, i, true);
    return out;
  }
  const words = new Uint32Array(out.data.buffer, out.data.byteOffset, w * h);
  for (let i = 0; i < w * h; i++) {
    const v = mask[i];
    if (v) words[i] = LABEL[v];
  }
  return out;
}

/** A heat map (transparent at 0, yellow at 255) of an uncertainty plane. */
export function heatRGBA(src: Uint8Array, w: number, h: number): ImageData {
  const out = new ImageData(w, h);
  const d = out.data;
  for (let i = 0; i < w * h; i++) {
    const v = src[i];
    d[4 * i] = 255;
    d[4 * i + 1] = v;
    d[4 * i + 2] = 0;
    d[4 * i + 3] = v;
  }
  return out;
}
