// src/pixels.ts
var PALETTE = [
  [0, 0, 0],
  [255, 64, 64],
  [64, 220, 64],
  [64, 128, 255],
  [255, 220, 0],
  [255, 64, 255],
  [0, 230, 230],
  [255, 150, 0],
  [150, 90, 255],
  [180, 255, 90]
];
function labelColor(value) {
  return PALETTE[value % PALETTE.length] ?? [255, 255, 255];
}
var GREY = new Uint32Array(256).map((_, v) => 255 << 24 | v << 16 | v << 8 | v);
var LABEL = new Uint32Array(256).map((_, v) => {
  if (v === 0) return 0;
  const [r, g, b] = labelColor(v);
  return 255 << 24 | b << 16 | g << 8 | r;
});
function imageRGBA(src, w, h, c) {
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
function isEdge(mask, w, h, i) {
  const v = mask[i];
  const r = Math.floor(i / w);
  const c = i - r * w;
  return c === 0 || c === w - 1 || r === 0 || r === h - 1 || mask[i - 1] !== v || mask[i + 1] !== v || mask[i - w] !== v || mask[i + w] !== v;
}
function paintMaskPixel(out, mask, i, outline) {
  const v = mask[i];
  const d = out.data;
  if (v === 0 || outline && !isEdge(mask, out.width, out.height, i)) {
    d[4 * i + 3] = 0;
    return;
  }
  const [r, g, b] = labelColor(v);
  d[4 * i] = r;
  d[4 * i + 1] = g;
  d[4 * i + 2] = b;
  d[4 * i + 3] = 255;
}
function maskRGBA(mask, w, h, outline) {
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
function heatRGBA(src, w, h) {
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

// src/style.ts
var STYLE = `
.wb-annotator { font: 13px system-ui, sans-serif; outline: none; display: inline-block;
  border: 2px solid transparent; border-radius: 4px; padding: 4px; }
.wb-annotator:focus, .wb-annotator:focus-within { border-color: #4a90d9; }
.wb-annotator button { margin: 2px; padding: 2px 8px; border: 1px solid #999; border-radius: 3px;
  background: #f4f4f4; cursor: pointer; }
.wb-annotator button.wb-active { background: #cfe3ff; border-color: #4a90d9; }
.wb-annotator button.wb-primary { background: #2e7d32; color: #fff; border-color: #2e7d32; }
.wb-annotator select, .wb-annotator input[type=range] { margin: 2px; vertical-align: middle; }
.wb-status { font-weight: 600; margin: 2px 0 4px; min-height: 1.2em; }
.wb-message { min-height: 1.2em; color: #555; }
.wb-message.wb-error { color: #b00020; }
.wb-stage { position: relative; display: inline-block; line-height: 0; }
.wb-canvas { display: block; background: #000; cursor: crosshair; touch-action: none; }
.wb-help { position: absolute; inset: 8px; overflow: auto; background: rgba(255,255,255,0.95);
  padding: 8px 12px; line-height: 1.4; border-radius: 4px; }
.wb-help h3 { margin: 0 0 6px; }
.wb-help td { padding: 1px 8px 1px 0; vertical-align: top; }
.wb-help .wb-keys { font-family: monospace; white-space: nowrap; }
.wb-flag input { width: 100%; box-sizing: border-box; margin: 4px 0; }
`;

// src/types.ts
function bytes(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

// src/annotator.ts
var AXES = ["axial", "coronal", "sagittal"];
var CHUNK_MS = 20;
var IN_FLIGHT = 4;
var STALL_MS = 250;
var CACHE_LIMIT = 64;
var PENDING_MS = 1500;
function itemOf(key) {
  return key.split(":")[0];
}
function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}
function keyName(e) {
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const shift = e.shiftKey && (ctrl || e.key.length > 1) ? "shift+" : "";
  return `${ctrl ? "ctrl+" : ""}${shift}${key}`;
}
function render({ model, el: host }) {
  const m = model;
  const root = el("div", {
    class: "wb-annotator",
    tabindex: "0",
    "data-lm-suppress-shortcuts": "true",
    "data-jp-suppress-context-menu": "true"
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
  const ctx = canvas.getContext("2d");
  const layers = {
    image: document.createElement("canvas"),
    mask: document.createElement("canvas"),
    heat: document.createElement("canvas")
  };
  const cache = /* @__PURE__ */ new Map();
  let shown = "";
  let shownEntry = null;
  let gen = 0;
  let ahead = null;
  let pending = null;
  let needed = "";
  let maskData = new Uint8Array(0);
  let maskPixels = null;
  let maskShape = [0, 0];
  let zoom = 1;
  let pan = [0, 0];
  let stroke = null;
  let pendingAcks = 0;
  let lastChunkAt = 0;
  let polygon = [];
  let cursor = null;
  let drag = null;
  let frame = 0;
  let statusAt = performance.now();
  let actionAt = 0;
  const timers = [];
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
  function toPixel(e) {
    const rect = canvas.getBoundingClientRect();
    const g = layout();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    return [Math.floor((y - g.oy) / (g.scale * g.aspect)), Math.floor((x - g.ox) / g.scale)];
  }
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
      scale: String(g.scale),
      ox: String(g.ox),
      oy: String(g.oy),
      aspect: String(g.aspect),
      viewKey: shown.split("|")[0]
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
    const toXY = ([r, c]) => [g.ox + (c + 0.5) * g.scale, g.oy + (r + 0.5) * g.scale * g.aspect];
    if (stroke && stroke.points.length) {
      const [cr, cg, cb] = stroke.value ? labelColor(stroke.value) : [255, 255, 255];
      ctx.strokeStyle = `rgba(${cr},${cg},${cb},0.5)`;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.lineWidth = Math.max((2 * m.get("brush_radius") + 1) * g.scale, 1);
      ctx.beginPath();
      stroke.points.forEach((p, i) => i ? ctx.lineTo(...toXY(p)) : ctx.moveTo(...toXY(p)));
      if (stroke.points.length === 1) ctx.lineTo(...toXY(stroke.points[0]));
      ctx.stroke();
    }
    if (polygon.length) {
      ctx.strokeStyle = "#ff0";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      polygon.forEach((p, i) => i ? ctx.lineTo(...toXY(p)) : ctx.moveTo(...toXY(p)));
      if (cursor) ctx.lineTo(...toXY(cursor));
      ctx.stroke();
    }
    const tool = m.get("tool");
    if (cursor && (tool === "brush" || tool === "eraser") && m.get("task") === "segmentation") {
      const [x, y] = toXY(cursor);
      ctx.strokeStyle = tool === "eraser" ? "#fff" : "#ff0";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.ellipse(
        x,
        y,
        (m.get("brush_radius") + 0.5) * g.scale,
        (m.get("brush_radius") + 0.5) * g.scale * g.aspect,
        0,
        0,
        2 * Math.PI
      );
      ctx.stroke();
    }
  }
  function put(key, entry) {
    cache.delete(key);
    cache.set(key, entry);
    for (const k of cache.keys()) {
      if (cache.size <= CACHE_LIMIT) break;
      if (k !== shown) cache.delete(k);
    }
  }
  function wanted() {
    return `${m.get("view_key")}|${m.get("window_key")}`;
  }
  function loadHeat() {
    const [h, w] = shownEntry ? shownEntry.shape : [0, 0];
    const unc = bytes(m.get("uncertainty"));
    layers.heat.width = w;
    layers.heat.height = h;
    if (w && h && unc.length === w * h) layers.heat.getContext("2d").putImageData(heatRGBA(unc, w, h), 0, 0);
    redraw();
  }
  function showKey(key) {
    const entry = cache.get(key);
    if (!entry) return false;
    put(key, entry);
    shown = key;
    shownEntry = entry;
    const [h, w, c] = entry.shape;
    layers.image.width = w;
    layers.image.height = h;
    if (w && h && entry.img.length >= w * h * c) {
      layers.image.getContext("2d").putImageData(imageRGBA(entry.img, w, h, c), 0, 0);
    }
    maskData = entry.mask ?? new Uint8Array(0);
    maskShape = entry.mask ? [h, w] : [0, 0];
    repaintMask();
    if (actionAt) {
      root.dataset.lastLoadMs = String(performance.now() - actionAt);
      root.dataset.loads = String(Number(root.dataset.loads ?? "0") + 1);
      actionAt = 0;
    }
    loadHeat();
    return true;
  }
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
      const shape = m.get("image_shape");
      put(want, { img: bytes(m.get("image")).slice(), shape: [shape[0], shape[1], shape[2] ?? 1], mask: null });
      showKey(want);
    } else if (needed !== want) {
      needed = want;
      send({ type: "need" });
    }
  }
  function showAhead(key) {
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
    layers.mask.getContext("2d").putImageData(maskPixels, 0, 0);
    let sum = 0;
    for (let i = 0; i < maskData.length; i++) if (maskData[i]) sum++;
    root.dataset.maskSum = String(sum);
    redraw();
  }
  function applyDiff(idx, values) {
    let count = Number(root.dataset.maskSum ?? "0");
    for (let k = 0; k < idx.length; k++) {
      count += (values[k] ? 1 : 0) - (maskData[idx[k]] ? 1 : 0);
      maskData[idx[k]] = values[k];
    }
    root.dataset.maskSum = String(count);
    if (!maskPixels) return repaintMask();
    const [h, w] = maskShape;
    const outline = m.get("outline");
    const touched = outline ? /* @__PURE__ */ new Set() : null;
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k];
      if (!touched) paintMaskPixel(maskPixels, maskData, i, false);
      else for (const j of [i, i - 1, i + 1, i - w, i + w]) if (j >= 0 && j < w * h) touched.add(j);
    }
    if (touched) for (const j of touched) paintMaskPixel(maskPixels, maskData, j, true);
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
      layers.mask.getContext("2d").putImageData(maskPixels, 0, 0, c0, r0, c1 - c0 + 1, r1 - r0 + 1);
    }
    redraw();
  }
  function entryOf(shape, img, mask) {
    return { img, shape: [shape[0], shape[1], shape[2] ?? 1], mask };
  }
  function onMessage(msg, buffers) {
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
        if (key === shown) continue;
        put(key, entryOf(
          msg.shape,
          images.subarray(k * h * w, (k + 1) * h * w),
          masks ? masks.subarray(k * h * w, (k + 1) * h * w) : null
        ));
      }
      sync();
    } else if (msg.type === "diff") {
      if (msg.gen > gen) {
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
          const split = [
            t.received - t.sent,
            t.replied - t.received,
            Date.now() - t.replied,
            t.replied - (t.drawn ?? t.sent)
          ];
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
  function send(content) {
    m.send(content);
  }
  function act(name, extra = {}) {
    actionAt = performance.now();
    send({ type: "action", name, ...extra });
    const advances = name === "choose" || name === "skip" || name === "accept" && (m.get("task") === "segmentation" || typeof m.get("proposal").class === "number");
    if (advances && ahead && String(ahead.after) === itemOf(shown) && !pending) showAhead(ahead.key);
  }
  function set(key, value) {
    m.set(key, value);
    m.save_changes();
  }
  function flushStroke() {
    if (!stroke || stroke.sent >= stroke.points.length) return;
    const start = Math.max(stroke.sent - 1, 0);
    const points = stroke.points.slice(start);
    const drawn = stroke.times[stroke.sent] ?? Date.now();
    stroke.sent = stroke.points.length;
    pendingAcks += 1;
    lastChunkAt = performance.now();
    send({
      type: "stroke",
      stroke_id: stroke.id,
      points,
      radius: m.get("brush_radius"),
      value: stroke.value,
      seq: performance.now(),
      sent: Date.now(),
      drawn
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
  function changeSlice(delta) {
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
  function zoomBy(factor, at) {
    const g = layout();
    const [x, y] = at ?? [g.size / 2, g.size / 2];
    const next = Math.min(Math.max(zoom * factor, 0.25), 40);
    const f = next / zoom;
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
  function keyAction(e) {
    const name = keyName(e);
    if (/^[1-9]$/.test(name)) return "digit";
    for (const s of m.get("shortcuts")) {
      if (s.keys.split(" ").includes(name)) return s.action;
    }
    return null;
  }
  function onKey(e) {
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
      case "skip":
      case "previous":
      case "next":
      case "undo":
      case "redo":
      case "reject":
      case "jump":
        act(action);
        break;
      case "flag":
        openFlag();
        break;
      case "brush":
      case "eraser":
      case "fill":
      case "polygon":
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
  function onPointerDown(e) {
    root.focus({ preventScroll: true });
    const seg = m.get("task") === "segmentation";
    const tool = m.get("tool");
    if (e.button === 1 || e.button === 0 && e.shiftKey) {
      drag = { kind: "pan", x: e.clientX, y: e.clientY, a: pan[0], b: pan[1] };
    } else if (e.button === 2 || e.button === 0 && tool === "window") {
      drag = { kind: "window", x: e.clientX, y: e.clientY, a: m.get("window_center"), b: m.get("window_width") };
    } else if (e.button === 0 && seg) {
      const p = toPixel(e);
      if (tool === "brush" || tool === "eraser") {
        stroke = {
          id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
          points: [p],
          times: [Date.now()],
          sent: 0,
          value: tool === "eraser" ? 0 : m.get("brush_value")
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
  function onPointerMove(e) {
    cursor = toPixel(e);
    if (drag?.kind === "pan") {
      pan = [drag.a + e.clientX - drag.x, drag.b + e.clientY - drag.y];
    } else if (drag?.kind === "window") {
      const width = Math.max(drag.b * Math.exp((e.clientX - drag.x) / 200), 1e-3);
      const center = drag.a - (e.clientY - drag.y) * drag.b / 400;
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
  function onPointerUp(e) {
    if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
    drag = null;
    endStroke();
  }
  function onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey || m.get("n_slices") <= 1) {
      const rect = canvas.getBoundingClientRect();
      zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, [e.clientX - rect.left, e.clientY - rect.top]);
    } else {
      changeSlice(e.deltaY < 0 ? 1 : -1);
    }
  }
  function button(label, title, onClick, cls = "") {
    const b = el("button", { type: "button", title, class: cls }, label);
    b.addEventListener("click", (ev) => {
      ev.preventDefault();
      onClick();
      root.focus({ preventScroll: true });
    });
    return b;
  }
  function renderStatus() {
    const s = m.get("status");
    const prop = m.get("proposal");
    const seconds = (s.seconds_on_item ?? 0) + (performance.now() - statusAt) / 1e3;
    const parts = s.done || s.item_id === null ? ["All items are labelled (or reserved)."] : [
      `item ${s.item_key}`,
      `#${s.position} of ${s.served}`,
      `labelled ${s.labelled}/${s.budget}`,
      prop.model_version_id ? `proposal: model v${prop.model_version_id}` : "no proposal",
      `${Math.round(seconds)} s`,
      s.revising ? "revising" : "",
      m.get("n_slices") > 1 ? `${m.get("axis")} ${m.get("slice_index") + 1}/${m.get("n_slices")}` : ""
    ];
    statusBar.textContent = parts.filter(Boolean).join(" \xB7 ");
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
      const label = `${i + (seg ? 0 : 1)}: ${name}${p === void 0 ? "" : ` ${(100 * p).toFixed(0)}%`}`;
      const active = seg ? m.get("brush_value") === i : prop.class === i;
      const b = button(label, seg ? `paint ${name}` : `label as ${name}`, () => seg ? set("brush_value", i) : act("choose", { index: i }), active ? "wb-active" : "");
      if (seg) b.style.borderColor = `rgb(${labelColor(i).join(",")})`;
      classBar.append(b);
    });
  }
  function renderTools() {
    toolBar.replaceChildren();
    const seg = m.get("task") === "segmentation";
    toolBar.append(
      button("Accept \u23CE", "accept (Enter / a)", () => act("accept"), "wb-primary"),
      button("Skip", "skip (s)", () => act("skip")),
      button("Flag", "flag (f)", openFlag),
      button("\u25C0 Back", "previous item (Backspace)", () => act("previous"))
    );
    if (seg) {
      for (const t of ["brush", "eraser", "fill", "polygon", "window"]) {
        toolBar.append(button(t, `${t} tool`, () => set("tool", t), m.get("tool") === t ? "wb-active" : ""));
      }
      toolBar.append(
        button("\u21B6", "undo (ctrl+z)", () => act("undo")),
        button("\u21B7", "redo (ctrl+y)", () => act("redo")),
        button("reject", "reject the proposal (x)", () => act("reject"))
      );
      const opacity = el("input", { type: "range", min: "0", max: "1", step: "0.05", title: "mask opacity" });
      opacity.value = String(m.get("opacity"));
      opacity.addEventListener("input", () => set("opacity", Number(opacity.value)));
      const outline = button(
        m.get("outline") ? "outline" : "filled",
        "outline / fill (o)",
        () => set("outline", !m.get("outline"))
      );
      toolBar.append(opacity, outline);
    }
    const presets = el("select", { title: "window preset" });
    presets.append(el("option", { value: "" }, "window\u2026"));
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
  const listeners = [
    [root, "keydown", onKey],
    [canvas, "pointerdown", onPointerDown],
    [canvas, "pointermove", onPointerMove],
    [canvas, "pointerup", onPointerUp],
    [canvas, "pointercancel", onPointerUp],
    [canvas, "pointerleave", (() => {
      cursor = null;
      redraw();
    })],
    [canvas, "wheel", onWheel, { passive: false }],
    [canvas, "contextmenu", ((e) => e.preventDefault())],
    [canvas, "dblclick", (() => closePolygon())]
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
  const onView = () => {
    polygon = [];
    sync();
    renderTools();
    renderStatus();
    redraw();
  };
  const onError = () => {
    if (m.get("error")) pending = null;
    sync();
    renderStatus();
  };
  const onClasses = () => {
    renderClasses();
    renderTools();
  };
  const onOutline = () => {
    repaintMask();
    renderTools();
  };
  const handlers = [
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
    ["change:shortcuts", renderHelp]
  ];
  for (const [name, fn] of handlers) m.on(name, fn);
  m.on("msg:custom", onMessage);
  timers.push(window.setInterval(renderStatus, 1e3));
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
    for (const [name, fn] of handlers) m.off(name, fn);
    m.off("msg:custom", onMessage);
    for (const t of timers) {
      window.clearInterval(t);
      window.clearTimeout(t);
    }
    if (frame) cancelAnimationFrame(frame);
    root.remove();
  };
}
var annotator_default = { render };
export {
  annotator_default as default
};
