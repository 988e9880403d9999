// @ts-check
// Remote assistance in the browser: the binary event format of the
// "assist" data channel (docs/protocol.md, "The assist data channel"),
// X11 keysyms for keyboard events, and the canvas that shows annotations
// and the helper's pointer, fading.

export const VERSION = 1;

export const T = {
  pointerMove: 0x01,
  buttonDown: 0x02,
  buttonUp: 0x03,
  wheel: 0x04,
  keyDown: 0x05,
  keyUp: 0x06,
  strokePoint: 0x10,
  strokeEnd: 0x11,
  clear: 0x12,
};

const SIZE = { 0x01: 4, 0x02: 5, 0x03: 5, 0x04: 4, 0x05: 4, 0x06: 4, 0x10: 7, 0x11: 1, 0x12: 0 };

export const TOOLS = { pen: 0, arrow: 1, laser: 2 };
export const COLORS = ['#ef4444', '#f59e0b', '#22c55e', '#3b82f6', '#a855f7', '#ec4899', '#ffffff', '#111827'];

/** Whether an event type is control (pointer, keys) rather than annotation. */
export function isControl(type) {
  return type >= T.pointerMove && type <= T.keyUp;
}

const clamp16 = (v) => Math.max(0, Math.min(65535, Math.round(v)));

/** Encodes events ({type, x, y, button, dx, dy, keysym, stroke, tool, color}) as one message. */
export function encode(events) {
  let n = 1;
  for (const e of events) n += 1 + (SIZE[e.type] ?? 0);
  const buf = new ArrayBuffer(n);
  const v = new DataView(buf);
  let o = 0;
  v.setUint8(o++, VERSION);
  for (const e of events) {
    v.setUint8(o++, e.type);
    switch (e.type) {
      case T.pointerMove:
        v.setUint16(o, clamp16(e.x)); v.setUint16(o + 2, clamp16(e.y)); o += 4;
        break;
      case T.buttonDown:
      case T.buttonUp:
        v.setUint8(o, e.button); v.setUint16(o + 1, clamp16(e.x)); v.setUint16(o + 3, clamp16(e.y)); o += 5;
        break;
      case T.wheel:
        v.setInt16(o, e.dx); v.setInt16(o + 2, e.dy); o += 4;
        break;
      case T.keyDown:
      case T.keyUp:
        v.setUint32(o, e.keysym); o += 4;
        break;
      case T.strokePoint:
        v.setUint8(o, e.stroke); v.setUint8(o + 1, e.tool); v.setUint8(o + 2, e.color);
        v.setUint16(o + 3, clamp16(e.x)); v.setUint16(o + 5, clamp16(e.y)); o += 7;
        break;
      case T.strokeEnd:
        v.setUint8(o, e.stroke); o += 1;
        break;
      default:
        break;
    }
  }
  return buf;
}

/** Decodes a message; what does not parse ends it (the server already checked it). */
export function decode(buf) {
  const v = new DataView(buf instanceof ArrayBuffer ? buf : buf.buffer);
  const out = [];
  if (v.byteLength < 1 || v.getUint8(0) !== VERSION) return out;
  let o = 1;
  while (o < v.byteLength) {
    const type = v.getUint8(o++);
    const size = SIZE[type];
    if (size === undefined || o + size > v.byteLength) break;
    const e = { type };
    switch (type) {
      case T.pointerMove:
        e.x = v.getUint16(o); e.y = v.getUint16(o + 2);
        break;
      case T.buttonDown:
      case T.buttonUp:
        e.button = v.getUint8(o); e.x = v.getUint16(o + 1); e.y = v.getUint16(o + 3);
        break;
      case T.wheel:
        e.dx = v.getInt16(o); e.dy = v.getInt16(o + 2);
        break;
      case T.keyDown:
      case T.keyUp:
        e.keysym = v.getUint32(o);
        break;
      case T.strokePoint:
        e.stroke = v.getUint8(o); e.tool = v.getUint8(o + 1); e.color = v.getUint8(o + 2);
        e.x = v.getUint16(o + 3); e.y = v.getUint16(o + 5);
        break;
      case T.strokeEnd:
        e.stroke = v.getUint8(o);
        break;
      default:
        break;
    }
    o += size;
    out.push(e);
  }
  return out;
}

// X11 keysyms of the keys KeyboardEvent.key names.
const KEYSYMS = {
  Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff,
  Home: 0xff50, ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
  PageUp: 0xff55, PageDown: 0xff56, End: 0xff57, Insert: 0xff63,
  Shift: 0xffe1, Control: 0xffe3, CapsLock: 0xffe5, Alt: 0xffe9, Meta: 0xffeb, AltGraph: 0xfe03,
  ContextMenu: 0xff67,
};

/** The X11 keysym for a KeyboardEvent's key, or 0 for none. */
export function keysym(key) {
  if (KEYSYMS[key]) return KEYSYMS[key];
  const f = /^F([1-9]|1[0-2])$/.exec(key);
  if (f) return 0xffbe + Number(f[1]) - 1;
  const cps = [...key];
  if (cps.length !== 1) return 0;
  const cp = cps[0].codePointAt(0);
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return 0x01000000 + cp;
}

/**
 * Draws strokes, arrows and a laser dot, in coordinates normalised over
 * the shared screen, on a canvas laid over where that screen is shown;
 * each mark fades out after a few seconds. Also shows the helper's pointer.
 */
export class AnnotationLayer {
  constructor(canvas, { fadeMs = 4000, contentRect = null } = {}) {
    this.canvas = canvas;
    this.fadeMs = fadeMs;
    this.contentRect = contentRect; // () => {x, y, w, h} of the screen within the canvas
    this.strokes = new Map(); // id → {tool, color, points: [[x, y]], at, done}
    this.pointer = null; // {x, y, at}
    this.frame = 0;
    this.received = 0;
  }

  /** Applies received or locally drawn events. */
  apply(events) {
    const now = performance.now();
    for (const e of events) {
      switch (e.type) {
        case T.strokePoint: {
          this.received += 1;
          let s = this.strokes.get(e.stroke);
          if (!s || s.done) {
            s = { tool: e.tool, color: e.color, points: [], at: now, done: false };
            this.strokes.set(e.stroke, s);
          }
          s.points.push([e.x, e.y]);
          s.at = now;
          break;
        }
        case T.strokeEnd: {
          const s = this.strokes.get(e.stroke);
          if (s) {
            s.done = true;
            s.at = now;
          }
          break;
        }
        case T.clear:
          this.received += 1;
          this.strokes.clear();
          break;
        case T.pointerMove:
        case T.buttonDown:
        case T.buttonUp:
          this.pointer = { x: e.x, y: e.y, at: now, down: e.type === T.buttonDown };
          break;
        default:
          break;
      }
    }
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const r = this.contentRect ? this.contentRect() : { x: 0, y: 0, w, h };
    const px = (p) => [r.x + (p[0] / 65535) * r.w, r.y + (p[1] / 65535) * r.h];
    const now = performance.now();
    let live = false;
    for (const [id, s] of this.strokes) {
      const age = now - s.at;
      const life = s.tool === TOOLS.laser ? 800 : this.fadeMs;
      if (s.done && age > life) {
        this.strokes.delete(id);
        continue;
      }
      live = true;
      g.globalAlpha = s.done ? Math.max(0, 1 - age / life) : 1;
      g.strokeStyle = g.fillStyle = COLORS[s.color] || COLORS[0];
      g.lineWidth = 4;
      g.lineCap = g.lineJoin = 'round';
      const pts = s.points.map(px);
      if (s.tool === TOOLS.laser) {
        const [x, y] = pts[pts.length - 1];
        g.beginPath();
        g.arc(x, y, 8, 0, Math.PI * 2);
        g.fill();
        continue;
      }
      g.beginPath();
      pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
      g.stroke();
      if (s.tool === TOOLS.arrow && pts.length > 1) {
        const [x1, y1] = pts[0];
        const [x2, y2] = pts[pts.length - 1];
        const a = Math.atan2(y2 - y1, x2 - x1);
        g.beginPath();
        g.moveTo(x2, y2);
        g.lineTo(x2 - 16 * Math.cos(a - 0.45), y2 - 16 * Math.sin(a - 0.45));
        g.moveTo(x2, y2);
        g.lineTo(x2 - 16 * Math.cos(a + 0.45), y2 - 16 * Math.sin(a + 0.45));
        g.stroke();
      }
    }
    if (this.pointer && now - this.pointer.at < 3000) {
      live = true;
      const [x, y] = px([this.pointer.x, this.pointer.y]);
      g.globalAlpha = 1;
      g.fillStyle = this.pointer.down ? '#ef4444' : '#fbbf24';
      g.beginPath();
      g.moveTo(x, y);
      g.lineTo(x + 14, y + 5);
      g.lineTo(x + 5, y + 14);
      g.closePath();
      g.fill();
    }
    g.globalAlpha = 1;
    if (live) this.schedule();
  }

  clear() {
    this.strokes.clear();
    this.pointer = null;
    this.schedule();
  }
}

/**
 * The rectangle a video's picture fills inside its element (object-fit:
 * contain), in the element's coordinates.
 */
export function videoContentRect(video) {
  const w = video.clientWidth;
  const h = video.clientHeight;
  const vw = video.videoWidth || w;
  const vh = video.videoHeight || h;
  const s = Math.min(w / vw, h / vh) || 1;
  const cw = vw * s;
  const ch = vh * s;
  return { x: (w - cw) / 2, y: (h - ch) / 2, w: cw, h: ch };
}
