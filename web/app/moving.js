// @ts-check
// Moving a call between one's own devices: pulling it here, sending it to another device, listening along.
import { openLocalMedia, stopStream } from '../media.js';
import { startRing, stopRing, unlockAudio } from '../ringtone.js';
import { el, toast } from '../ui.js';
import { sendSig } from './connection.js';
import { closeAddPanel, listNames, myUser, renderCallTitle, setMembers } from './group.js';
import { afterCall, failCall, startMedia, stopCallExtras, teardownCall } from './lifecycle.js';
import { attachLocal, sendMediaState, showCallScreen, startTimer } from './screen.js';
import { Call } from './callstate.js';
import { S, errorText, renderState, setCall, tiles } from './state.js';

export function onResumed(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id) {
    // The server kept a call this device no longer has (the page was
    // reloaded): leave it rather than leave the others talking to nobody.
    sendSig({ type: 'hangup', call_id: msg.call_id });
    return;
  }
  const wasOffline = call.offline;
  call.offline = false;
  clearTimeout(call.resumeTimer);
  if (S.sig) S.sig.urgent = false;
  el.callQuality.hidden = true;
  setMembers(call, msg.members);
  renderCallTitle(call);
  sendMediaState(call, { force: true });
  if (call.view) call.view.schedule();
  if (msg.rejoin) {
    // The node that held the call's media went away and another took the
    // call over: connect the media to it anew.
    stopCallExtras(call);
    if (call.session) call.session.close();
    call.session = null;
    for (const p of msg.members || []) if (p && p.user !== myUser()) tiles.removeTrack(p.user);
    startMedia(call);
  } else if (call.session) {
    // The network that dropped the socket may have moved the media path too.
    call.session.restartIce();
  }
  if (wasOffline) toast('Reconnected');
}

export function onActiveCall(msg) {
  S.activeCall = msg.call_id ? msg : null;
  if (!S.activeCall || (S.pushOffer && S.pushOffer.call_id !== msg.call_id)) S.pushOffer = null;
  renderActiveCall();
  if (S.call) renderMoveMenu();
}

/** Others in the user's call, by name, for the "move here" card. */
function activeCallPeers(a) {
  const names = (a.members || []).map((p) => p && p.user).filter((u) => u && u !== myUser());
  return names.length ? listNames(names) : 'someone';
}

/** Shows, on the home screen, the call the user holds on another device. */
export function renderActiveCall() {
  const a = S.activeCall;
  const show = !!a && !S.call && S.rest !== 'signed-out' && !!S.auth && a.device !== S.auth.device;
  el.activeCall.hidden = !show;
  if (!show) return;
  const offer = S.pushOffer && S.pushOffer.call_id === a.call_id ? S.pushOffer : null;
  el.activeCallText.textContent = offer
    ? `Your ${offer.device} is sending you the call with ${activeCallPeers(a)}`
    : `On a call with ${activeCallPeers(a)} on your ${a.device}`;
  el.moveHere.querySelector('.btn-text').textContent = offer ? 'Take the call' : 'Move here';
  el.listenHere.hidden = !!offer;
  el.activeCallDismiss.hidden = !offer;
  el.moveHere.disabled = el.listenHere.disabled = S.moving;
}

/** Pulls the user's call to this device, or (listen) joins it as a listener. */
export async function pullCall(listen) {
  const a = S.activeCall;
  if (!a || !S.sig || !S.sig.connected || S.moving) return;
  unlockAudio();
  const callId = a.call_id;
  const current = S.call;
  if (current) {
    // Only a device listening along may take the call it listens to. It
    // keeps its leg, and with it the others' pictures and sound: the
    // server lets that leg take over once it sends too.
    if (listen || !current.listening || current.callId !== callId) return;
  }
  S.moving = true;
  S.pushOffer = null;
  renderActiveCall();
  if (!listen) {
    // The camera and microphone start opening now, while the server
    // answers: a camera can take a second to give its first frame.
    dropEarlyMedia();
    const early = { callId, video: !!a.video, promise: openLocalMedia(!!a.video) };
    early.promise.catch(() => {}); // reported when the call needs it
    S.earlyMedia = early;
  }
  const req = { type: 'handoff', call_id: callId };
  if (listen) req.listen = true;
  if (current) req.keep = true;
  try {
    await S.sig.request(req);
  } catch (err) {
    S.moving = false;
    dropEarlyMedia();
    renderActiveCall();
    toast(`Could not ${listen ? 'listen here' : 'move the call here'}: ${errorText(err)}`, 6000);
  }
  // `handoff` started follows.
}

/** Releases the camera and microphone opened for a move that did not happen. */
function dropEarlyMedia() {
  const early = S.earlyMedia;
  S.earlyMedia = null;
  if (early) early.promise.then(stopStream, () => {});
}

/** The local media for a call moved here: opened at the click, or now. */
function takeEarlyMedia(callId, video) {
  const early = S.earlyMedia;
  S.earlyMedia = null;
  if (early && early.callId === callId && early.video === video) return early.promise;
  if (early) early.promise.then(stopStream, () => {});
  return openLocalMedia(video);
}

/** Sends this device's call to the user's device named device. */
export async function pushCall(device) {
  const call = S.call;
  closeMovePanel();
  if (!call || !call.callId || !S.sig) return;
  try {
    await S.sig.request({ type: 'handoff', call_id: call.callId, device });
    toast(`Sending the call to your ${device}…`);
  } catch (err) {
    toast(`Could not send the call to your ${device}: ${errorText(err)}`, 6000);
  }
}

export function onHandoff(msg) {
  if (!msg.call_id) return;
  switch (msg.state) {
    case 'offer':
      if (S.call) {
        toast(`Your ${msg.device} wants to send you its call: end this call first.`, 6000);
        return;
      }
      S.pushOffer = msg;
      if (!S.activeCall || S.activeCall.call_id !== msg.call_id) {
        S.activeCall = { call_id: msg.call_id, device: msg.device, video: msg.video, members: msg.members || [] };
      }
      renderActiveCall();
      startRing('incoming');
      setTimeout(() => {
        if (!S.incoming.size) stopRing();
      }, 3000);
      return;
    case 'started': {
      S.moving = false;
      const cur = S.call;
      if (cur && cur.callId === msg.call_id && cur.listening && !msg.listen) {
        if (msg.keep) {
          takeListenedCall(cur, msg).catch((err) => toast(errorText(err)));
          return;
        }
        // The server closed the listening leg: connect anew.
        teardownCall(cur);
        S.call = null;
      }
      startMovedCall(msg).catch((err) => toast(errorText(err)));
      return;
    }
    case 'done': {
      const call = S.call;
      if (!call || call.callId !== msg.call_id) return;
      call.moving = false;
      el.callInfo.textContent = call.listening ? `Listening · the call stays on your ${call.from}` : '';
      if (!call.listening) toast(`The call is on this ${S.auth ? S.auth.device : 'device'} now`);
      renderCallTitle(call);
      return;
    }
    case 'failed': {
      S.moving = false;
      dropEarlyMedia();
      const call = S.call;
      const why = msg.message ? `: ${msg.message}` : '';
      if (call && call.callId === msg.call_id && call.moving) {
        // This device was to take the call; it stays where it was.
        teardownCall(call);
        S.call = null;
        afterCall();
        toast(`The call stayed on your ${call.from}${why}`, 6000);
      } else if (msg.device) {
        toast(`The call could not move to your ${msg.device}${why}. It stays here.`, 6000);
      }
      renderActiveCall();
      return;
    }
  }
}

/**
 * This device listened along and now takes the call on the same leg: it
 * starts sending its camera and microphone there, and the others' media,
 * which it receives already, never stops.
 */
async function takeListenedCall(call, msg) {
  call.listening = false;
  call.moving = true;
  call.video = !!msg.video;
  el.screenCall.dataset.listening = 'false';
  el.screenCall.dataset.video = String(call.video);
  el.takeCall.hidden = true;
  tiles.refreshAll();
  renderCallTitle(call);
  el.callInfo.textContent = `Moving the call from your ${call.from}…`;
  const stream = await movedCallMedia(call, takeEarlyMedia(call.callId, call.video));
  if (!stream) return;
  call.session.sendStream(stream);
  sendMediaState(call, { force: true });
}

/**
 * Waits for the camera and microphone of a call moving here and shows
 * them; null when they failed (the call stays on the other device, whose
 * server-side handoff times out) or the call went meanwhile.
 */
async function movedCallMedia(call, media) {
  let stream;
  try {
    stream = await media;
  } catch (err) {
    if (S.call === call) failCall(call, `${errorText(err)} The call stays on your ${call.from}.`);
    return null;
  }
  if (S.call !== call || !call.session) {
    stopStream(stream);
    return null;
  }
  call.stream = stream;
  attachLocal(call);
  return stream;
}

/** The server lets this device take (or listen to) the user's call: connect its media. */
async function startMovedCall(msg) {
  if (S.call) return;
  const listen = !!msg.listen;
  const others = (msg.members || []).filter((p) => p && p.user && p.user !== myUser());
  const call = new Call({ peer: others.length ? others[0].user : '', video: !!msg.video, direction: 'incoming', callId: msg.call_id });
  call.listening = listen;
  call.moving = !listen;
  call.from = msg.device || 'other device';
  setMembers(call, msg.members);
  setCall(call);
  el.activeCall.hidden = true;
  showCallScreen(call);
  let media = null;
  if (!listen) {
    // The leg connects while the camera opens (CallSession sendKinds):
    // the others' media reaches this device at once, and its own starts
    // the moment the camera gives it.
    media = takeEarlyMedia(call.callId, call.video);
    call.sendKinds = call.video ? ['audio', 'video'] : ['audio'];
  }
  call.answered();
  el.screenCall.dataset.mode = 'in-call';
  el.screenCall.dataset.listening = String(listen);
  el.takeCall.hidden = !listen;
  for (const user of call.members.keys()) {
    tiles.pin(user);
    tiles.setStatusText(user, '');
  }
  tiles.refreshAll();
  renderCallTitle(call);
  el.callInfo.textContent = listen ? `Listening · the call stays on your ${call.from}` : `Moving the call from your ${call.from}…`;
  startMedia(call);
  startTimer(call);
  renderState();
  if (!media) return;
  const stream = await movedCallMedia(call, media);
  if (stream) await call.session.attachStream(stream);
}

/** The "move to" control: shown on the device holding the call when it has somewhere to go. */
export function renderMoveMenu() {
  const call = S.call;
  const a = S.activeCall;
  const holds = !!call && !call.listening && !call.moving && call.phase === 'in-call' && !call.room &&
    !!a && a.call_id === call.callId && !!S.auth && a.device === S.auth.device;
  el.moveTo.hidden = !holds;
  if (!holds) {
    closeMovePanel();
    return;
  }
  const others = (a.online || []).filter((d) => d !== S.auth.device);
  el.moveList.replaceChildren(
    ...others.map((d) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn';
      b.dataset.device = d;
      b.textContent = (a.listening || []).includes(d) ? `${d} (listening)` : d;
      b.addEventListener('click', () => pushCall(d));
      return b;
    }),
  );
}

export function toggleMovePanel() {
  const open = el.movePanel.hidden;
  el.movePanel.hidden = !open;
  el.moveTo.setAttribute('aria-expanded', String(open));
  if (open) {
    closeAddPanel();
    el.devicesPanel.hidden = true;
  }
}

export function closeMovePanel() {
  el.movePanel.hidden = true;
  el.moveTo.setAttribute('aria-expanded', 'false');
}
