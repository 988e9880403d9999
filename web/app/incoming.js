// @ts-check
// Calls that ring this device: the incoming screen, call waiting, answering and declining.
import { closeNotification, notifyHidden } from './pwa.js';
import { displayName } from './account.js';
import { openLocalMedia, stopStream } from '../media.js';
import { startRing, stopRing, unlockAudio } from '../ringtone.js';
import { el, toast, paintAvatar, setIcon } from '../ui.js';
import { sendSig } from './connection.js';
import { listNames, myUser } from './group.js';
import { failCall, teardownCall } from './lifecycle.js';
import { attachLocal, showCallScreen } from './screen.js';
import { Call } from './callstate.js';
import { S, errorText, renderStatus, setCall, setState } from './state.js';

export function onIncoming(msg) {
  if (!msg.call_id || !msg.from || !msg.from.user || S.incoming.has(msg.call_id)) return;
  S.incoming.set(msg.call_id, msg);
  sendSig({ type: 'ringing', call_id: msg.call_id });
  if (!S.shownIncoming) showIncoming(msg.call_id);
  if (S.answerOnRing === msg.call_id && S.shownIncoming === msg.call_id) {
    // Answer on the notification opened the app: the call rings here now.
    S.answerOnRing = null;
    acceptIncoming();
    return;
  }
  notifyHidden(msg, displayName(msg.from.user));
}

export function showIncoming(callId) {
  const inc = S.incoming.get(callId);
  if (!inc) return;
  S.shownIncoming = callId;
  const who = inc.from.user;
  const local = S.call;
  const waiting = !!inc.waiting || !!local;
  paintAvatar(el.incomingAvatar, displayName(who));
  el.incomingName.textContent = displayName(who);
  el.incomingStranger.hidden = !inc.stranger;
  el.incomingStranger.textContent = inc.stranger ? `${who} is not one of your people.` : '';
  const others = (Array.isArray(inc.members) ? inc.members : [])
    .map((p) => p && p.user)
    .filter((u) => u && u !== who && u !== myUser());
  el.incomingKind.textContent = others.length
    ? `${who} invites you to a call with ${listNames(others)}`
    : `Incoming ${inc.video ? 'video' : 'audio'} call${inc.from.device ? ` · ${inc.from.device}` : ''}`;
  el.incoming.classList.toggle('waiting', waiting);
  el.incomingWaiting.hidden = !waiting;
  el.incomingWaiting.textContent = local
    ? `You are in a call with ${local.peer}.`
    : 'You are in a call on another device.';
  setIcon(el.acceptIcon, inc.video ? 'video' : 'phone');
  el.acceptText.textContent = waiting ? 'End current call and accept' : '';
  el.accept.setAttribute(
    'aria-label',
    waiting
      ? `End current call and accept ${who}`
      : `Accept ${inc.video ? 'video' : 'audio'} call from ${who}${others.length ? ` with ${listNames(others)}` : ''}`,
  );
  el.decline.setAttribute('aria-label', `Decline call from ${who}`);
  el.accept.disabled = false;
  el.decline.disabled = false;
  el.incoming.hidden = false;
  if (!local) {
    setState('ringing');
    startRing('incoming');
  } else {
    startRing('waiting');
    renderStatus();
  }
  setTimeout(() => {
    if (!el.incoming.hidden) el.accept.focus();
  }, 0);
}

/** Removes an incoming call from the screen and shows the next one, if any. */
export function dropIncoming(callId) {
  closeNotification(callId);
  S.incoming.delete(callId);
  if (S.shownIncoming !== callId) return;
  S.shownIncoming = null;
  el.incoming.hidden = true;
  stopRing();
  const next = S.incoming.keys().next();
  if (!next.done) {
    showIncoming(next.value);
    return;
  }
  if (S.rest === 'ringing') setState('idle');
  else renderStatus();
  if (S.call && S.call.phase === 'calling' && S.call.ringing) startRing('ringback');
}

export function dismissAllIncoming() {
  S.incoming.clear();
  S.shownIncoming = null;
  el.incoming.hidden = true;
  stopRing();
  if (S.rest === 'ringing') setState(S.auth ? 'idle' : 'signed-out');
}

export function declineIncoming() {
  const callId = S.shownIncoming;
  if (!callId) return;
  sendSig({ type: 'decline', call_id: callId });
  // The `ended` for it still arrives; until then nothing shows it.
  dropIncoming(callId);
}

export async function acceptIncoming() {
  unlockAudio();
  const callId = S.shownIncoming;
  const inc = callId && S.incoming.get(callId);
  if (!inc) return;
  if (!S.sig || !S.sig.connected) {
    toast('Not connected to the server.');
    return;
  }
  el.accept.disabled = true;
  el.decline.disabled = true;
  stopRing();

  const previous = S.call;
  const endCurrent = !!inc.waiting || !!previous;
  if (previous) {
    // Call waiting: the server ends the current call (completed) before accepting.
    if (previous.callId) S.forgotten.add(previous.callId);
    teardownCall(previous);
    S.call = null;
  }

  S.incoming.delete(callId);
  S.shownIncoming = null;
  el.incoming.hidden = true;
  closeNotification(callId);

  const call = new Call({ peer: inc.from.user, video: inc.video, direction: 'incoming', callId });
  setCall(call);
  showCallScreen(call);

  try {
    call.stream = await openLocalMedia(inc.video);
  } catch (err) {
    if (S.call === call) {
      sendSig({ type: 'decline', call_id: callId });
      S.forgotten.add(callId);
      if (previous && previous.callId) sendSig({ type: 'hangup', call_id: previous.callId });
      failCall(call, `${errorText(err)} The call was declined.`);
    }
    return;
  }
  if (S.call !== call) {
    stopStream(call.stream);
    return;
  }
  attachLocal(call);

  const req = { type: 'accept', call_id: callId };
  if (endCurrent) req.end_current = true;
  try {
    await S.sig.request(req);
  } catch (err) {
    if (S.call !== call || call.phase === 'in-call') return; // `accepted` already arrived
    if (err && err.code === 'timeout') return; // keep waiting for `accepted`
    if (previous && previous.callId) sendSig({ type: 'hangup', call_id: previous.callId });
    const text =
      err && err.code === 'call_not_found'
        ? `The call from ${call.peer} has ended.`
        : `Could not answer: ${errorText(err)}`;
    failCall(call, text);
    return;
  }
  showNextIncomingIfAny();
}

export function showNextIncomingIfAny() {
  if (S.shownIncoming) return;
  const next = S.incoming.keys().next();
  if (!next.done) showIncoming(next.value);
}
