// @ts-check
// A call's life once answered: its media session, tiles, quality, and how it ends.
import { CallSession, isScreenName } from '../call.js';
import { stopStream } from '../media.js';
import { popIn, isPoppedOut } from '../pip.js';
import { QualityMonitor } from '../quality.js';
import { stopRing } from '../ringtone.js';
import { SpeakerTracker } from '../speakers.js';
import { el, showScreen, toast, formatDuration, setQualityIndicator } from '../ui.js';
import { ViewReporter } from '../view.js';
import { sendSig } from './connection.js';
import { closeAddPanel, myUser, renderCallTitle, renderWatchers, setMembers } from './group.js';
import { endAssistUi, showAssistScreen, startAssist } from './help.js';
import { dropIncoming, showIncoming, showNextIncomingIfAny } from './incoming.js';
import { closeMovePanel, renderActiveCall } from './moving.js';
import { loadHistory } from './recent.js';
import { sendMediaState, startTimer } from './screen.js';
import { setFormError } from './signin.js';
import { S, errorText, renderState, setState, tiles } from './state.js';

export let tracksReceived = 0;

export function onAccepted(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id) return;
  if (msg.peer && msg.peer.user && msg.peer.user !== call.peer) {
    tiles.clear();
    call.peer = msg.peer.user;
  }
  setMembers(call, msg.members);
  if (call.members.size === 0) call.members.set(call.peer, msg.peer || { user: call.peer });
  call.answered();
  stopRing();
  el.screenCall.dataset.mode = 'in-call';
  for (const user of call.members.keys()) {
    tiles.pin(user);
    tiles.setStatusText(user, '');
  }
  tiles.refreshAll();
  renderCallTitle(call);
  el.hangup.setAttribute('aria-label', 'Hang up');
  if (call.direction === 'incoming') startMedia(call);
  else sendMediaState(call);
  if (call.helpOnAnswer) {
    call.helpOnAnswer = false;
    setTimeout(() => {
      if (S.call === call) startAssist(false);
    }, 300);
  }
  startTimer(call);
  renderState();
  showNextIncomingIfAny();
}

/** Creates the PeerConnections for call (caller after ack, callee after accepted). */
export function startMedia(call) {
  if (call.session || !call.callId) return;
  if (call.listening) el.screenCall.dataset.listening = 'true';
  const session = new CallSession({
    callId: call.callId,
    signaling: S.sig,
    iceServers: (S.sig && S.sig.welcome && S.sig.welcome.ice_servers) || [],
    localStream: call.stream,
    sendKinds: call.stream ? null : call.sendKinds,
  });
  call.session = session;
  session.addEventListener('track', (/** @type {CustomEvent} */ e) => {
    tracksReceived += 1;
    if (S.call !== call) return;
    const { user, track, stream, name } = e.detail;
    if (isScreenName(name)) {
      // A screen shared for help: shown in the helping view, not as a tile.
      showAssistScreen(call, track, stream);
      return;
    }
    tiles.addTrack(user, track, stream);
    if (call.view) call.view.schedule();
  });
  session.addEventListener('trackended', (/** @type {CustomEvent} */ e) => {
    if (S.call !== call) return;
    tiles.removeTrack(e.detail.user);
    if (call.view) call.view.schedule();
  });
  startCallExtras(call, session);
  session.addEventListener('connection', (/** @type {CustomEvent} */ e) => {
    if (S.call !== call) return;
    const bad = ['disconnected', 'failed'].includes(e.detail.state);
    const states = ['pub', 'sub'].map((n) => session.pcs[n] && session.pcs[n].connectionState);
    const anyBad = bad || states.some((s) => s === 'disconnected' || s === 'failed');
    el.callQuality.hidden = !anyBad;
    el.callQuality.textContent = states.includes('failed') ? 'Media connection failed' : 'Weak connection…';
  });
  session.addEventListener('mediaerror', (/** @type {CustomEvent} */ e) => {
    if (S.call !== call) return;
    toast(e.detail.message);
  });
  try {
    session.start();
  } catch (err) {
    toast(`Could not start media: ${errorText(err)}`);
  }
  for (const m of call.pending.splice(0)) routeMediaSignal(call, m);
  sendMediaState(call);
}

export function onMediaSignal(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id) return;
  if (!call.session) {
    call.pending.push(msg);
    return;
  }
  routeMediaSignal(call, msg);
}

function routeMediaSignal(call, msg) {
  if (msg.type === 'sdp') call.session.handleSdp(msg);
  else if (msg.type === 'ice') call.session.handleIce(msg);
}

export function onRemoteMedia(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id || !msg.user) return;
  if (S.auth && msg.user === S.auth.user) return;
  if (call.members.size && !call.members.has(msg.user)) return; // someone who has left
  tiles.setMedia(msg.user, { audio: msg.audio, video: msg.video });
}

export function onEnded(msg) {
  const callId = msg.call_id;
  if (!callId) return;
  S.lastEnded = { call_id: callId, reason: msg.reason, duration_ms: msg.duration_ms || 0, device: msg.device || '' };
  if (S.forgotten.delete(callId)) {
    loadHistory();
    return;
  }
  if (S.incoming.has(callId)) {
    const inc = S.incoming.get(callId);
    dropIncoming(callId);
    const who = inc.from.user;
    const text = {
      cancelled: `Missed call from ${who}`,
      no_answer: `Missed call from ${who}`,
      busy: `Missed call from ${who}`,
      answered_elsewhere: 'Answered on another device',
      declined_elsewhere: 'Declined on another device',
      declined: 'Call declined',
      failed: `Call from ${who} failed`,
      connection_lost: `Call from ${who} was lost`,
    }[msg.reason];
    if (text) toast(text);
    loadHistory();
    return;
  }
  const call = S.call;
  if (call && call.callId === callId) {
    endCurrentCall(endedText(call, msg), msg.reason);
  }
  loadHistory();
}

function endedText(call, msg) {
  const peer = call.peer;
  const outgoing = call.direction === 'outgoing';
  if (call.room && msg.reason === 'completed') return `You left ${call.room}`;
  switch (msg.reason) {
    case 'completed':
      return `Call ended · ${formatDuration(msg.duration_ms || (call.answeredAt ? Date.now() - call.answeredAt : 0))}`;
    case 'declined':
      return outgoing ? `${peer} declined` : 'Call declined';
    case 'busy':
      return outgoing ? `${peer} is busy` : `Missed call from ${peer}`;
    case 'no_answer':
      return outgoing ? 'No answer' : `Missed call from ${peer}`;
    case 'cancelled':
      return outgoing ? 'Call cancelled' : `Missed call from ${peer}`;
    case 'answered_elsewhere':
      return 'Answered on another device';
    case 'declined_elsewhere':
      return 'Declined on another device';
    case 'connection_lost':
      return 'Connection lost';
    case 'failed':
      return 'Call failed';
    case 'handed_off':
      return msg.device ? `Call moved to your ${msg.device}` : 'Call moved to your other device';
    default:
      return 'Call ended';
  }
}

/** The local side hangs up / cancels. */
export function hangup() {
  const call = S.call;
  if (!call) return;
  if (call.callId) {
    sendSig({ type: 'hangup', call_id: call.callId });
    S.forgotten.delete(call.callId);
  }
  let text;
  if (call.listening) text = 'You stopped listening';
  else if (call.room) text = `You left ${call.room}`;
  else if (call.phase === 'in-call') text = `Call ended · ${formatDuration(Date.now() - call.answeredAt)}`;
  else text = call.direction === 'outgoing' ? 'Call cancelled' : 'Call ended';
  // Keep listening for this call's `ended` so lastEnded gets the server's reason.
  endCurrentCall(text, null);
}

/** A call that never got going (media or invite error). */
export function failCall(call, text, errorNode = el.callError) {
  teardownCall(call);
  if (S.call === call) S.call = null;
  afterCall();
  setFormError(errorNode, text);
  toast(text, 6000);
}

export function endCurrentCall(text, reason) {
  const call = S.call;
  if (!call) return;
  teardownCall(call);
  S.call = null;
  afterCall();
  if (text) toast(text);
  if (reason && call.callId && !S.lastEnded) S.lastEnded = { call_id: call.callId, reason, duration_ms: 0 };
}

export function afterCall() {
  el.screenCall.hidden = true;
  el.devicesPanel.hidden = true;
  el.devices.setAttribute('aria-expanded', 'false');
  closeAddPanel();
  if (S.rest === 'signed-out') return;
  showScreen('home');
  renderActiveCall();
  if (S.incoming.size) {
    const id = S.shownIncoming || S.incoming.keys().next().value;
    S.shownIncoming = null;
    showIncoming(id); // a waiting call becomes a normal incoming call
  } else {
    setState('idle');
  }
}

/** Quality indicator, view reporting and active speaker for a call's media session. */
function startCallExtras(call, session) {
  tiles.setLocal(el.local, myUser());
  call.quality = new QualityMonitor(session, {
    onUpdate: ({ local, remote }) => {
      if (S.call !== call) return;
      setQualityIndicator(el.netQuality, local, 'Your connection');
      for (const [user, q] of Object.entries(remote)) tiles.setQuality(user, q);
    },
  });
  call.quality.start();
  call.view = new ViewReporter({
    list: () => {
      const shown = el.screenCall.dataset.video === 'true';
      const out = tiles.videos().map((v) => ({ user: v.user, video: v.video, track: session.trackName(v.track), shown }));
      // A screen shared for help plays in the helping view, at its size
      // there (0×0 while that view is hidden).
      const scr = el.assistScreen.srcObject;
      const st = scr ? scr.getVideoTracks().find((t) => t.readyState === 'live') : null;
      if (st && isScreenName(session.trackName(st))) {
        out.push({ user: session.trackUser(st), video: el.assistScreen, track: session.trackName(st), shown: true });
      }
      return out;
    },
    send: (viewTiles) => {
      if (S.call !== call || call.viewUnsupported || !call.callId) return false;
      return sendSig({ type: 'view', id: `view-${++call.viewSeq}`, call_id: call.callId, tiles: viewTiles });
    },
  });
  call.view.start();
  call.speakers = new SpeakerTracker({
    onHighlight: (user) => {
      if (S.call === call) tiles.setSpeaking(user);
    },
    onPromote: (user) => {
      if (S.call === call && user !== myUser()) tiles.promote(user);
    },
  });
}

export function stopCallExtras(call) {
  if (call.quality) call.quality.stop();
  if (call.view) call.view.stop();
  if (call.speakers) call.speakers.stop();
  call.quality = call.view = call.speakers = null;
  setQualityIndicator(el.netQuality, null);
}

export function onSpeakers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !call.speakers) return;
  call.speakers.update(msg.speakers);
}

export function onLayers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !call.session) return;
  if (typeof msg.track !== 'string' || !msg.active || typeof msg.active !== 'object') return;
  call.session.setLayers(msg.track, msg.active);
}

export function teardownCall(call) {
  call.end();
  stopRing();
  stopCallExtras(call);
  clearInterval(call.timer);
  call.timer = null;
  clearInterval(call.floorTimer);
  call.floorTimer = null;
  call.pttPressed = false;
  el.ptt.setAttribute('aria-pressed', 'false');
  el.pttPanel.hidden = true;
  el.screenCall.dataset.ptt = 'false';
  if (call.session) call.session.close();
  call.session = null;
  stopStream(call.stream);
  call.stream = null;
  if (isPoppedOut()) popIn();
  tiles.clear();
  el.localVideo.srcObject = null;
  el.callQuality.hidden = true;
  call.watchers = 0;
  renderWatchers(call);
  clearTimeout(call.resumeTimer);
  if (S.sig) S.sig.urgent = false;
  el.screenCall.dataset.listening = 'false';
  el.takeCall.hidden = true;
  el.moveTo.hidden = true;
  closeMovePanel();
  endAssistUi(call);
}
