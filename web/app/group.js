// @ts-check
// Group calls: members, adding a person, watchers, and the call's title.
import { normalizeId, validId } from '../auth.js';
import { el, toast } from '../ui.js';
import { renderMoveMenu } from './moving.js';
import { rateLimitedText } from './outgoing.js';
import { renderFloor } from './ptt.js';
import { sendMediaState } from './screen.js';
import { setFormError } from './signin.js';
import { S, errorText, renderStatus, tiles } from './state.js';

export function myUser() {
  return S.auth ? S.auth.user : '';
}

/** "bob", "bob and carol", "bob, carol and dan". */
export function listNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export function callTitle(call) {
  if (call.room) return call.room;
  return call.members.size > 1 ? listNames([...call.members.keys()]) : call.peer;
}

/**
 * `watchers`: how many WHEP players watch the call. They see and hear it
 * without being members, so the count stays on screen while any do.
 * @param {{call_id?: string, whep?: number}} msg
 */
export function onWatchers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id) return;
  const n = Number.isInteger(msg.whep) && msg.whep > 0 ? msg.whep : 0;
  const before = call.watchers;
  call.watchers = n;
  renderWatchers(call);
  if (n > before) toast(n === 1 ? 'Someone is watching through a stream player' : `${n} are watching through stream players`);
  else if (n < before) toast(n ? `${n} still watching through a stream player` : 'Nobody is watching through a stream player any more');
}

export function renderWatchers(call) {
  const n = call ? call.watchers : 0;
  el.callWatchers.hidden = !n;
  el.callWatchers.textContent = `${n} watching`;
  const label = `${n} watching through a stream player (WHEP): they see and hear this call but are not in it`;
  el.callWatchers.title = label;
  el.callWatchers.setAttribute('aria-label', label);
}

export function renderCallTitle(call) {
  el.callPeer.textContent = callTitle(call);
  el.add.hidden = !(call.phase === 'in-call' && !call.room) || !!call.listening;
  el.assist.hidden = !(call.phase === 'in-call' && !call.room && !call.listening && call.members.size === 1);
  if (el.assist.hidden) el.assistPanel.hidden = true;
  if (el.add.hidden) closeAddPanel();
  renderMoveMenu();
  renderStatus();
}

/** Everyone in parties but this user becomes the call's member list. */
export function setMembers(call, parties) {
  if (!Array.isArray(parties)) return;
  call.members.clear();
  for (const p of parties) {
    if (p && typeof p.user === 'string' && p.user && p.user !== myUser()) call.members.set(p.user, p);
  }
}

export function onMemberJoined(msg) {
  const call = S.call;
  const p = msg.member;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !p || !p.user || p.user === myUser()) return;
  const fresh = !call.members.has(p.user);
  call.members.set(p.user, p);
  call.invited.delete(p.user);
  const t = tiles.pin(p.user);
  t.node.classList.remove('invited');
  if (!t.stream) tiles.setStatusText(p.user, 'Connecting…');
  renderCallTitle(call);
  if (fresh) toast(call.room ? `${p.user} joined ${call.room}` : `${p.user} joined the call`);
  // Newcomers assume everyone sends audio and video until told otherwise.
  if (!call.audioOn || (call.video && !call.videoOn)) sendMediaState(call, { force: true });
  renderFloor(call);
}

export function onMemberLeft(msg) {
  const call = S.call;
  const user = msg.user;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !user || user === myUser()) return;
  call.members.delete(user);
  call.invited.delete(user);
  tiles.remove(user);
  if (!call.room && call.peer === user && call.members.size) call.peer = call.members.keys().next().value;
  renderCallTitle(call);
  toast(memberLeftText(call, user, msg.reason));
  renderFloor(call);
}

function memberLeftText(call, user, reason) {
  switch (reason) {
    case 'declined':
    case 'declined_elsewhere':
      return `${user} declined`;
    case 'busy':
      return `${user} is busy`;
    case 'no_answer':
      return `${user} did not answer`;
    case 'connection_lost':
      return `${user} lost the connection`;
    case 'failed':
      return `${user}'s connection failed`;
    default:
      return call.room ? `${user} left ${call.room}` : `${user} left the call`;
  }
}

export function toggleAddPanel() {
  const open = el.addPanel.hidden;
  if (open) {
    el.devicesPanel.hidden = true;
    el.devices.setAttribute('aria-expanded', 'false');
    setFormError(el.addError, '');
  }
  el.addPanel.hidden = !open;
  el.add.setAttribute('aria-expanded', String(open));
  if (open) setTimeout(() => el.addTo.focus(), 0);
}

export function closeAddPanel() {
  el.addPanel.hidden = true;
  el.add.setAttribute('aria-expanded', 'false');
}

/** Invites another user into the running call. */
export async function addPerson(toRaw) {
  const call = S.call;
  setFormError(el.addError, '');
  if (!call || call.phase !== 'in-call' || call.room || !call.callId) return;
  const to = normalizeId(toRaw);
  el.addTo.value = to;
  let problem = '';
  if (!validId(to)) problem = 'Enter the user name of the person to add.';
  else if (to === myUser()) problem = 'You are already in this call.';
  else if (call.members.has(to)) problem = `${to} is already in this call.`;
  else if (call.invited.has(to)) problem = `${to} is already being called.`;
  else if (!S.sig || !S.sig.connected) problem = 'Not connected to the server — try again in a moment.';
  if (problem) {
    setFormError(el.addError, problem);
    el.addTo.focus();
    return;
  }
  el.addPerson.disabled = true;
  try {
    await S.sig.request({ type: 'invite', to, video: call.video, call_id: call.callId });
  } catch (err) {
    if (S.call === call) setFormError(el.addError, addErrorText(err, to));
    return;
  } finally {
    el.addPerson.disabled = false;
  }
  if (S.call !== call) return;
  if (!call.members.has(to)) {
    call.invited.add(to);
    const t = tiles.get(to);
    t.node.classList.add('invited');
    tiles.setStatusText(to, `Calling ${to}…`);
  }
  el.addTo.value = '';
  closeAddPanel();
  toast(`Calling ${to}…`);
}

function addErrorText(err, to) {
  switch (err && err.code) {
    case 'rate_limited':
      return rateLimitedText(err);
    case 'user_unknown':
      return `There is no user “${to}” on this server.`;
    case 'user_offline':
      return `${to} is offline.`;
    case 'invalid_state':
      return `Can't add ${to}: ${err.message || 'not possible right now'}.`;
    case 'call_full':
      return 'This call is full.';
    case 'not_in_call':
    case 'call_not_found':
      return 'This call has ended.';
    case 'forbidden':
      return 'Your account is not allowed to place calls.';
    case 'bad_message':
      return `Can't add “${to}”: ${err.message || 'invalid request'}.`;
    case 'disconnected':
    case 'closed':
      return `Lost the connection to the server — ${to} was not called.`;
    case 'timeout':
      return `The server did not answer — ${to} was not called.`;
    default:
      return `Could not add ${to}: ${errorText(err)}`;
  }
}
