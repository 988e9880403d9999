// @ts-check
// Placing a call: ringing the callee's devices, ringback, and answers from the other side.
import { normalizeId, validId } from '../auth.js';
import { openLocalMedia, stopStream } from '../media.js';
import { startRing, unlockAudio } from '../ringtone.js';
import { el } from '../ui.js';
import { sendSig } from './connection.js';
import { failCall, startMedia } from './lifecycle.js';
import { attachLocal, showCallScreen } from './screen.js';
import { setFormError } from './signin.js';
import { Call } from './callstate.js';
import { S, errorText, renderStatus, setCall, tiles } from './state.js';

export async function placeCall(toRaw, video, { help = false } = {}) {
  unlockAudio();
  setFormError(el.callError, '');
  const to = normalizeId(toRaw);
  if (!S.auth) return;
  if (!validId(to)) {
    setFormError(el.callError, 'Enter the user name of the person to call.');
    el.callTo.focus();
    return;
  }
  if (to === S.auth.user) {
    setFormError(el.callError, "You can't call yourself. Sign in as someone else in another tab to try a call.");
    return;
  }
  if (S.call) {
    setFormError(el.callError, 'You are already in a call.');
    return;
  }
  if (!S.sig || !S.sig.connected) {
    setFormError(el.callError, 'Not connected to the server yet — try again in a moment.');
    return;
  }
  el.callTo.value = to;

  const call = new Call({ peer: to, video, direction: 'outgoing' });
  call.helpOnAnswer = help;
  setCall(call);
  showCallScreen(call);

  try {
    call.stream = await openLocalMedia(video);
  } catch (err) {
    if (S.call === call) failCall(call, errorText(err));
    return;
  }
  if (S.call !== call) {
    stopStream(call.stream);
    return;
  }
  attachLocal(call);

  let ack;
  try {
    ack = await S.sig.request({ type: 'invite', to, video });
  } catch (err) {
    if (S.call === call) failCall(call, inviteErrorText(err, to));
    return;
  }
  if (adoptCallId(call, ack, 'The server did not start the call.')) startMedia(call);
}

// adoptCallId takes the call id from an invite's or join's ack. It returns
// false, tidying up, when there is none or the user gave up meanwhile.
export function adoptCallId(call, ack, failText, errorEl) {
  const callId = ack && ack.call_id;
  if (!callId) {
    if (S.call === call) failCall(call, failText, errorEl);
    return false;
  }
  if (S.call !== call) {
    // Abandoned while the request was on its way.
    sendSig({ type: 'hangup', call_id: callId });
    S.forgotten.add(callId);
    return false;
  }
  call.callId = callId;
  return true;
}

/** An invite over a limit: the server says what and when, in words. */
export function rateLimitedText(err) {
  const m = (err && err.message) || 'too many calls; try again later';
  return m.charAt(0).toUpperCase() + m.slice(1) + '.';
}

function inviteErrorText(err, to) {
  switch (err && err.code) {
    case 'rate_limited':
      return rateLimitedText(err);
    case 'user_unknown':
      return `There is no user “${to}” on this server.`;
    case 'user_offline':
      return `${to} is offline. They will see your missed call.`;
    case 'busy':
      return 'You are already in a call.';
    case 'bad_message':
      return `Can't call “${to}”: ${err.message || 'invalid request'}.`;
    case 'forbidden':
      return 'Your account is not allowed to place calls.';
    case 'disconnected':
    case 'closed':
      return 'Lost the connection to the server — the call was not placed.';
    case 'timeout':
      return 'The server did not answer — the call was not placed.';
    default:
      return `Could not call ${to}: ${errorText(err)}`;
  }
}

export function onRinging(msg) {
  const call = S.call;
  if (call && call.callId === msg.call_id && call.phase === 'in-call') {
    // Someone invited into the running call: `ringing` names only the device.
    if (call.invited.size === 1) tiles.setStatusText([...call.invited][0], 'Ringing…');
    return;
  }
  if (!call || call.callId !== msg.call_id || call.phase !== 'calling' || call.direction !== 'outgoing') return;
  if (!call.ringing) {
    call.ringing = true;
    startRing('ringback');
  }
  el.callInfo.textContent = 'Ringing…';
  tiles.setStatusText(call.peer, 'Ringing…');
  renderStatus();
}
