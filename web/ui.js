// @ts-check
// DOM helpers: element lookup, screens, status line, toasts, avatars and
// the remote video tiles of the call screen.

import { icons } from './icons.js';
import { describe } from './quality.js';

/** Elements cached once: the call layer may move into a Picture-in-Picture window. */
export const el = {};

export function initUi() {
  for (const node of document.querySelectorAll('[id]')) {
    const key = node.id.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    el[key] = node;
  }
  fillIcons(document);
}

export function fillIcons(root) {
  for (const node of root.querySelectorAll('[data-icon]')) {
    const svg = icons[node.dataset.icon];
    if (svg && !node.firstElementChild) node.innerHTML = svg;
  }
}

export function setIcon(node, name) {
  node.dataset.icon = name;
  node.innerHTML = icons[name] || '';
}

const SCREENS = ['screenLoading', 'screenSignin', 'screenNotoken', 'screenJoin', 'screenHome'];

/** Shows one of the main screens ('loading'|'signin'|'notoken'|'join'|'home'). */
export function showScreen(name) {
  const want = 'screen' + name[0].toUpperCase() + name.slice(1);
  for (const key of SCREENS) el[key].hidden = key !== want;
}

export function setStatus(text, tone = 'neutral') {
  el.status.textContent = text;
  el.status.dataset.tone = tone;
  el.status.title = text;
}

let toastTimer = null;
export function toast(text, ms = 4500) {
  clearTimeout(toastTimer);
  el.toast.textContent = text;
  el.toast.hidden = false;
  toastTimer = setTimeout(() => {
    el.toast.hidden = true;
  }, ms);
}

export function showBanner(text) {
  el.bannerText.textContent = text;
  el.banner.hidden = false;
}

export function hideBanner() {
  el.banner.hidden = true;
  el.bannerText.textContent = '';
}

export function initials(name) {
  const s = String(name || '?').replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  if (!s) return '?';
  const parts = s.split(' ');
  const a = Array.from(parts[0]);
  if (parts.length > 1) return (a[0] + Array.from(parts[parts.length - 1])[0]).toUpperCase();
  return a.slice(0, 2).join('').toUpperCase();
}

export function hue(name) {
  let h = 0;
  for (const ch of String(name || '')) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function paintAvatar(node, name) {
  node.textContent = initials(name);
  node.style.setProperty('--hue', String(hue(name)));
}

export function makeAvatar(name, cls = '') {
  const a = document.createElement('span');
  a.className = `avatar ${cls}`.trim();
  a.setAttribute('aria-hidden', 'true');
  paintAvatar(a, name);
  return a;
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.round((ms || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return (h ? `${h}:` : '') + `${mm}:${String(s).padStart(2, '0')}`;
}

/** Plays a media element, ignoring autoplay rejections. */
export function safePlay(video) {
  try {
    const p = video.play();
    if (p && typeof p.catch === 'function') p.catch(() => {});
  } catch {
    /* ignore */
  }
}

// ---------- connection quality ----------

const LEVEL_TEXT = { good: 'good', poor: 'poor', bad: 'bad' };

/** A signal-bars indicator; paint it with setQualityIndicator. */
export function makeQualityIndicator(cls = '') {
  const q = document.createElement('span');
  q.className = `qual ${cls}`.trim();
  q.setAttribute('role', 'img');
  q.hidden = true;
  for (let i = 0; i < 3; i++) q.append(document.createElement('i'));
  return q;
}

/**
 * Shows q ({level, rttMs, lossPct, jitterMs, …}) on an indicator: bars by
 * level, the figures in its tooltip. who names whose connection it is.
 */
export function setQualityIndicator(node, q, who) {
  if (!node) return;
  const level = q && LEVEL_TEXT[q.level];
  node.hidden = !level;
  if (!level) return;
  const figures = describe(q);
  node.dataset.level = q.level;
  node.title = `${who}: ${level}${figures ? ` — ${figures}` : ''}`;
  node.setAttribute('aria-label', `${who}: ${level} connection${figures ? ` (${figures})` : ''}`);
}

// ---------- remote tiles ----------

/**
 * One tile per remote user. A tile shows the user's video, or their avatar
 * when the call is audio-only, their camera is off or no frames arrive.
 */
export class Tiles {
  constructor(container, callScreen) {
    this.container = container;
    this.callScreen = callScreen;
    this.tiles = new Map(); // user → {node, video, stream, media:{audio,video}, statusNode}
    this.pinned = new Set(); // users whose tile stays while they have no tracks (call members)
    this.seq = 0; // joining order, for tiles nobody promoted
    this.promoted = []; // users moved up for speaking, most recent first
    this.speaking = ''; // highlighted user ('' = nobody)
    this.localNode = null; // this device's own preview, highlighted when it is the speaker
    this.me = '';
  }

  /** The local preview and this user's name, so the speaker highlight can mark it too. */
  setLocal(node, user) {
    this.localNode = node;
    this.me = user || '';
  }

  /** Keeps user's tile on screen while they are in the call, tracks or not. */
  pin(user) {
    this.pinned.add(user);
    return this.get(user);
  }

  /** Takes user's tile off the screen (they left the call). */
  remove(user) {
    this.pinned.delete(user);
    const t = this.tiles.get(user);
    if (!t) return;
    t.video.srcObject = null;
    t.node.remove();
    this.tiles.delete(user);
    this.promoted = this.promoted.filter((u) => u !== user);
    this.updateCount();
    this.applyOrder();
  }

  /** Marks the tile of the user who holds the floor in a push-to-talk room. */
  setTalking(user) {
    for (const t of this.tiles.values()) {
      const on = !!user && t.user === user;
      t.node.classList.toggle('talking', on);
      t.talkNode.hidden = !on;
    }
  }

  get(user) {
    let t = this.tiles.get(user);
    if (t) return t;
    const node = document.createElement('div');
    node.className = 'tile no-video';
    node.dataset.user = user;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute('playsinline', '');
    const av = document.createElement('div');
    av.className = 'tile-avatar';
    av.append(makeAvatar(user, 'avatar-xl'));
    const statusNode = document.createElement('div');
    statusNode.className = 'tile-status';
    av.append(statusNode);
    const badge = document.createElement('div');
    badge.className = 'tile-badge';
    const micOff = document.createElement('span');
    micOff.className = 'mic-off';
    micOff.innerHTML = icons.micOff;
    micOff.setAttribute('aria-label', 'Microphone muted');
    micOff.setAttribute('role', 'img');
    const label = document.createElement('span');
    label.textContent = user;
    const talkNode = document.createElement('span');
    talkNode.className = 'tile-talking';
    talkNode.textContent = 'talking';
    talkNode.hidden = true;
    const qualNode = makeQualityIndicator();
    badge.append(micOff, qualNode, label, talkNode);
    node.append(video, av, badge);
    node.classList.toggle('speaking', !!user && user === this.speaking);
    this.container.append(node);
    t = { user, node, video, stream: null, media: { audio: true, video: true }, statusNode, talkNode, qualNode, seq: this.seq++, listeners: [] };
    this.tiles.set(user, t);
    this.updateCount();
    this.applyOrder();
    return t;
  }

  /** Shows the quality of what arrives from user (see setQualityIndicator). */
  setQuality(user, q) {
    const t = this.tiles.get(user);
    if (t) setQualityIndicator(t.qualNode, q, `${user}'s connection`);
  }

  /** Highlights the active speaker's tile (or the local preview); '' = nobody. */
  setSpeaking(user) {
    this.speaking = user || '';
    for (const t of this.tiles.values()) t.node.classList.toggle('speaking', !!this.speaking && t.user === this.speaking);
    if (this.localNode) this.localNode.classList.toggle('speaking', !!this.speaking && this.speaking === this.me);
  }

  /**
   * Moves user's tile first (the SpeakerTracker calls this once they have
   * been the loudest for a while); the others keep their order behind the
   * recent speakers.
   */
  promote(user) {
    const t = this.tiles.get(user);
    if (!t || this.tiles.size < 2 || this.order()[0] === user) return false;
    this.promoted = [user, ...this.promoted.filter((u) => u !== user)];
    this.applyOrder();
    return true;
  }

  /** Tiles in the order they are shown (users). */
  order() {
    return [...this.tiles.values()].sort((a, b) => this.rank(a) - this.rank(b)).map((t) => t.user);
  }

  rank(t) {
    const i = this.promoted.indexOf(t.user);
    return i >= 0 ? i : this.promoted.length + t.seq;
  }

  applyOrder() {
    // CSS order, not DOM moves: a moved <video> would stall for a moment.
    for (const t of this.tiles.values()) t.node.style.order = String(this.rank(t));
  }

  /** Remote videos as shown now: [{user, video, track}] (track = the live video track played). */
  videos() {
    const out = [];
    for (const t of this.tiles.values()) {
      const track = t.stream ? t.stream.getVideoTracks().find((x) => x.readyState === 'live') : null;
      if (track) out.push({ user: t.user, video: t.video, track });
    }
    return out;
  }

  setStatusText(user, text) {
    const t = this.get(user);
    t.statusNode.textContent = text || '';
  }

  addTrack(user, track, stream) {
    const t = this.get(user);
    if (t.stream !== stream) {
      t.stream = stream;
      t.video.srcObject = stream;
    }
    const refresh = () => this.refresh(user);
    track.addEventListener('mute', refresh);
    track.addEventListener('unmute', refresh);
    track.addEventListener('ended', refresh);
    safePlay(t.video);
    this.refresh(user);
  }

  removeTrack(user) {
    const t = this.tiles.get(user);
    if (!t) return;
    const live = t.stream ? t.stream.getTracks().filter((x) => x.readyState === 'live') : [];
    if (live.length === 0 && !this.pinned.has(user)) {
      t.node.remove();
      this.tiles.delete(user);
      this.updateCount();
    } else {
      this.refresh(user);
    }
  }

  setMedia(user, media) {
    const t = this.get(user);
    t.media = { audio: media.audio !== false, video: media.video !== false };
    this.refresh(user);
  }

  refresh(user) {
    const t = this.tiles.get(user);
    if (!t) return;
    const vt = t.stream ? t.stream.getVideoTracks().find((x) => x.readyState === 'live') : null;
    const showVideo = !!vt && !vt.muted && t.media.video && this.callScreen.dataset.video === 'true';
    t.node.classList.toggle('no-video', !showVideo);
    t.node.classList.toggle('muted', !t.media.audio);
    if (this.callScreen.dataset.mode === 'in-call') {
      const videoCall = this.callScreen.dataset.video === 'true';
      t.statusNode.textContent = videoCall && !t.media.video ? 'Camera off' : '';
    }
  }

  refreshAll() {
    for (const user of this.tiles.keys()) this.refresh(user);
  }

  playAll() {
    for (const t of this.tiles.values()) safePlay(t.video);
  }

  updateCount() {
    this.callScreen.dataset.count = String(this.tiles.size);
  }

  clear() {
    for (const t of this.tiles.values()) {
      t.video.srcObject = null;
      t.node.remove();
    }
    this.tiles.clear();
    this.pinned.clear();
    this.promoted = [];
    this.setSpeaking('');
    this.updateCount();
  }
}

