// @ts-check
// Call history list (GET /api/v1/calls).

import { getCalls } from './api.js';
import { icons } from './icons.js';
import { el, makeAvatar, formatDuration } from './ui.js';

const REASON_TEXT = {
  completed: '',
  declined: 'Declined',
  busy: 'Busy',
  no_answer: 'No answer',
  cancelled: 'Cancelled',
  answered_elsewhere: 'Answered on another device',
  declined_elsewhere: 'Declined on another device',
  connection_lost: 'Connection lost',
  failed: 'Failed',
  handed_off: 'Moved to another device',
};

function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diffDays = Math.round((day(now) - day(d)) / 86400000);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (diffDays === 0) return time;
  if (diffDays === 1) return `Yesterday`;
  if (diffDays < 7) return d.toLocaleDateString([], { weekday: 'long' });
  return d.toLocaleDateString([], { day: 'numeric', month: 'short', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
}

/** How many calls an entry stands for: unanswered calls with the same
 * person come grouped, with a count. */
function callCount(c) {
  return Number.isInteger(c.count) && c.count > 1 ? c.count : 1;
}

function describe(c) {
  const kind = c.video ? 'Video' : 'Audio';
  const n = callCount(c);
  if (c.missed) return n > 1 ? `${n} missed ${kind.toLowerCase()} calls` : `Missed ${kind.toLowerCase()} call`;
  const dir = c.direction === 'outgoing' ? 'Outgoing' : 'Incoming';
  if (c.reason === 'completed' || (c.duration_ms > 0 && !REASON_TEXT[c.reason])) {
    return `${dir} · ${formatDuration(c.duration_ms)}`;
  }
  const r = REASON_TEXT[c.reason];
  const times = n > 1 ? ` · ${n} calls` : '';
  return (r ? `${dir} · ${r}` : dir) + times;
}

function row(c, onCall) {
  const li = document.createElement('li');
  li.className = 'call';
  li.dataset.callId = c.call_id || '';
  li.dataset.reason = c.reason || '';
  li.dataset.missed = c.missed ? 'true' : 'false';
  li.dataset.direction = c.direction || '';

  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'call-row';
  const peer = c.peer || 'unknown';
  // A group call shows everyone who took part; calling back calls the peer.
  const others = Array.isArray(c.participants) ? c.participants.filter((u) => typeof u === 'string' && u) : [];
  const title = others.length > 1 ? others.join(', ') : peer;
  const text = describe(c);
  const whenText = when(c.started_at);
  const full = c.started_at ? new Date(c.started_at).toLocaleString() : '';
  btn.setAttribute('aria-label', `${text} with ${title}${full ? ', ' + full : ''}. Call ${peer} with ${c.video ? 'video' : 'audio'}.`);
  btn.title = full;

  const main = document.createElement('span');
  main.className = 'call-main';
  const name = document.createElement('span');
  name.className = 'call-name';
  name.textContent = title;
  const meta = document.createElement('span');
  meta.className = 'call-meta';
  const dirIcon = document.createElement('span');
  dirIcon.innerHTML = c.missed ? icons.missed : c.direction === 'outgoing' ? icons.outgoing : icons.incoming;
  const metaText = document.createElement('span');
  metaText.className = 'call-meta-text';
  metaText.textContent = text;
  meta.append(dirIcon, metaText);
  main.append(name, meta);

  const kind = document.createElement('span');
  kind.className = 'call-kind';
  kind.innerHTML = c.video ? icons.video : icons.phone;
  const time = document.createElement('span');
  time.className = 'call-when';
  time.textContent = whenText;

  btn.append(makeAvatar(peer), main, time, kind);
  btn.addEventListener('click', () => onCall(peer, !!c.video));
  li.append(btn);
  return li;
}

export function renderHistory(calls, onCall) {
  const frag = document.createDocumentFragment();
  let missed = 0;
  for (const c of calls) {
    if (!c || typeof c !== 'object') continue;
    if (c.missed) missed += callCount(c);
    frag.append(row(c, onCall));
  }
  el.history.replaceChildren(frag);
  el.historyEmpty.hidden = calls.length > 0;
  el.historyEmpty.textContent = 'No calls yet. Calls you make and receive show up here.';
  el.missedBadge.hidden = missed === 0;
  el.missedBadge.textContent = `${missed} missed`;
  el.missedBadge.setAttribute('aria-label', `${missed} missed ${missed === 1 ? 'call' : 'calls'}`);
}

let loading = null;

/** Fetches and renders the history; errors show in the list area. */
export function refreshHistory(token, onCall) {
  if (loading) return loading;
  el.historyRefresh.disabled = true;
  el.history.setAttribute('aria-busy', 'true');
  if (!el.history.childElementCount) {
    // Nothing shown yet: say so, rather than "No calls yet" before we know.
    el.historyEmpty.hidden = false;
    el.historyEmpty.textContent = 'Loading your calls…';
  }
  loading = getCalls(token, 50)
    .then((calls) => {
      renderHistory(calls, onCall);
      return calls;
    })
    .catch((err) => {
      el.historyEmpty.hidden = false;
      el.historyEmpty.textContent = `Could not load call history: ${err.message}`;
      if (err.status === 401) throw err;
      return null;
    })
    .finally(() => {
      loading = null;
      el.history.removeAttribute('aria-busy');
      el.historyRefresh.disabled = false;
    });
  return loading;
}

export function clearHistory() {
  el.history.replaceChildren();
  el.historyEmpty.hidden = false;
  el.historyEmpty.textContent = 'No calls yet. Calls you make and receive show up here.';
  el.missedBadge.hidden = true;
}
