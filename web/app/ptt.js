// @ts-check
// Push-to-talk: asking for the floor, talking, and showing who holds it.
import { el, toast } from '../ui.js';
import { myUser } from './group.js';
import { S, errorText, tiles } from './state.js';

export function pttActive() {
  const call = S.call;
  return !!(call && call.mode === 'ptt' && call.phase === 'in-call' && call.callId);
}

export function onFloor(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id) return;
  call.floor = {
    holder: typeof msg.holder === 'string' ? msg.holder : '',
    queue: Array.isArray(msg.queue) ? msg.queue.filter((u) => typeof u === 'string' && u) : [],
  };
  call.floorUntil = call.floor.holder && msg.expires_ms > 0 ? Date.now() + msg.expires_ms : 0;
  renderFloor(call);
}

export function renderFloor(call) {
  clearInterval(call.floorTimer);
  call.floorTimer = null;
  if (call.mode !== 'ptt') {
    tiles.setTalking(null);
    return;
  }
  const me = myUser();
  const { holder, queue } = call.floor;
  const mine = !!holder && holder === me;
  const queued = queue.includes(me);
  el.floorText.textContent = !holder ? 'Nobody is talking' : mine ? 'You are talking' : `${holder} is talking`;
  el.floorQueue.hidden = queue.length === 0;
  el.floorQueue.textContent = `Next: ${queue.map((u) => (u === me ? 'you' : u)).join(', ')}`;
  el.ptt.dataset.floor = mine ? 'mine' : queued ? 'queued' : holder ? 'taken' : 'free';
  const label = () => {
    if (mine) {
      const left = call.floorUntil ? Math.max(0, Math.ceil((call.floorUntil - Date.now()) / 1000)) : 0;
      return left ? `Talking · ${left} s` : 'Talking';
    }
    if (call.pttPressed) return queued ? 'Waiting for your turn' : 'Asking…';
    return 'Hold to talk';
  };
  el.pttLabel.textContent = label();
  if (mine && call.floorUntil) call.floorTimer = setInterval(() => (el.pttLabel.textContent = label()), 1000);
  tiles.setTalking(mine ? null : holder);
}

export function pttDown() {
  const call = S.call;
  if (!pttActive() || call.pttPressed) return;
  call.pttPressed = true;
  el.ptt.setAttribute('aria-pressed', 'true');
  renderFloor(call);
  floorRequest(call, 'request');
}

export function pttUp() {
  const call = S.call;
  if (!call || !call.pttPressed) return;
  call.pttPressed = false;
  el.ptt.setAttribute('aria-pressed', 'false');
  renderFloor(call);
  floorRequest(call, 'release');
}

function floorRequest(call, action) {
  if (!S.sig || !call.callId) return;
  S.sig.request({ type: 'floor', call_id: call.callId, action }).catch((err) => {
    if (S.call !== call || action === 'release') return;
    if (err && err.code === 'unknown_type') toast('This server does not support push-to-talk.');
    else toast(`Could not ask to talk: ${errorText(err)}`);
  });
}

/** Keys typed into a text field or list are not push-to-talk. */
export function typingIn(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'range'].includes(target.type);
}

export function isSpace(ev) {
  return ev.code === 'Space' || ev.key === ' ';
}
