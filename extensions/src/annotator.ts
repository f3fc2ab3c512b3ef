// The annotator widget's front-end (anywidget). Python holds the state; this view draws the
// displayed plane, turns pointer and key input into small messages, and applies the mask diffs
// the kernel sends back. Per-view state (zoom, pan, the stroke being drawn) lives in `render`.
//
// Planes are cached by display key ("<item>:<axis>:<index>|<window>"). The kernel sends ahead
// the next item's first plane and a volume's neighbouring slices, so accepting an item or
// scrolling draws from the cache at once; the kernel's traits then confirm the view.

import type { AnyModel, RenderProps } from "@anywidget/types";
import { heatRGBA, imageRGBA, labelColor, maskRGBA, paintMaskPixel } from "./pixels";
import { STYLE } from "./style";
import { type AnnotatorModel, bytes, type Status } from "./types";

type Model = AnyModel<AnnotatorModel>;
type Pt = [number, number];

const AXES = ["axial", "coronal", "sagittal"];
const CHUNK_MS = 20; // a stroke's unsent points go at most this often (one chunk per ~frame)
const IN_FLIGHT = 4; // ... while fewer chunks than this await their diff
const STALL_MS = 250; // ... or when the last chunk's diff is this late
const CACHE_LIMIT = 64; // planes kept; the kernel assumes at most 48 (SENT_LIMIT)
const PENDING_MS = 1500; // how long a locally shown view waits for the kernel to confirm it

interface Entry {
  img: Uint8Array;
  shape: [number, number, number];
  mask: Uint8Array | null;
}

function itemOf(key: string): string {
  return key.split(":")[0];
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, string> = {}, text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function keyName(e: KeyboardEvent): string {
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const shift = e.shiftKey && (ctrl || e.key.length > 1) ? "shift+" : "";
  return `${ctrl ? "ctrl+" : ""}${shift}${key}`;
}

function render({ model, el: host }: RenderProps<AnnotatorModel>) {
  const m = model as Model;
  // JupyterLab's shortcuts and its context menu (right-drag is window / level) stay off the widget
  const root = el("div", {
    class: "wb-annotator", tabindex: "0", "data-lm-suppress-shortcuts": "true",
    "data-jp-suppress-context-menu": "true",
  });
  const style = el("style");
  style.textContent = STYLE;
  const statusBar = el("div", { class: "wb-status" });
  const messageBar = el("div", { class: "wb-message" });
  const classBar = el("div", { class: "wb-classes" });
  const toolBar = el("div", { class: "wb-tools" });
  const stage = el("div", { class: "wb-stage" });
  const canvas = el("canvas", { class: "wb-canvas" });
  const help = el("div", { class: "wb-help", hidden: "" });
  const flagBox = el("div", { class: "wb-flag", hidden: "" });
  const flagInput = el("input", { type: "text", placeholder: "why flag this item? (Enter to send)" });
  flagBox.append(flagInput);
  stage.append(canvas, help);
  root.append(style, statusBar, classBar, toolBar, stage, flagBox, messageBar);
  host.append(root);

  // per-view state ------------------------------------------------------------------------
  const ctx = canvas.getContext("2d")!;
  const layers = {
    image: document.createElement("canvas"),
    mask: document.createElement("canvas"),
    heat: document.createElement("canvas"),
  };
  const cache = new Map<string, Entry>();
  let shown = ""; // display key on the canvas
  let shownEntry: Entry | null = null;
  let gen = 0;
  let ahead: { key: string; after: number } | null = null;
  let pending: { view: string; from: string; at: number } | null = null;
  let needed = "";
  let maskData: Uint8Array = new Uint8Array(0);
  let maskPixels: ImageData | null = null;
  let maskShape: Pt = [0, 0];
  let zoom = 1;
  let pan: Pt = [0, 0];
  let stroke: { id: string; points: Pt[]; times: number[]; sent: number; value: number } | null = null;
  let pendingAcks = 0;
  let lastChunkAt = 0;
  let polygon: Pt[] = [];
  let cursor: Pt | null = null;
  let drag: { kind: "pan" | "window"; x: number; y: number; a: number; b: number } | null = null;
  let frame = 0;
  let statusAt = performance.now();
  let actionAt = 0;
  const timers: number[] = [];

  // geometry ------------------------------------------------------------------------------
  function layout() {
    const [h, w] = shownEntry ? shownEntry.shape : [0, 0];
    const size = m.get("display_size");
    const aspect = m.get("pixel_aspect") || 1;
    const base = Math.min(size / Math.max(w, 1), size / Math.max(h * aspect, 1));
    const scale = base * zoom;
    const ox = (size - w * scale) / 2 + pan[0];
    const oy = (size - h * scale * aspect) / 2 + pan[1];
    return { h, w, size, aspect, scale, ox, oy };
  }

  function toPixel(e: MouseEvent): Pt {
    const rect = canvas.getBoundingClientRect();
    const g = layout();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    return [Math.floor((y - g.oy) / (g.scale * g.aspect)), Math.floor((x - g.ox) / g.scale)];
  }

  // drawing -------------------------------------------------------------------------------
  function redraw() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    const g = layout();
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== g.size * dpr) {
      canvas.width = g.size * dpr;
      canvas.height = g.size * dpr;
      canvas.style.width = `${g.size}px`;
      canvas.style.height = `${g.size}px`;
    }
    Object.assign(canvas.dataset, {
      scale: String(g.scale), ox: String(g.ox), oy: String(g.oy), aspect: String(g.aspect),
      viewKey: shown.split("|")[0],
    });
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, g.size, g.size);
    if (!g.w || !g.h) return;
    ctx.imageSmoothingEnabled = false;
    const dw = g.w * g.scale;
    const dh = g.h * g.scale * g.aspect;
    ctx.drawImage(layers.image, g.ox, g.oy, dw, dh);
    if (m.get("show_uncertainty") && m.get("uncertainty")) {
      ctx.globalAlpha = 0.6;
      ctx.drawImage(layers.heat, g.ox, g.oy, dw, dh);
    }
    if (maskPixels && maskShape[0] === g.h && maskShape[1] === g.w) {
      ctx.globalAlpha = m.get("outline") ? Math.max(m.get("opacity"), 0.8) : m.get("opacity");
      ctx.drawImage(layers.mask, g.ox, g.oy, dw, dh);
    }
    ctx.globalAlpha = 1;
    const toXY = ([r, c]: Pt): Pt => [g.ox + (c + 0.5) * g.scale, g.oy + (r + 0.5) * g.scale * g.aspect];
    if (stroke && stroke.points.length) {
      const [cr, cg, cb] = stroke.value ? labelColor(stroke.value) : [255, 255, 255];
      ctx.strokeStyle = `rgba(${cr},${cg},${cb},0.5)`;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = Math.max((2 * m.get("brush_radius") + 1) * g.scale, 1);
      ctx.beginPath();
      stroke.points.forEach((p, i) => (i ? ctx.lineTo(...toXY(p)) : ctx.moveTo(...toXY(p))));
      if (stroke.points.length === 1) ctx.lineTo(...toXY(stroke.points[0]));
      ctx.stroke();
    }
    if (polygon.length) {
      ctx.strokeStyle = "#ff0";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      polygon.forEach((p, i) => (i ? ctx.lineTo(...toXY(p)) : ctx.moveTo(...toXY(p))));
      if (cursor) ctx.lineTo(...toXY(cursor));
      ctx.stroke();
    }
    const tool = m.get("tool");
    if (cursor && (tool === "brush" || tool === "eraser") && m.get("task") === "segmentation") {
      const [x, y] = toXY(cursor);
      ctx.strokeStyle = tool === "eraser" ? "#fff" : "#ff0";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.ellipse(x, y, (m.get("brush_radius") + 0.5) * g.scale,
        (m.get("brush_radius") + 0.5) * g.scale * g.aspect, 0, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  // the plane cache ----------------------------------------------------------------------
  function put(key: string, entry: Entry) {
    cache.delete(key);
    cache.set(key, entry);
    for (const k of cache.keys()) {
      if (cache.size <= CACHE_LIMIT) break;
      if (k !== shown) cache.delete(k);
    }
  }

  function wanted(): string {
    return `${m.get("view_key")}|${m.get("window_key")}`;
  }

  function loadHeat() {
    const [h, w] = shownEntry ? shownEntry.shape : [0, 0];
    const unc = bytes(m.get("uncertainty"));
    layers.heat.width = w;
    layers.heat.height = h;
    if (w && h && unc.length === w * h) layers.heat.getContext("2d")!.putImageData(heatRGBA(unc, w, h), 0, 0);
    redraw();
  }

  /** Draw the cached plane `key`; false when it is not cached. */
  function showKey(key: string): boolean {
    const entry = cache.get(key);
    if (!entry) return false;
    put(key, entry);
    shown = key;
    shownEntry = entry;
    const [h, w, c] = entry.shape;
    layers.image.width = w;
    layers.image.height = h;
    if (w && h && entry.img.length >= w * h * c) {
      layers.image.getContext("2d")!.putImageData(imageRGBA(entry.img, w, h, c), 0, 0);
    }
    maskData = entry.mask ?? new Uint8Array(0);
    maskShape = entry.mask ? [h, w] : [0, 0];
    repaintMask();
    if (actionAt) {
      // timings for the benchmark: action -> new plane decoded (drawn on the next frame)
      root.dataset.lastLoadMs = String(performance.now() - actionAt);
      root.dataset.loads = String(Number(root.dataset.loads ?? "0") + 1);
      actionAt = 0;
    }
    loadHeat();
    return true;
  }

  /** Show what the kernel says is displayed, unless a view shown here awaits confirmation. */
  function sync() {
    const view = m.get("view_key");
    if (pending) {
      const moved = itemOf(view) !== itemOf(pending.view) && view !== pending.from;
      if (view === pending.view) {
        root.dataset.lastConfirmMs = String(performance.now() - pending.at);
        pending = null;
      } else if (moved || performance.now() - pending.at > PENDING_MS) {
        pending = null;
      } else {
        return;
      }
    }
    if (!view || view === "done") {
      shown = "";
      shownEntry = null;
      maskPixels = null;
      redraw();
      return;
    }
    const want = wanted();
    if (want === shown) return;
    if (showKey(want)) return;
    if (m.get("image_key") === want) {
      const shape = m.get("image_shape") as [number, number, number];
      put(want, { img: bytes(m.get("image")).slice(), shape: [shape[0], shape[1], shape[2] ?? 1], mask: null });
      showKey(want);
    } else if (needed !== want) {
      needed = want;
      send({ type: "need" });
    }
  }

  /** Show `key` now, before the kernel confirms the view `key` belongs to. */
  function showAhead(key: string): boolean {
    if (!cache.has(key)) return false;
    pending = { view: key.split("|")[0], from: m.get("view_key"), at: actionAt || performance.now() };
    showKey(key);
    timers.push(window.setTimeout(sync, PENDING_MS + 50));
    return true;
  }

  function repaintMask() {
    const [h, w] = maskShape;
    layers.mask.width = w;
    layers.mask.height = h;
    if (!w || !h) {
      maskPixels = null;
      return;
    }
    if (maskData.length !== w * h) {
      maskPixels = null;
      return;
    }
    maskPixels = maskRGBA(maskData, w, h, m.get("outline"));
    layers.mask.getContext("2d")!.putImageData(maskPixels, 0, 0);
    let sum = 0;
    for (let i = 0; i < maskData.length; i++) if (maskData[i]) sum++;
    root.dataset.maskSum = String(sum);
    redraw();
  }

  function applyDiff(idx: Uint32Array, values: Uint8Array) {
    let count = Number(root.dataset.maskSum ?? "0");
    for (let k = 0; k < idx.length; k++) {
      count += (values[k] ? 1 : 0) - (maskData[idx[k]] ? 1 : 0);
      maskData[idx[k]] = values[k];
    }
    root.dataset.maskSum = String(count);
    if (!maskPixels) return repaintMask();
    const [h, w] = maskShape;
    const outline = m.get("outline");
    const touched = outline ? new Set<number>() : null;
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k];
      if (!touched) paintMaskPixel(maskPixels, maskData, i, false);
      else for (const j of [i, i - 1, i + 1, i - w, i + w]) if (j >= 0 && j < w * h) touched.add(j);
    }
    if (touched) for (const j of touched) paintMaskPixel(maskPixels, maskData, j, true);
    // repaint only the rectangle the diff touched (plus the outline's neighbours)
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let k = 0; k < idx.length; k++) {
      const r = Math.floor(idx[k] / w);
      const c = idx[k] - r * w;
      if (r < r0) r0 = r;
      if (r > r1) r1 = r;
      if (c < c0) c0 = c;
      if (c > c1) c1 = c;
    }
    r0 = Math.max(r0 - 1, 0);
    c0 = Math.max(c0 - 1, 0);
    r1 = Math.min(r1 + 1, h - 1);
    c1 = Math.min(c1 + 1, w - 1);
    if (r1 >= r0 && c1 >= c0) {
      layers.mask.getContext("2d")!.putImageData(maskPixels, 0, 0, c0, r0, c1 - c0 + 1, r1 - r0 + 1);
    }
    redraw();
  }

  // kernel messages -----------------------------------------------------------------------
  function entryOf(shape: number[], img: Uint8Array, mask: Uint8Array | null): Entry {
    return { img, shape: [shape[0], shape[1], shape[2] ?? 1], mask };
  }

  function onMessage(msg: any, buffers: DataView[]) {
    if (msg.type === "mask") {
      const entry = cache.get(msg.key);
      if (entry) {
        entry.mask = bytes(buffers[0]).slice();
        if (msg.key === shown) {
          maskData = entry.mask;
          maskShape = [msg.shape[0], msg.shape[1]];
          repaintMask();
        }
      }
    } else if (msg.type === "plane" || msg.type === "ahead") {
      const img = bytes(buffers[0]).slice();
      put(msg.key, entryOf(msg.shape, img, msg.has_mask ? bytes(buffers[1]).slice() : null));
      if (msg.type === "ahead") ahead = { key: msg.key, after: msg.after };
      else sync();
    } else if (msg.type === "slab") {
      if (msg.gen < gen) return;
      const [h, w] = msg.shape;
      const images = bytes(buffers[0]).slice();
      const masks = msg.has_mask ? bytes(buffers[1]).slice() : null;
      for (let k = 0; k < msg.count; k++) {
        const key = `${msg.prefix}${msg.start + k}|${msg.window_key}`;
        if (key === shown) continue; // its mask here may be newer (strokes)
        put(key, entryOf(msg.shape, images.subarray(k * h * w, (k + 1) * h * w),
          masks ? masks.subarray(k * h * w, (k + 1) * h * w) : null));
      }
      sync();
    } else if (msg.type === "diff") {
      if (msg.gen > gen) {
        // an undo / redo / reject may have changed other planes of this item: drop them
        gen = msg.gen;
        const item = `${itemOf(msg.view_key)}:`;
        for (const k of [...cache.keys()]) if (k.startsWith(item) && k !== shown) cache.delete(k);
      }
      if (msg.n > 0) {
        const idx = new Uint32Array(bytes(buffers[0]).slice().buffer);
        const values = bytes(buffers[1]);
        for (const [key, entry] of cache) {
          if (!key.startsWith(`${msg.view_key}|`) || !entry.mask) continue;
          if (key === shown) applyDiff(idx, values);
          else for (let k = 0; k < idx.length; k++) entry.mask[idx[k]] = values[k];
        }
      }
      if (typeof msg.seq === "number") {
        const rtts = (root.dataset.strokeRttsMs ?? "").split(",").filter(Boolean).slice(-199);
        root.dataset.strokeRttsMs = [...rtts, (performance.now() - msg.seq).toFixed(2)].join(",");
        const t = msg.timing;
        if (t && typeof t.sent === "number") {
          // wall-clock split of the round trip: page -> kernel, in the kernel, kernel -> page
          const split = [t.received - t.sent, t.replied - t.received, Date.now() - t.replied,
            t.replied - (t.drawn ?? t.sent)];
          const old = (root.dataset.strokeSplitMs ?? "").split(";").filter(Boolean).slice(-199);
          root.dataset.strokeSplitMs = [...old, split.map((v) => v.toFixed(1)).join(",")].join(";");
        }
        pendingAcks = Math.max(pendingAcks - 1, 0);
        if (!pendingAcks && stroke === null) redraw();
        if (stroke && pendingAcks < IN_FLIGHT && performance.now() - lastChunkAt >= CHUNK_MS) {
          flushStroke();
        }
      }
      root.dataset.diffs = String(Number(root.dataset.diffs ?? "0") + 1);
    }
  }

  // actions -------------------------------------------------------------------------------
  function send(content: Record<string, unknown>) {
    m.send(content);
  }

  function act(name: string, extra: Record<string, unknown> = {}) {
    actionAt = performance.now();
    send({ type: "action", name, ...extra });
    // accepting, labelling or skipping shows the next item, which the kernel sent ahead
    const advances = name === "choose" || name === "skip" || (name === "accept" &&
      (m.get("task") === "segmentation" || typeof m.get("proposal").class === "number"));
    if (advances && ahead && String(ahead.after) === itemOf(shown) && !pending) showAhead(ahead.key);
  }

  function set<K extends keyof AnnotatorModel>(key: K, value: AnnotatorModel[K]) {
    m.set(key, value);
    m.save_changes();
  }

  function flushStroke() {
    if (!stroke || stroke.sent >= stroke.points.length) return;
    const start = Math.max(stroke.sent - 1, 0);
    const points = stroke.points.slice(start);
    // wall-clock time of the oldest point not sent before (for the benchmark)
    const drawn = stroke.times[stroke.sent] ?? Date.now();
    stroke.sent = stroke.points.length;
    pendingAcks += 1;
    lastChunkAt = performance.now();
    send({
      type: "stroke", stroke_id: stroke.id, points, radius: m.get("brush_radius"),
      value: stroke.value, seq: performance.now(), sent: Date.now(), drawn,
    });
  }

  function endStroke() {
    if (!stroke) return;
    flushStroke();
    stroke = null;
    redraw();
  }

  function closePolygon() {
    if (polygon.length >= 3) send({ type: "polygon", points: polygon, value: m.get("brush_value") });
    polygon = [];
    redraw();
  }

  function changeSlice(delta: number) {
    const n = m.get("n_slices");
    if (n <= 1) return;
    const next = Math.min(Math.max(m.get("slice_index") + delta, 0), n - 1);
    if (next !== m.get("slice_index")) {
      actionAt = performance.now();
      const [item, axis] = shown.split("|")[0].split(":");
      showAhead(`${item}:${axis}:${next}|${m.get("window_key")}`);
      set("slice_index", next);
    }
  }

  function zoomBy(factor: number, at?: Pt) {
    const g = layout();
    const [x, y] = at ?? [g.size / 2, g.size / 2];
    const next = Math.min(Math.max(zoom * factor, 0.25), 40);
    const f = next / zoom;
    // keep the point under the cursor fixed: layout() centres the image, so the offset is
    // size / 2 - extent * zoom / 2 + pan, and the pan scales about the canvas centre
    const c = g.size / 2;
    pan = [pan[0] * f + (x - c) * (1 - f), pan[1] * f + (y - c) * (1 - f)];
    zoom = next;
    redraw();
  }

  function openFlag() {
    flagBox.hidden = false;
    flagInput.value = "";
    flagInput.focus();
  }

  function keyAction(e: KeyboardEvent): string | null {
    const name = keyName(e);
    if (/^[1-9]$/.test(name)) return "digit";
    for (const s of m.get("shortcuts")) {
      if (s.keys.split(" ").includes(name)) return s.action;
    }
    return null;
  }

  function onKey(e: KeyboardEvent) {
    if (e.target === flagInput) return;
    const action = keyAction(e);
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    const seg = m.get("task") === "segmentation";
    switch (action) {
      case "accept":
        if (polygon.length && e.key === "Enter") closePolygon();
        else act("accept");
        break;
      case "digit": {
        const n = Number(e.key);
        if (!seg) act("choose", { index: n - 1 });
        else if (n < m.get("classes").length) set("brush_value", n);
        break;
      }
      case "skip": case "previous": case "next": case "undo": case "redo": case "reject": case "jump":
        act(action);
        break;
      case "flag":
        openFlag();
        break;
      case "brush": case "eraser": case "fill": case "polygon":
        polygon = [];
        set("tool", action);
        break;
      case "window":
        set("tool", m.get("tool") === "window" ? "brush" : "window");
        break;
      case "size": {
        const r = m.get("brush_radius");
        set("brush_radius", e.key === "[" ? Math.max(r - 1, 0) : Math.min(r + 1, 100));
        redraw();
        break;
      }
      case "slice":
        changeSlice(e.key === "ArrowUp" ? 1 : -1);
        break;
      case "axis": {
        const i = AXES.indexOf(m.get("axis"));
        if (i >= 0) {
          actionAt = performance.now();
          set("axis", AXES[(i + 1) % AXES.length]);
        }
        break;
      }
      case "zoom":
        zoomBy(e.key === "-" ? 1 / 1.25 : 1.25);
        break;
      case "reset":
        zoom = 1;
        pan = [0, 0];
        redraw();
        break;
      case "outline":
        set("outline", !m.get("outline"));
        break;
      case "uncertainty":
        set("show_uncertainty", !m.get("show_uncertainty"));
        break;
      case "help":
        set("show_help", !m.get("show_help"));
        break;
      case "escape":
        polygon = [];
        if (m.get("show_help")) set("show_help", false);
        redraw();
        break;
    }
  }

  function onPointerDown(e: PointerEvent) {
    root.focus({ preventScroll: true });
    const seg = m.get("task") === "segmentation";
    const tool = m.get("tool");
    if (e.button === 1 || (e.button === 0 && e.shiftKey)) {
      drag = { kind: "pan", x: e.clientX, y: e.clientY, a: pan[0], b: pan[1] };
    } else if (e.button === 2 || (e.button === 0 && tool === "window")) {
      drag = { kind: "window", x: e.clientX, y: e.clientY, a: m.get("window_center"), b: m.get("window_width") };
    } else if (e.button === 0 && seg) {
      const p = toPixel(e);
      if (tool === "brush" || tool === "eraser") {
        stroke = {
          id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
          points: [p], times: [Date.now()], sent: 0,
          value: tool === "eraser" ? 0 : m.get("brush_value"),
        };
        flushStroke();
      } else if (tool === "fill") {
        send({ type: "fill", point: p, value: m.get("brush_value") });
      } else if (tool === "polygon") {
        polygon.push(p);
      }
    } else {
      return;
    }
    canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
    redraw();
  }

  function onPointerMove(e: PointerEvent) {
    cursor = toPixel(e);
    if (drag?.kind === "pan") {
      pan = [drag.a + e.clientX - drag.x, drag.b + e.clientY - drag.y];
    } else if (drag?.kind === "window") {
      const width = Math.max(drag.b * Math.exp((e.clientX - drag.x) / 200), 1e-3);
      const center = drag.a - ((e.clientY - drag.y) * drag.b) / 400;
      m.set("window_width", width);
      m.set("window_center", center);
      m.save_changes();
    } else if (stroke) {
      const last = stroke.points[stroke.points.length - 1];
      if (last[0] !== cursor[0] || last[1] !== cursor[1]) {
        stroke.points.push(cursor);
        stroke.times.push(Date.now());
        if (pendingAcks < IN_FLIGHT && performance.now() - lastChunkAt >= CHUNK_MS) flushStroke();
      }
    }
    redraw();
  }

  function onPointerUp(e: PointerEvent) {
    if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
    drag = null;
    endStroke();
  }

  function onWheel(e: WheelEvent) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey || m.get("n_slices") <= 1) {
      const rect = canvas.getBoundingClientRect();
      zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, [e.clientX - rect.left, e.clientY - rect.top]);
    } else {
      changeSlice(e.deltaY < 0 ? 1 : -1);
    }
  }

  // DOM panels ----------------------------------------------------------------------------
  function button(label: string, title: string, onClick: () => void, cls = ""): HTMLButtonElement {
    const b = el("button", { type: "button", title, class: cls }, label);
    b.addEventListener("click", (ev) => {
      ev.preventDefault();
      onClick();
      root.focus({ preventScroll: true });
    });
    return b;
  }

  function renderStatus() {
    const s: Status = m.get("status");
    const prop = m.get("proposal");
    const seconds = (s.seconds_on_item ?? 0) + (performance.now() - statusAt) / 1000;
    const parts = s.done || s.item_id === null
      ? ["All items are labelled (or reserved)."]
      : [
        `item ${s.item_key}`,
        `#${s.position} of ${s.served}`,
        `labelled ${s.labelled}/${s.budget}`,
        prop.model_version_id ? `proposal: model v${prop.model_version_id}` : "no proposal",
        `${Math.round(seconds)} s`,
        s.revising ? "revising" : "",
        m.get("n_slices") > 1 ? `${m.get("axis")} ${m.get("slice_index") + 1}/${m.get("n_slices")}` : "",
      ];
    statusBar.textContent = parts.filter(Boolean).join(" · ");
    statusBar.dataset.itemId = String(s.item_id ?? "");
    statusBar.dataset.labelled = String(s.labelled);
    const err = m.get("error");
    messageBar.textContent = err || s.message || "";
    messageBar.classList.toggle("wb-error", Boolean(err));
  }

  function renderClasses() {
    classBar.replaceChildren();
    const seg = m.get("task") === "segmentation";
    const prop = m.get("proposal");
    m.get("classes").forEach((name, i) => {
      if (seg && i === 0) return;
      const p = prop.probs?.[i];
      const label = `${i + (seg ? 0 : 1)}: ${name}${p === undefined ? "" : ` ${(100 * p).toFixed(0)}%`}`;
      const active = seg ? m.get("brush_value") === i : prop.class === i;
      const b = button(label, seg ? `paint ${name}` : `label as ${name}`, () =>
        seg ? set("brush_value", i) : act("choose", { index: i }), active ? "wb-active" : "");
      if (seg) b.style.borderColor = `rgb(${labelColor(i).join(",")})`;
      classBar.append(b);
    });
  }

  function renderTools() {
    toolBar.replaceChildren();
    const seg = m.get("task") === "segmentation";
    toolBar.append(
      button("Accept ⏎", "accept (Enter / a)", () => act("accept"), "wb-primary"),
      button("Skip", "skip (s)", () => act("skip")),
      button("Flag", "flag (f)", openFlag),
      button("◀ Back", "previous item (Backspace)", () => act("previous")),
    );
    if (seg) {
      for (const t of ["brush", "eraser", "fill", "polygon", "window"]) {
        toolBar.append(button(t, `${t} tool`, () => set("tool", t), m.get("tool") === t ? "wb-active" : ""));
      }
      toolBar.append(
        button("↶", "undo (ctrl+z)", () => act("undo")),
        button("↷", "redo (ctrl+y)", () => act("redo")),
        button("reject", "reject the proposal (x)", () => act("reject")),
      );
      const opacity = el("input", { type: "range", min: "0", max: "1", step: "0.05", title: "mask opacity" });
      opacity.value = String(m.get("opacity"));
      opacity.addEventListener("input", () => set("opacity", Number(opacity.value)));
      const outline = button(m.get("outline") ? "outline" : "filled", "outline / fill (o)",
        () => set("outline", !m.get("outline")));
      toolBar.append(opacity, outline);
    }
    const presets = el("select", { title: "window preset" });
    presets.append(el("option", { value: "" }, "window…"));
    for (const p of m.get("presets")) presets.append(el("option", { value: p }, p));
    presets.addEventListener("change", () => {
      if (presets.value) act("preset", { preset: presets.value });
    });
    toolBar.append(presets);
    if (m.get("n_slices") > 1) {
      const axis = el("select", { title: "plane (v)" });
      for (const a of AXES) axis.append(el("option", { value: a }, a));
      axis.value = m.get("axis");
      axis.addEventListener("change", () => set("axis", axis.value));
      toolBar.append(axis, button("jump", "slice with most uncertainty (j)", () => act("jump")));
    }
    toolBar.append(button("?", "keyboard shortcuts (h)", () => set("show_help", !m.get("show_help"))));
  }

  function renderHelp() {
    help.hidden = !m.get("show_help");
    if (help.hidden) return;
    const rows = m.get("shortcuts").map((s) => {
      const tr = el("tr");
      tr.append(el("td", { class: "wb-keys" }, s.keys.split(" ").join(" / ")), el("td", {}, s.description));
      return tr;
    });
    const table = el("table");
    table.append(...rows);
    help.replaceChildren(el("h3", {}, "Keyboard shortcuts"), table);
  }

  // wiring --------------------------------------------------------------------------------
  const listeners: [EventTarget, string, EventListener, AddEventListenerOptions?][] = [
    [root, "keydown", onKey as EventListener],
    [canvas, "pointerdown", onPointerDown as EventListener],
    [canvas, "pointermove", onPointerMove as EventListener],
    [canvas, "pointerup", onPointerUp as EventListener],
    [canvas, "pointercancel", onPointerUp as EventListener],
    [canvas, "pointerleave", (() => { cursor = null; redraw(); }) as EventListener],
    [canvas, "wheel", onWheel as EventListener, { passive: false }],
    [canvas, "contextmenu", ((e: Event) => e.preventDefault()) as EventListener],
    [canvas, "dblclick", (() => closePolygon()) as EventListener],
  ];
  for (const [target, type, fn, opts] of listeners) target.addEventListener(type, fn, opts);
  flagInput.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter") {
      act("flag", { comment: flagInput.value });
      flagBox.hidden = true;
      root.focus({ preventScroll: true });
    } else if (e.key === "Escape") {
      flagBox.hidden = true;
      root.focus({ preventScroll: true });
    }
  });

  const onStatus = () => {
    statusAt = performance.now();
    renderStatus();
  };
  const onView = () => { polygon = []; sync(); renderTools(); renderStatus(); redraw(); };
  const onError = () => {
    if (m.get("error")) pending = null;
    sync();
    renderStatus();
  };
  const onClasses = () => { renderClasses(); renderTools(); };
  const onOutline = () => { repaintMask(); renderTools(); };
  const handlers: [string, () => void][] = [
    ["change:status", onStatus],
    ["change:error", onError],
    ["change:image_key", sync],
    ["change:window_key", sync],
    ["change:uncertainty", loadHeat],
    ["change:view_key", onView],
    ["change:n_slices", onView],
    ["change:proposal", onClasses],
    ["change:classes", onClasses],
    ["change:brush_value", onClasses],
    ["change:tool", renderTools],
    ["change:outline", onOutline],
    ["change:opacity", redraw],
    ["change:pixel_aspect", redraw],
    ["change:display_size", redraw],
    ["change:show_uncertainty", redraw],
    ["change:show_help", renderHelp],
    ["change:shortcuts", renderHelp],
  ];
  for (const [name, fn] of handlers) m.on(name, fn);
  m.on("msg:custom", onMessage);
  timers.push(window.setInterval(renderStatus, 1000));
  timers.push(window.setInterval(() => {
    if (pendingAcks < IN_FLIGHT || performance.now() - lastChunkAt > STALL_MS) flushStroke();
  }, CHUNK_MS));

  sync();
  renderStatus();
  renderClasses();
  renderTools();
  renderHelp();
  send({ type: "ready" });
  root.focus({ preventScroll: true });

  return () => {
    for (const [target, type, fn] of listeners) target.removeEventListener(type, fn);
    for (const [name, fn] of handlers) m.off(name as any, fn);
    m.off("msg:custom", onMessage);
    for (const t of timers) {
      window.clearInterval(t);
      window.clearTimeout(t);
    }
    if (frame) cancelAnimationFrame(frame);
    root.remove();
  };
}

export default { render };
