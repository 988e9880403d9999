// @ts-check
// View reporting (docs/protocol.md, "Simulcast, view and speakers"): tells
// the server how large each remote video is shown, in device pixels, so the
// SFU forwards the simulcast layer that fits — and nothing for a video
// nobody can see (a hidden tile, one scrolled out of view, or a page in a
// background tab). Sizes come from ResizeObserver on the <video> elements;
// IntersectionObserver, visibility changes and a slow timer only prompt a
// new measurement. A `view` goes out at most every delayMs, and only when
// it differs from the last one sent.

/**
 * The size the picture is drawn at inside a box of bw×bh CSS pixels, for a
 * video of vw×vh pixels and the element's object-fit. A cropped picture
 * (cover) counts whole: its pixels are all drawn at that scale, only some
 * fall outside the box.
 */
export function pictureSize(bw, bh, vw, vh, fit) {
  if (!(vw > 0 && vh > 0)) return { width: bw, height: bh };
  let scale;
  switch (fit) {
    case 'cover':
      scale = Math.max(bw / vw, bh / vh);
      break;
    case 'contain':
      scale = Math.min(bw / vw, bh / vh);
      break;
    case 'scale-down':
      scale = Math.min(1, bw / vw, bh / vh);
      break;
    case 'none':
      scale = 1;
      break;
    default: // fill
      return { width: bw, height: bh };
  }
  return { width: vw * scale, height: vh * scale };
}

/**
 * How a video element is shown now: {width, height} of its picture in
 * device pixels, 0×0 when it cannot be seen. Works wherever the element
 * lives, including a Picture-in-Picture window.
 */
export function shownSize(video) {
  const doc = video && video.ownerDocument;
  const win = doc && doc.defaultView;
  if (!win || !video.isConnected || doc.visibilityState === 'hidden') return { width: 0, height: 0 };
  const r = video.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return { width: 0, height: 0 }; // display: none, or collapsed
  // Off screen: no part of it inside the window's viewport.
  const vw = win.innerWidth || doc.documentElement.clientWidth;
  const vh = win.innerHeight || doc.documentElement.clientHeight;
  if (r.right <= 0 || r.bottom <= 0 || r.left >= vw || r.top >= vh) return { width: 0, height: 0 };
  const style = win.getComputedStyle(video);
  if (style.visibility === 'hidden') return { width: 0, height: 0 };
  const pic = pictureSize(r.width, r.height, video.videoWidth, video.videoHeight, style.objectFit);
  const dpr = win.devicePixelRatio || 1;
  return { width: Math.round(pic.width * dpr), height: Math.round(pic.height * dpr) };
}

export class ViewReporter {
  /**
   * list() returns the remote videos: [{user, track, video, shown}], where
   * track is the SFU's track name and shown is false when the client does
   * not show that video at all (an audio-only call). send(tiles) sends a
   * `view` and returns whether it went out.
   */
  constructor({ list, send, delayMs = 300, pollMs = 2000 }) {
    this.list = list;
    this.send = send;
    this.delayMs = delayMs;
    this.pollMs = pollMs;
    this.last = null; // the last view sent: {tiles, at}
    this.timer = null;
    this.poll = null;
    this.observers = new Map(); // window → {ro, io}
    this.watched = new Set(); // video elements
    this.docs = new Set(); // documents whose visibility we listen to
    this.onVisibility = () => this.schedule(); // also for resizes of a video's picture
    this.stopped = false;
  }

  start() {
    this.poll = setInterval(() => this.schedule(), this.pollMs);
    this.schedule();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.poll);
    for (const { ro, io } of this.observers.values()) {
      ro.disconnect();
      if (io) io.disconnect();
    }
    this.observers.clear();
    for (const v of this.watched) v.removeEventListener('resize', this.onVisibility);
    this.watched.clear();
    for (const doc of this.docs) doc.removeEventListener('visibilitychange', this.onVisibility);
    this.docs.clear();
  }

  /** Observers for the window video lives in (a Picture-in-Picture window has its own). */
  observersFor(video) {
    const win = video.ownerDocument && video.ownerDocument.defaultView;
    if (!win) return null;
    let o = this.observers.get(win);
    if (!o) {
      const cb = () => this.schedule();
      o = {
        ro: new win.ResizeObserver(cb),
        io: typeof win.IntersectionObserver === 'function' ? new win.IntersectionObserver(cb) : null,
      };
      this.observers.set(win, o);
      const doc = video.ownerDocument;
      if (!this.docs.has(doc)) {
        this.docs.add(doc);
        doc.addEventListener('visibilitychange', this.onVisibility);
      }
    }
    return o;
  }

  /** Starts measuring video (idempotent). */
  watch(video) {
    if (this.stopped || !video || this.watched.has(video)) return;
    const o = this.observersFor(video);
    if (!o) return;
    this.watched.add(video);
    // A new picture size (the first frame, another layer) changes what cover shows.
    video.addEventListener('resize', this.onVisibility);
    o.ro.observe(video);
    if (o.io) o.io.observe(video);
    this.schedule();
  }

  unwatch(video) {
    if (!video || !this.watched.delete(video)) return;
    video.removeEventListener('resize', this.onVisibility);
    for (const { ro, io } of this.observers.values()) {
      ro.unobserve(video);
      if (io) io.unobserve(video);
    }
    this.schedule();
  }

  /** The videos moved to another window (pop out / back): observe them there. */
  rewatch() {
    const videos = [...this.watched];
    for (const { ro, io } of this.observers.values()) {
      ro.disconnect();
      if (io) io.disconnect();
    }
    this.observers.clear();
    for (const v of videos) {
      v.removeEventListener('resize', this.onVisibility);
      this.watched.delete(v);
    }
    for (const v of videos) this.watch(v);
    this.schedule();
  }

  schedule() {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.delayMs);
  }

  /** Measures every remote video now. */
  measure() {
    const tiles = [];
    const seen = new Set();
    for (const item of this.list()) {
      if (!item.user || !item.track || !item.video) continue;
      seen.add(item.video);
      this.watch(item.video);
      const size = item.shown === false ? { width: 0, height: 0 } : shownSize(item.video);
      tiles.push({ user: item.user, track: item.track, width: size.width, height: size.height });
    }
    for (const v of [...this.watched]) if (!seen.has(v)) this.unwatch(v);
    tiles.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.track < b.track ? -1 : a.track > b.track ? 1 : 0));
    return tiles;
  }

  /** Sends the view if it changed since the last one sent. */
  flush() {
    if (this.stopped) return;
    const tiles = this.measure();
    // Nothing shown yet and nothing said yet: no news for the server.
    if (this.last === null && tiles.length === 0) return;
    if (this.last && sameView(this.last.tiles, tiles)) return;
    if (this.send(tiles)) this.last = { tiles, at: Date.now() };
  }
}

/**
 * Whether two views say the same: the same tiles, each hidden in both or
 * shown in both at nearly the same size. A picture that changes by a pixel
 * or two (a new layer with a slightly different aspect) is no news.
 */
export function sameView(a, b) {
  if (a.length !== b.length) return false;
  const near = (x, y) => (x === 0) === (y === 0) && Math.abs(x - y) <= Math.max(4, 0.03 * Math.max(x, y));
  return a.every((t, i) => {
    const u = b[i];
    return t.user === u.user && t.track === u.track && near(t.width, u.width) && near(t.height, u.height);
  });
}
