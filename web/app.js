// Tandem web client: wires sign-in, signaling, calls and history together.

import { getInfo, devToken } from './api.js';
import {
  loadAuth, saveAuth, clearAuth, loadNames, defaultDeviceName, normalizeId, validId,
  tokenClaims, tokenExpired, claimIdentity, releaseIdentity,
} from './auth.js';
import { Signaling } from './signaling.js';
import { CallSession } from './call.js';
import { openLocalMedia, openTrack, listDevices, stopStream } from './media.js';
import { startRing, stopRing, unlockAudio } from './ringtone.js';
import { refreshHistory, clearHistory } from './history.js';
import { pipSupported, popOut, popIn, isPoppedOut } from './pip.js';
import {
  el, initUi, showScreen, setStatus, toast, showBanner, hideBanner, paintAvatar,
  formatDuration, setIcon, safePlay, Tiles,
} from './ui.js';

const S = {
  info: null, // /api/v1/info answer, null while unknown
  dev: false,
  auth: null, // {token, user, device}
  sig: null,
  conn: 'closed', // 'connecting' | 'open' | 'reconnecting' | 'closed'
  state: 'signed-out',
  call: null, // the current outgoing/active call
  incoming: new Map(), // call_id → incoming message, in arrival order
  shownIncoming: null, // call_id shown in #incoming
  lastEnded: null,
  forgotten: new Set(), // call ids torn down locally whose `ended` is still to come
};

let tiles = null;

// ---------- state and status ----------

function setState(state) {
  S.state = state;
  el.app.dataset.state = state;
  renderStatus();
}

function renderStatus() {
  const c = S.call;
  if (S.state === 'signed-out') {
    setStatus('Signed out');
    return;
  }
  if (S.conn !== 'open') {
    setStatus(S.conn === 'connecting' ? 'Connecting…' : 'Reconnecting…', 'warn');
    return;
  }
  switch (S.state) {
    case 'idle':
      setStatus('Online', 'ok');
      break;
    case 'calling':
      if (c && c.direction === 'incoming') setStatus(`Connecting to ${c.peer}…`, 'ok');
      else setStatus(c && c.ringing ? 'Ringing' : `Calling ${c ? c.peer : ''}…`, 'ok');
      break;
    case 'ringing': {
      const inc = S.incoming.get(S.shownIncoming);
      setStatus(inc ? `Incoming call from ${inc.from.user}` : 'Incoming call', 'ok');
      break;
    }
    case 'in-call':
      setStatus(c ? `In call with ${c.peer}` : 'In call', 'ok');
      break;
    default:
      setStatus(S.state);
  }
}

function errorText(err) {
  return (err && err.message) || String(err || 'Unknown error');
}

// ---------- boot ----------

async function boot() {
  initUi();
  tiles = new Tiles(el.tiles, el.screenCall);
  wire();
  el.popout.hidden = !pipSupported();
  exposeApi();
  setState('signed-out');

  const fragToken = takeFragmentToken();
  window.addEventListener('hashchange', onHashToken);
  const infoPromise = getInfo().then(
    (info) => {
      S.info = info;
      S.dev = !!(info && info.dev);
      return info;
    },
    (err) => {
      S.info = null;
      return Promise.reject(err);
    },
  );

  if (fragToken) {
    const claims = tokenClaims(fragToken);
    infoPromise.catch(() => {});
    await signIn({ token: fragToken, user: claims.sub || '', device: claims.dev || '' }, { steal: true });
    return;
  }

  const stored = loadAuth();
  let infoErr = null;
  try {
    await infoPromise;
  } catch (err) {
    infoErr = err;
  }

  if (stored && !tokenExpired(stored.token)) {
    const ok = await signIn(stored, { steal: stored.source === 'tab', quietConflict: true });
    if (ok) return;
  } else if (stored) {
    clearAuth(stored.token);
    showSignedOut('Your session has expired. Please sign in again.');
    return;
  }
  if (infoErr) {
    showSignIn();
    showBanner(`Server unreachable — ${errorText(infoErr)}. Check that Tandem is running, then try again.`);
    return;
  }
  showSignedOut();
}

/**
 * An app opening a new sign-in link in a tab that already shows Tandem
 * changes only the fragment, which does not reload the page. Take the
 * token then too, unless a call is under way.
 */
function onHashToken() {
  if (S.state === 'calling' || S.state === 'ringing' || S.state === 'in-call') return;
  const token = takeFragmentToken();
  if (!token) return;
  if (S.auth) signOut();
  const claims = tokenClaims(token);
  signIn({ token, user: claims.sub || '', device: claims.dev || '' }, { steal: true }).catch((err) => {
    showSignedOut(`Could not sign in: ${errorText(err)}.`);
  });
}

function takeFragmentToken() {
  const hash = location.hash.replace(/^#/, '');
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (!token) return null;
  params.delete('token');
  const rest = params.toString();
  try {
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  } catch {
    /* ignore */
  }
  return token;
}

// ---------- sign in / out ----------

function showSignIn(message, names) {
  setState('signed-out');
  const saved = names || loadNames();
  if (!el.signinUser.value) el.signinUser.value = saved.user || '';
  if (!el.signinDevice.value) el.signinDevice.value = saved.device || defaultDeviceName();
  el.me.hidden = true;
  showScreen('signin');
  setFormError(el.signinError, message || '');
  setTimeout(() => (el.signinUser.value ? el.signinDevice : el.signinUser).focus(), 0);
}

/** Shows the right signed-out screen for this server's mode. */
function showSignedOut(message, names) {
  if (S.dev || !S.info) {
    showSignIn(message, names);
    return;
  }
  setState('signed-out');
  el.me.hidden = true;
  el.notokenText.textContent = message
    ? `${message} Open Tandem from your app to sign in again.`
    : 'Open Tandem from your app to sign in. It hands this page a sign-in link.';
  showScreen('notoken');
}

function setFormError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

async function onSignInSubmit(ev) {
  ev.preventDefault();
  unlockAudio();
  hideBanner();
  const user = normalizeId(el.signinUser.value);
  const device = normalizeId(el.signinDevice.value) || defaultDeviceName();
  el.signinUser.value = user;
  el.signinDevice.value = device;
  if (!validId(user)) {
    setFormError(el.signinError, 'Enter a name (no spaces, up to 128 characters).');
    el.signinUser.focus();
    return;
  }
  if (!validId(device)) {
    setFormError(el.signinError, 'Enter a device name (no spaces, up to 128 characters).');
    el.signinDevice.focus();
    return;
  }
  setFormError(el.signinError, '');
  el.signinSubmit.disabled = true;
  el.signinSubmit.textContent = 'Signing in…';
  try {
    if (!S.info) {
      try {
        S.info = await getInfo();
        S.dev = !!S.info.dev;
      } catch (err) {
        throw new Error(`Server unreachable — ${errorText(err)}`);
      }
    }
    if (!S.dev) throw new Error('This server is not in development mode: sign in through your app.');
    const { token } = await devToken(user, device);
    await signIn({ token, user, device }, { steal: true });
  } catch (err) {
    setFormError(el.signinError, errorText(err));
  } finally {
    el.signinSubmit.disabled = false;
    el.signinSubmit.textContent = 'Sign in';
  }
}

/**
 * Starts a signed-in session with auth. Returns false (and shows the
 * sign-in screen) when another tab already uses this identity.
 */
async function signIn(auth, { steal = false, quietConflict = false } = {}) {
  const claims = tokenClaims(auth.token);
  const user = auth.user || claims.sub || '';
  const device = auth.device || claims.dev || '';
  const free = await claimIdentity(user, device, { steal });
  if (!free) {
    if (quietConflict) {
      showSignIn(`${user} on ${device} is signed in in another tab. Sign in here with another name or device name.`, {
        user: '',
        device: defaultDeviceName(),
      });
    }
    return false;
  }
  S.auth = { token: auth.token, user, device };
  saveAuth(S.auth);
  showMe(user, device);
  hideBanner();
  showScreen('home');
  setState('idle');
  clearHistory();
  startSignaling();
  loadHistory();
  return true;
}

function showMe(user, device) {
  el.meName.textContent = user;
  el.meDevice.textContent = device;
  paintAvatar(el.meAvatar, user);
  el.me.hidden = false;
  el.me.title = `Signed in as ${user} on ${device}`;
}

function signOut(message, { keepNames = true } = {}) {
  const token = S.auth && S.auth.token;
  const names = S.auth ? { user: S.auth.user, device: S.auth.device } : null;
  if (S.call && S.call.callId) sendSig({ type: 'hangup', call_id: S.call.callId });
  endCurrentCall(null);
  dismissAllIncoming();
  if (S.sig) {
    S.sig.stop();
    S.sig = null;
  }
  S.conn = 'closed';
  S.auth = null;
  clearAuth(token);
  releaseIdentity();
  clearHistory();
  el.signinUser.value = '';
  el.signinDevice.value = '';
  showSignedOut(message, keepNames ? names : null);
}

// ---------- signaling ----------

function startSignaling() {
  if (S.sig) S.sig.stop();
  const sig = new Signaling(S.auth.token);
  S.sig = sig;
  sig.addEventListener('state', (e) => {
    if (S.sig !== sig) return;
    S.conn = e.detail.state;
    renderStatus();
  });
  sig.addEventListener('ice_servers', (e) => {
    if (S.sig !== sig) return;
    if (S.call && S.call.session) S.call.session.updateIceServers(e.detail);
  });
  sig.addEventListener('welcome', (e) => {
    if (S.sig !== sig) return;
    const w = e.detail;
    if (w.user && w.device) showMe(w.user, w.device);
    renderStatus();
    loadHistory();
  });
  sig.addEventListener('dropped', () => {
    if (S.sig !== sig) return;
    // Calls live on the socket: a dropped socket ends them for this device.
    if (S.call) {
      if (S.call.callId) {
        S.lastEnded = { call_id: S.call.callId, reason: 'connection_lost', duration_ms: S.call.answeredAt ? Date.now() - S.call.answeredAt : 0 };
      }
      endCurrentCall('Connection lost — check your network.', null);
    }
    if (S.incoming.size) {
      dismissAllIncoming();
      toast('Connection lost — the incoming call could not be answered.');
    }
  });
  sig.addEventListener('fatal', (e) => {
    if (S.sig !== sig) return;
    S.sig = null;
    const { code, message } = e.detail;
    const text =
      code === 'token_expired'
        ? 'Your session has expired. Please sign in again.'
        : code === 'replaced'
          ? `${S.auth ? S.auth.user : 'You'} signed in on ${S.auth ? S.auth.device : 'this device'} in another window, so this one was signed out.`
          : code === 'unauthorized'
            ? `The server did not accept your sign-in${message ? ` (${message})` : ''}. Please sign in again.`
            : `Signed out: ${message || code}`;
    signOut(text);
  });
  sig.addEventListener('message', (e) => {
    if (S.sig !== sig) return;
    try {
      onMessage(e.detail);
    } catch (err) {
      console.error('tandem: failed to handle', e.detail && e.detail.type, err);
    }
  });
  sig.start();
}

function sendSig(msg) {
  return !!(S.sig && S.sig.send(msg));
}

function onMessage(msg) {
  switch (msg.type) {
    case 'incoming':
      onIncoming(msg);
      break;
    case 'ringing':
      onRinging(msg);
      break;
    case 'accepted':
      onAccepted(msg);
      break;
    case 'ended':
      onEnded(msg);
      break;
    case 'sdp':
    case 'ice':
      onMediaSignal(msg);
      break;
    case 'media':
      onRemoteMedia(msg);
      break;
    case 'error':
      onServerError(msg);
      break;
    default:
      break;
  }
}

function onServerError(msg) {
  const text = msg.message || msg.code;
  switch (msg.code) {
    case 'media_failed':
      toast(`Media problem: ${text}`);
      break;
    case 'shutting_down':
      showBanner('The server is restarting. Calls in progress continue; new calls may fail for a moment.');
      break;
    case 'not_in_call':
    case 'call_not_found':
      // A hangup or ringing that crossed an `ended`: nothing to do.
      break;
    case 'rate_limited':
      toast('Slow down: too many actions at once.');
      break;
    default:
      toast(`Server error: ${text}`);
  }
}

// ---------- outgoing calls ----------

async function placeCall(toRaw, video) {
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

  const call = newCall({ peer: to, video, direction: 'outgoing' });
  S.call = call;
  showCallScreen(call);
  setState('calling');

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
  const callId = ack && ack.call_id;
  if (!callId) {
    if (S.call === call) failCall(call, 'The server did not start the call.');
    return;
  }
  if (S.call !== call) {
    // Cancelled while the invite was on its way.
    sendSig({ type: 'hangup', call_id: callId });
    S.forgotten.add(callId);
    return;
  }
  call.callId = callId;
  startMedia(call);
}

function inviteErrorText(err, to) {
  switch (err && err.code) {
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

function newCall({ peer, video, direction, callId = null }) {
  return {
    callId,
    peer,
    video: !!video,
    direction,
    phase: 'calling', // 'calling' → 'in-call'
    ringing: false,
    stream: null,
    session: null,
    audioOn: true,
    videoOn: !!video,
    answeredAt: 0,
    timer: null,
    pending: [], // sdp/ice that arrived before the session existed
    mediaSent: { audio: true, video: !!video },
  };
}

function onRinging(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id || call.phase !== 'calling' || call.direction !== 'outgoing') return;
  if (!call.ringing) {
    call.ringing = true;
    startRing('ringback');
  }
  el.callInfo.textContent = 'Ringing…';
  tiles.setStatusText(call.peer, 'Ringing…');
  renderStatus();
}

// ---------- incoming calls ----------

function onIncoming(msg) {
  if (!msg.call_id || !msg.from || !msg.from.user || S.incoming.has(msg.call_id)) return;
  S.incoming.set(msg.call_id, msg);
  sendSig({ type: 'ringing', call_id: msg.call_id });
  if (!S.shownIncoming) showIncoming(msg.call_id);
}

function showIncoming(callId) {
  const inc = S.incoming.get(callId);
  if (!inc) return;
  S.shownIncoming = callId;
  const who = inc.from.user;
  const local = S.call;
  const waiting = !!inc.waiting || !!local;
  paintAvatar(el.incomingAvatar, who);
  el.incomingName.textContent = who;
  el.incomingKind.textContent = `Incoming ${inc.video ? 'video' : 'audio'} call${inc.from.device ? ` · ${inc.from.device}` : ''}`;
  el.incoming.classList.toggle('waiting', waiting);
  el.incomingWaiting.hidden = !waiting;
  el.incomingWaiting.textContent = local
    ? `You are in a call with ${local.peer}.`
    : 'You are in a call on another device.';
  setIcon(el.acceptIcon, inc.video ? 'video' : 'phone');
  el.acceptText.textContent = waiting ? 'End current call and accept' : '';
  el.accept.setAttribute('aria-label', waiting ? `End current call and accept ${who}` : `Accept ${inc.video ? 'video' : 'audio'} call from ${who}`);
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
function dropIncoming(callId) {
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
  if (S.state === 'ringing') setState('idle');
  else renderStatus();
  if (S.call && S.call.phase === 'calling' && S.call.ringing) startRing('ringback');
}

function dismissAllIncoming() {
  S.incoming.clear();
  S.shownIncoming = null;
  el.incoming.hidden = true;
  stopRing();
  if (S.state === 'ringing') setState(S.auth ? 'idle' : 'signed-out');
}

function declineIncoming() {
  const callId = S.shownIncoming;
  if (!callId) return;
  sendSig({ type: 'decline', call_id: callId });
  // The `ended` for it still arrives; until then nothing shows it.
  dropIncoming(callId);
}

async function acceptIncoming() {
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

  const call = newCall({ peer: inc.from.user, video: inc.video, direction: 'incoming', callId });
  S.call = call;
  showCallScreen(call);
  setState('calling');

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

function showNextIncomingIfAny() {
  if (S.shownIncoming) return;
  const next = S.incoming.keys().next();
  if (!next.done) showIncoming(next.value);
}

// ---------- call life cycle ----------

function onAccepted(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id) return;
  if (msg.peer && msg.peer.user && msg.peer.user !== call.peer) {
    tiles.clear();
    call.peer = msg.peer.user;
  }
  call.phase = 'in-call';
  call.answeredAt = Date.now();
  stopRing();
  el.screenCall.dataset.mode = 'in-call';
  el.callPeer.textContent = call.peer;
  tiles.primary = call.peer;
  tiles.setStatusText(call.peer, '');
  tiles.refreshAll();
  el.hangup.setAttribute('aria-label', 'Hang up');
  if (call.direction === 'incoming') startMedia(call);
  else sendMediaState(call);
  startTimer(call);
  setState('in-call');
  showNextIncomingIfAny();
}

/** Creates the PeerConnections for call (caller after ack, callee after accepted). */
function startMedia(call) {
  if (call.session || !call.callId) return;
  const session = new CallSession({
    callId: call.callId,
    signaling: S.sig,
    iceServers: (S.sig && S.sig.welcome && S.sig.welcome.ice_servers) || [],
    localStream: call.stream,
  });
  call.session = session;
  session.addEventListener('track', (e) => {
    if (S.call !== call) return;
    const { user, track, stream } = e.detail;
    tiles.addTrack(user, track, stream);
  });
  session.addEventListener('trackended', (e) => {
    if (S.call !== call) return;
    tiles.removeTrack(e.detail.user);
  });
  session.addEventListener('connection', (e) => {
    if (S.call !== call) return;
    const bad = ['disconnected', 'failed'].includes(e.detail.state);
    const states = ['pub', 'sub'].map((n) => session.pcs[n] && session.pcs[n].connectionState);
    const anyBad = bad || states.some((s) => s === 'disconnected' || s === 'failed');
    el.callQuality.hidden = !anyBad;
    el.callQuality.textContent = states.includes('failed') ? 'Media connection failed' : 'Weak connection…';
  });
  session.addEventListener('mediaerror', (e) => {
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

function onMediaSignal(msg) {
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

function onRemoteMedia(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id || !msg.user) return;
  if (S.auth && msg.user === S.auth.user) return;
  tiles.setMedia(msg.user, { audio: msg.audio, video: msg.video });
}

function onEnded(msg) {
  const callId = msg.call_id;
  if (!callId) return;
  S.lastEnded = { call_id: callId, reason: msg.reason, duration_ms: msg.duration_ms || 0 };
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
      return 'Call moved to another device';
    default:
      return 'Call ended';
  }
}

/** The local side hangs up / cancels. */
function hangup() {
  const call = S.call;
  if (!call) return;
  if (call.callId) {
    sendSig({ type: 'hangup', call_id: call.callId });
    S.forgotten.delete(call.callId);
  }
  let text;
  if (call.phase === 'in-call') text = `Call ended · ${formatDuration(Date.now() - call.answeredAt)}`;
  else text = call.direction === 'outgoing' ? 'Call cancelled' : 'Call ended';
  // Keep listening for this call's `ended` so lastEnded gets the server's reason.
  endCurrentCall(text, null);
}

/** A call that never got going (media or invite error). */
function failCall(call, text) {
  teardownCall(call);
  if (S.call === call) S.call = null;
  afterCall();
  setFormError(el.callError, text);
  toast(text, 6000);
}

function endCurrentCall(text, reason) {
  const call = S.call;
  if (!call) return;
  teardownCall(call);
  S.call = null;
  afterCall();
  if (text) toast(text);
  if (reason && call.callId && !S.lastEnded) S.lastEnded = { call_id: call.callId, reason, duration_ms: 0 };
}

function afterCall() {
  el.screenCall.hidden = true;
  el.devicesPanel.hidden = true;
  el.devices.setAttribute('aria-expanded', 'false');
  if (S.state === 'signed-out') return;
  showScreen('home');
  if (S.incoming.size) {
    const id = S.shownIncoming || S.incoming.keys().next().value;
    S.shownIncoming = null;
    showIncoming(id); // a waiting call becomes a normal incoming call
  } else {
    setState('idle');
  }
}

function teardownCall(call) {
  stopRing();
  clearInterval(call.timer);
  call.timer = null;
  if (call.session) call.session.close();
  call.session = null;
  stopStream(call.stream);
  call.stream = null;
  if (isPoppedOut()) popIn();
  tiles.clear();
  el.localVideo.srcObject = null;
  el.callQuality.hidden = true;
}

// ---------- call screen ----------

function showCallScreen(call) {
  const s = el.screenCall;
  s.dataset.mode = 'calling';
  s.dataset.video = String(call.video);
  el.callPeer.textContent = call.peer;
  el.callInfo.textContent = call.direction === 'outgoing' ? 'Calling…' : 'Connecting…';
  el.callQuality.hidden = true;
  tiles.clear();
  tiles.primary = call.peer;
  tiles.get(call.peer);
  tiles.setStatusText(call.peer, call.direction === 'outgoing' ? `Calling ${call.peer}…` : 'Connecting…');
  el.hangup.setAttribute('aria-label', call.direction === 'outgoing' ? 'Cancel call' : 'Hang up');
  updateMuteButtons(call);
  el.local.classList.remove('off');
  el.devicesPanel.hidden = true;
  el.devices.setAttribute('aria-expanded', 'false');
  s.hidden = false;
  setTimeout(() => {
    if (!s.hidden) el.hangup.focus();
  }, 0);
}

function attachLocal(call) {
  if (!call.stream) return;
  if (call.video && call.stream.cameraUnavailable) {
    call.videoOn = false;
    toast('No camera available — continuing with audio only.');
  }
  for (const t of call.stream.getAudioTracks()) t.enabled = call.audioOn;
  for (const t of call.stream.getVideoTracks()) t.enabled = call.videoOn;
  if (call.video) {
    el.localVideo.srcObject = call.stream;
    safePlay(el.localVideo);
  }
  updateMuteButtons(call);
}

function startTimer(call) {
  clearInterval(call.timer);
  const tick = () => {
    el.callInfo.textContent = formatDuration(Date.now() - call.answeredAt);
  };
  tick();
  call.timer = setInterval(tick, 1000);
}

function updateMuteButtons(call) {
  el.mute.setAttribute('aria-pressed', String(!call.audioOn));
  el.mute.setAttribute('aria-label', call.audioOn ? 'Mute microphone' : 'Unmute microphone');
  el.mute.title = call.audioOn ? 'Mute' : 'Unmute';
  setIcon(el.mute.firstElementChild, call.audioOn ? 'mic' : 'micOff');
  el.camera.setAttribute('aria-pressed', String(!call.videoOn));
  el.camera.setAttribute('aria-label', call.videoOn ? 'Turn camera off' : 'Turn camera on');
  el.camera.title = call.videoOn ? 'Camera off' : 'Camera on';
  setIcon(el.camera.firstElementChild, call.videoOn ? 'video' : 'videoOff');
  el.local.classList.toggle('off', !call.videoOn);
}

function sendMediaState(call) {
  if (!call.callId) return;
  const audio = call.audioOn;
  const video = call.video && call.videoOn;
  if (call.mediaSent.audio === audio && call.mediaSent.video === video) return;
  if (sendSig({ type: 'media', call_id: call.callId, audio, video })) call.mediaSent = { audio, video };
}

function toggleMute() {
  const call = S.call;
  if (!call) return;
  call.audioOn = !call.audioOn;
  if (call.stream) for (const t of call.stream.getAudioTracks()) t.enabled = call.audioOn;
  updateMuteButtons(call);
  sendMediaState(call);
}

function toggleCamera() {
  const call = S.call;
  if (!call || !call.video) return;
  if (call.stream && call.stream.getVideoTracks().length === 0) {
    toast('No camera available.');
    return;
  }
  call.videoOn = !call.videoOn;
  if (call.stream) for (const t of call.stream.getVideoTracks()) t.enabled = call.videoOn;
  updateMuteButtons(call);
  sendMediaState(call);
}

// ---------- device chooser ----------

async function toggleDevices() {
  const open = el.devicesPanel.hidden;
  el.devicesPanel.hidden = !open;
  el.devices.setAttribute('aria-expanded', String(open));
  if (open) {
    await fillDeviceLists();
    (S.call && S.call.video ? el.selectCamera : el.selectMic).focus();
  }
}

async function fillDeviceLists() {
  const call = S.call;
  const lists = await listDevices();
  const current = (kind) => {
    const t = call && call.stream && (kind === 'audio' ? call.stream.getAudioTracks()[0] : call.stream.getVideoTracks()[0]);
    try {
      return t ? t.getSettings().deviceId : '';
    } catch {
      return '';
    }
  };
  const fill = (select, items, selected, empty) => {
    select.replaceChildren();
    if (!items.length) {
      const o = new Option(empty, '');
      o.disabled = true;
      select.append(o);
      select.disabled = true;
      return;
    }
    select.disabled = false;
    for (const d of items) select.append(new Option(d.label, d.deviceId, false, d.deviceId === selected));
  };
  fill(el.selectMic, lists.audioinput, current('audio'), 'No microphone found');
  fill(el.selectCamera, lists.videoinput, current('video'), 'No camera found');
  el.fieldCamera.hidden = !(call && call.video);
}

async function switchDevice(kind, deviceId) {
  const call = S.call;
  if (!call || !call.stream || !deviceId) return;
  const old = kind === 'audio' ? call.stream.getAudioTracks()[0] : call.stream.getVideoTracks()[0];
  try {
    if (old && old.getSettings().deviceId === deviceId) return;
  } catch {
    /* ignore */
  }
  let track;
  try {
    track = await openTrack(kind, deviceId);
  } catch (err) {
    toast(errorText(err));
    fillDeviceLists().catch(() => {});
    return;
  }
  if (S.call !== call || !call.stream) {
    track.stop();
    return;
  }
  track.enabled = kind === 'audio' ? call.audioOn : call.videoOn;
  try {
    if (call.session) await call.session.replaceTrack(kind, track);
  } catch (err) {
    track.stop();
    toast(`Could not switch ${kind === 'audio' ? 'microphone' : 'camera'}: ${errorText(err)}`);
    return;
  }
  if (old) {
    call.stream.removeTrack(old);
    old.stop();
  }
  call.stream.addTrack(track);
  if (kind === 'video') {
    el.localVideo.srcObject = call.stream;
    safePlay(el.localVideo);
  }
}

// ---------- pop out ----------

async function togglePopout() {
  if (isPoppedOut()) {
    popIn();
    return;
  }
  try {
    await popOut(el.callLayer, {
      width: 380,
      height: 520,
      onMoved: () => {
        setIcon(el.popout.firstElementChild, 'popIn');
        el.popout.setAttribute('aria-label', 'Return call to the main window');
        tiles.playAll();
        safePlay(el.localVideo);
      },
      onReturn: () => {
        setIcon(el.popout.firstElementChild, 'popOut');
        el.popout.setAttribute('aria-label', 'Pop out call window');
        tiles.playAll();
        safePlay(el.localVideo);
      },
    });
  } catch (err) {
    toast(`Could not pop out: ${errorText(err)}`);
  }
}

// ---------- history ----------

let historyTimer = null;
function loadHistory() {
  if (!S.auth) return;
  clearTimeout(historyTimer);
  // Coalesce bursts (ended + welcome); the server writes history on end.
  historyTimer = setTimeout(() => {
    if (!S.auth) return;
    const token = S.auth.token;
    refreshHistory(token, (peer, video) => {
      el.callTo.value = peer;
      placeCall(peer, video);
    }).catch((err) => {
      if (S.auth && S.auth.token === token && err && err.status === 401) {
        signOut('Your session has expired. Please sign in again.');
      }
    });
  }, 250);
}

// ---------- wiring ----------

function wire() {
  el.signinForm.addEventListener('submit', (ev) => {
    onSignInSubmit(ev).catch((err) => setFormError(el.signinError, errorText(err)));
  });
  el.signout.addEventListener('click', () => signOut(''));
  el.bannerClose.addEventListener('click', hideBanner);

  el.callForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    placeCall(el.callTo.value, true).catch((err) => toast(errorText(err)));
  });
  el.callAudio.addEventListener('click', () => {
    placeCall(el.callTo.value, false).catch((err) => toast(errorText(err)));
  });
  el.callTo.addEventListener('input', () => setFormError(el.callError, ''));
  el.historyRefresh.addEventListener('click', loadHistory);

  el.accept.addEventListener('click', () => {
    acceptIncoming().catch((err) => toast(errorText(err)));
  });
  el.decline.addEventListener('click', declineIncoming);

  el.hangup.addEventListener('click', hangup);
  el.mute.addEventListener('click', toggleMute);
  el.camera.addEventListener('click', toggleCamera);
  el.devices.addEventListener('click', () => {
    toggleDevices().catch((err) => toast(errorText(err)));
  });
  el.popout.addEventListener('click', () => {
    togglePopout().catch((err) => toast(errorText(err)));
  });
  el.selectMic.addEventListener('change', () => {
    switchDevice('audio', el.selectMic.value).catch((err) => toast(errorText(err)));
  });
  el.selectCamera.addEventListener('change', () => {
    switchDevice('video', el.selectCamera.value).catch((err) => toast(errorText(err)));
  });
  el.screenCall.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !el.devicesPanel.hidden) {
      el.devicesPanel.hidden = true;
      el.devices.setAttribute('aria-expanded', 'false');
      el.devices.focus();
    }
  });
  el.tiles.addEventListener('click', () => {
    if (!el.devicesPanel.hidden) {
      el.devicesPanel.hidden = true;
      el.devices.setAttribute('aria-expanded', 'false');
    }
  });
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', () => {
      if (!el.devicesPanel.hidden) fillDeviceLists().catch(() => {});
    });
  }

  window.addEventListener('online', () => S.sig && S.sig.retryNow());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && S.state === 'idle') loadHistory();
  });
  window.addEventListener('pagehide', () => {
    // Leaving the page: end the call cleanly rather than as a lost connection.
    if (S.call && S.call.callId) sendSig({ type: 'hangup', call_id: S.call.callId });
  });
  window.addEventListener('unhandledrejection', (ev) => {
    console.error('tandem: unhandled', ev.reason);
    toast(`Something went wrong: ${errorText(ev.reason)}`);
    ev.preventDefault();
  });
}

// ---------- test / automation surface ----------

function exposeApi() {
  const api = {
    get state() {
      return S.state;
    },
    get callId() {
      if (S.call) return S.call.callId;
      return S.shownIncoming || null;
    },
    get pcs() {
      const s = S.call && S.call.session;
      return s ? { pub: s.pcs.pub, sub: s.pcs.sub } : null;
    },
    get lastEnded() {
      return S.lastEnded;
    },
    get user() {
      return S.auth ? S.auth.user : null;
    },
    get device() {
      return S.auth ? S.auth.device : null;
    },
    get connected() {
      return !!(S.sig && S.sig.connected);
    },
    async stats() {
      const s = S.call && S.call.session;
      if (!s) return { framesDecoded: 0, audioPacketsReceived: 0, audioBytesReceived: 0 };
      return s.stats();
    },
    call: (to, video = true) => placeCall(to, video),
    accept: () => acceptIncoming(),
    decline: () => declineIncoming(),
    hangup: () => hangup(),
  };
  Object.defineProperty(window, 'tandem', { value: api, configurable: true });
}

boot().catch((err) => {
  console.error('tandem: start-up failed', err);
  showSignIn();
  showBanner(`Tandem could not start: ${errorText(err)}`);
});
