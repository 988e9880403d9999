// @ts-check
// Tandem web client: wires sign-in, signaling, calls and history together.

import { getInfo, devToken, getAssistLog, exportMyData, eraseMyData } from './api.js';
import {
  loadAuth, saveAuth, clearAuth, loadNames, defaultDeviceName, normalizeId, validId,
  tokenClaims, tokenExpired, claimIdentity, releaseIdentity, authFromToken, sameIdentity,
} from './auth.js';
import { Signaling } from './signaling.js';
import { CallSession, isScreenName } from './call.js';
import { T as AT, TOOLS, encode as encodeAssist, decode as decodeAssist, isControl, keysym, AnnotationLayer, videoContentRect } from './assist.js';
import { QualityMonitor } from './quality.js';
import { ViewReporter } from './view.js';
import { SpeakerTracker } from './speakers.js';
import { openLocalMedia, openTrack, listDevices, stopStream, liveLocalTracks } from './media.js';
import { startRing, stopRing, unlockAudio } from './ringtone.js';
import { refreshHistory, clearHistory } from './history.js';
import { pipSupported, popOut, popIn, isPoppedOut } from './pip.js';
import {
  el, initUi, showScreen, setStatus, toast, showBanner, hideBanner, paintAvatar,
  formatDuration, setIcon, safePlay, Tiles, setQualityIndicator,
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
  lastExport: null, // the last archive downloaded, for tests
  forgotten: new Set(), // call ids torn down locally whose `ended` is still to come
  autoRoom: null, // {name, ptt} from a shared room link, joined once signed in
  activeCall: null, // the user's call as the server last described it (active_call), or null
  pushOffer: null, // a handoff offer: another device of the user sends its call here
  moving: false, // a pull or listen request is under way
  earlyMedia: null, // {callId, video, promise}: local media opened at a move's click
  trace: [], // the last messages and state changes, for a person (or a test) to read
};

/** Notes an event in S.trace, keeping the last 60. */
function trace(what) {
  S.trace.push(`${(performance.now() / 1000).toFixed(3)} ${what}`);
  if (S.trace.length > 60) S.trace.splice(0, S.trace.length - 60);
}

// Room names (docs/protocol.md, "Group calls and rooms").
const ROOM_NAME = /^[a-z0-9._-]{1,64}$/;

let tiles = null;
let tracksReceived = 0;

// ---------- state and status ----------

function setState(state) {
  if (S.state !== state) trace(`state ${state}`);
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
      if (c && c.room) setStatus(`Joining ${c.room}…`, 'ok');
      else if (c && c.direction === 'incoming') setStatus(`Connecting to ${c.peer}…`, 'ok');
      else setStatus(c && c.ringing ? 'Ringing' : `Calling ${c ? c.peer : ''}…`, 'ok');
      break;
    case 'ringing': {
      const inc = S.incoming.get(S.shownIncoming);
      setStatus(inc ? `Incoming call from ${inc.from.user}` : 'Incoming call', 'ok');
      break;
    }
    case 'in-call':
      if (c && c.listening) setStatus(`Listening along with your ${c.from}`, 'ok');
      else if (c && c.moving) setStatus(`Moving the call from your ${c.from}…`, 'ok');
      else if (c && c.room) setStatus(`In room ${c.room}${c.mode === 'ptt' ? ' · walkie-talkie' : ''}`, 'ok');
      else setStatus(c ? `In call with ${listNames(c.members.size ? [...c.members.keys()] : [c.peer])}` : 'In call', 'ok');
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

  S.autoRoom = roomFromUrl();
  if (S.autoRoom) {
    el.roomName.value = S.autoRoom.name;
    el.roomPtt.checked = S.autoRoom.ptt;
  }
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
    const next = authFromToken(fragToken);
    infoPromise.catch(() => {});
    const current = loadAuth();
    if (!current || tokenExpired(current.token) || sameIdentity(current, next) || (await confirmSwitch(current, next))) {
      await signIn(next, { steal: true });
      return;
    }
    // Keep whoever is signed in: carry on as if there were no link.
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
async function onHashToken() {
  if (busyWithCall()) return;
  const token = takeFragmentToken();
  if (!token) return;
  const next = authFromToken(token);
  if (S.auth && sameIdentity(S.auth, next)) {
    // The same user and device: a fresh token, nothing to ask.
    S.auth = { ...S.auth, token };
    saveAuth(S.auth);
    if (S.sig) S.sig.token = token;
    return;
  }
  if (S.auth) {
    if (!(await confirmSwitch(S.auth, next)) || busyWithCall()) return;
    signOut();
  }
  signIn(next, { steal: true }).catch((err) => {
    showSignedOut(`Could not sign in: ${errorText(err)}.`);
  });
}

function busyWithCall() {
  return S.state === 'calling' || S.state === 'ringing' || S.state === 'in-call';
}

let settleSwitch = null; // answers the question on screen, if any

/**
 * Asks whether a sign-in link for `next` may replace `current`, who is
 * signed in here. Resolves true to switch, false to keep `current`.
 */
function confirmSwitch(current, next) {
  if (settleSwitch) settleSwitch(false); // a newer link replaces the question
  const sameUser = current.user === next.user;
  const name = (a) => (a.user ? (sameUser ? `${a.user} on ${a.device}` : a.user) : 'someone else');
  el.switchUserText.textContent = `You are signed in as ${name(current)}. Sign in as ${name(next)} instead?`;
  el.switchUserYes.textContent = `Sign in as ${name(next)}`;
  el.switchUserNo.textContent = `Stay signed in as ${name(current)}`;
  el.switchUser.hidden = false;
  el.switchUserNo.focus();
  return new Promise((resolve) => {
    settleSwitch = (yes) => {
      settleSwitch = null;
      el.switchUser.hidden = true;
      resolve(yes);
    };
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
  S.activeCall = S.pushOffer = null;
  S.moving = false;
  el.activeCall.hidden = true;
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
  sig.onSent = (m) => {
    if (m.type !== 'ice' && m.type !== 'view' && m.type !== 'ping') trace(`> ${m.type} ${m.call_id || ''} ${m.kind || (m.listen ? 'listen' : '') || (m.keep ? 'keep' : '')}`.trimEnd());
  };
  sig.addEventListener('state', (/** @type {CustomEvent} */ e) => {
    if (S.sig !== sig) return;
    S.conn = e.detail.state;
    renderStatus();
  });
  sig.addEventListener('ice_servers', (/** @type {CustomEvent} */ e) => {
    if (S.sig !== sig) return;
    if (S.call && S.call.session) S.call.session.updateIceServers(e.detail);
  });
  sig.addEventListener('welcome', (/** @type {CustomEvent} */ e) => {
    if (S.sig !== sig) return;
    const w = e.detail;
    if (w.user && w.device) showMe(w.user, w.device);
    const call = S.call;
    if (call && call.offline) {
      // `resumed` follows at once if the server still holds the call.
      clearTimeout(call.resumeTimer);
      call.resumeTimer = setTimeout(() => {
        if (S.call !== call || !call.offline) return;
        S.lastEnded = { call_id: call.callId, reason: 'connection_lost', duration_ms: call.answeredAt ? Date.now() - call.answeredAt : 0 };
        endCurrentCall('The call ended while you were offline.', null);
      }, 3000);
    }
    renderStatus();
    loadHistory();
    maybeAutoJoin();
  });
  sig.addEventListener('dropped', () => {
    if (S.sig !== sig) return;
    // The server keeps an answered call for a while (the reconnect grace
    // window): media goes on, and the call resumes when the socket is back.
    const call = S.call;
    if (call && call.phase === 'in-call' && call.callId) {
      call.offline = true;
      clearTimeout(call.resumeTimer);
      sig.urgent = true;
      el.callQuality.hidden = false;
      el.callQuality.textContent = 'Reconnecting to the server…';
      renderStatus();
      if (S.incoming.size) dismissAllIncoming();
      return;
    }
    // A call still being set up lives on the socket: a drop ends it here.
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
  sig.addEventListener('fatal', (/** @type {CustomEvent} */ e) => {
    if (S.sig !== sig) return;
    S.sig = null;
    const { code, message } = e.detail;
    const text =
      code === 'token_expired'
        ? 'Your session has expired. Please sign in again.'
        : code === 'replaced'
          ? `${S.auth ? S.auth.user : 'You'} signed in on ${S.auth ? S.auth.device : 'this device'} in another window, so this one was signed out.`
          : code === 'token_revoked'
            ? 'This device\'s sign-in was revoked (by an operator, or because your data was erased), so it was signed out. Please sign in again.'
            : code === 'unauthorized'
            ? `The server did not accept your sign-in${message ? ` (${message})` : ''}. Please sign in again.`
            : `Signed out: ${message || code}`;
    signOut(text);
  });
  sig.addEventListener('message', (/** @type {CustomEvent} */ e) => {
    if (S.sig !== sig) return;
    const m = e.detail || {};
    trace(`< ${m.type} ${m.call_id || ''} ${m.state || m.reason || ''}`.trimEnd());
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
    case 'joined':
      onJoined(msg);
      break;
    case 'member_joined':
      onMemberJoined(msg);
      break;
    case 'member_left':
      onMemberLeft(msg);
      break;
    case 'floor':
      onFloor(msg);
      break;
    case 'speakers':
      onSpeakers(msg);
      break;
    case 'layers':
      onLayers(msg);
      break;
    case 'error':
      onServerError(msg);
      break;
    case 'resumed':
      onResumed(msg);
      break;
    case 'active_call':
      onActiveCall(msg);
      break;
    case 'handoff':
      onHandoff(msg);
      break;
    case 'assist_state':
      onAssistState(msg);
      break;
    case 'watchers':
      onWatchers(msg);
      break;
    default:
      break;
  }
}

function onServerError(msg) {
  const text = msg.message || msg.code;
  if (typeof msg.re === 'string' && msg.re.startsWith('view-')) {
    // A view the server could not use changes nothing the user sees; a
    // server without view support is not asked again during this call.
    if (msg.code === 'unknown_type' && S.call) S.call.viewUnsupported = true;
    console.warn('tandem: view not accepted:', msg.code, text);
    return;
  }
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

async function placeCall(toRaw, video, { help = false } = {}) {
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
  call.helpOnAnswer = help; // ask to help with their screen once answered
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
  if (adoptCallId(call, ack, 'The server did not start the call.')) startMedia(call);
}

// adoptCallId takes the call id from an invite's or join's ack. It returns
// false, tidying up, when there is none or the user gave up meanwhile.
function adoptCallId(call, ack, failText, errorEl) {
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
function rateLimitedText(err) {
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
    room: null, // the room's name when this is a room
    mode: null, // 'ptt' in a push-to-talk room
    joinedMsg: false, // a room's `joined` has arrived
    members: new Map(), // user → party: everyone else in the call, in joining order
    invited: new Set(), // users this device invited into the call who still ring
    floor: { holder: '', queue: [] }, // push-to-talk floor
    floorUntil: 0, // when the holder's talk time ends (local clock)
    floorTimer: null,
    pttPressed: false,
    quality: null, // QualityMonitor while media runs
    view: null, // ViewReporter while media runs
    viewUnsupported: false, // the server answered `view` with unknown_type
    viewSeq: 0,
    speakers: null, // SpeakerTracker
    watchers: 0, // WHEP players watching the call from outside it
  };
}

function onRinging(msg) {
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
  setMembers(call, msg.members);
  if (call.members.size === 0) call.members.set(call.peer, msg.peer || { user: call.peer });
  call.phase = 'in-call';
  call.answeredAt = Date.now();
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
  setState('in-call');
  showNextIncomingIfAny();
}

/** Creates the PeerConnections for call (caller after ack, callee after accepted). */
function startMedia(call) {
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
  if (call.members.size && !call.members.has(msg.user)) return; // someone who has left
  tiles.setMedia(msg.user, { audio: msg.audio, video: msg.video });
}

function onEnded(msg) {
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
function hangup() {
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
function failCall(call, text, errorNode = el.callError) {
  teardownCall(call);
  if (S.call === call) S.call = null;
  afterCall();
  setFormError(errorNode, text);
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
  closeAddPanel();
  if (S.state === 'signed-out') return;
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
      if (st && isScreenName(session.trackName(st))) out.push({ user: session.trackUser(st), video: el.assistScreen, track: session.trackName(st) });
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

function stopCallExtras(call) {
  if (call.quality) call.quality.stop();
  if (call.view) call.view.stop();
  if (call.speakers) call.speakers.stop();
  call.quality = call.view = call.speakers = null;
  setQualityIndicator(el.netQuality, null);
}

function onSpeakers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !call.speakers) return;
  call.speakers.update(msg.speakers);
}

function onLayers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id || !call.session) return;
  if (typeof msg.track !== 'string' || !msg.active || typeof msg.active !== 'object') return;
  call.session.setLayers(msg.track, msg.active);
}

function teardownCall(call) {
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

// ---------- moving a call between devices ----------

function onResumed(msg) {
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

function onActiveCall(msg) {
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
function renderActiveCall() {
  const a = S.activeCall;
  const show = !!a && !S.call && S.state !== 'signed-out' && !!S.auth && a.device !== S.auth.device;
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
async function pullCall(listen) {
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
async function pushCall(device) {
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

function onHandoff(msg) {
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
  const call = newCall({ peer: others.length ? others[0].user : '', video: !!msg.video, direction: 'incoming', callId: msg.call_id });
  call.listening = listen;
  call.moving = !listen;
  call.from = msg.device || 'other device';
  setMembers(call, msg.members);
  S.call = call;
  el.activeCall.hidden = true;
  showCallScreen(call);
  setState('calling');
  let media = null;
  if (!listen) {
    // The leg connects while the camera opens (CallSession sendKinds):
    // the others' media reaches this device at once, and its own starts
    // the moment the camera gives it.
    media = takeEarlyMedia(call.callId, call.video);
    call.sendKinds = call.video ? ['audio', 'video'] : ['audio'];
  }
  call.phase = 'in-call';
  call.answeredAt = Date.now();
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
  setState('in-call');
  if (!media) return;
  const stream = await movedCallMedia(call, media);
  if (stream) await call.session.attachStream(stream);
}

/** The "move to" control: shown on the device holding the call when it has somewhere to go. */
function renderMoveMenu() {
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

function toggleMovePanel() {
  const open = el.movePanel.hidden;
  el.movePanel.hidden = !open;
  el.moveTo.setAttribute('aria-expanded', String(open));
  if (open) {
    closeAddPanel();
    el.devicesPanel.hidden = true;
  }
}

function closeMovePanel() {
  el.movePanel.hidden = true;
  el.moveTo.setAttribute('aria-expanded', 'false');
}

// ---------- screen help ----------

function assistOf(call) {
  if (!call.assist) call.assist = { state: null, role: '', received: { control: 0, annotate: 0 }, tool: 'pen', stroke: 0, drawing: false, layer: null, local: null, wired: false };
  return call.assist;
}

function wireAssist() {
  el.assist.addEventListener('click', () => {
    const open = el.assistPanel.hidden;
    el.assistPanel.hidden = !open;
    el.assist.setAttribute('aria-expanded', String(open));
  });
  el.assistAsk.addEventListener('click', () => startAssist(false));
  el.assistOffer.addEventListener('click', () => startAssist(true));
  el.assistReqAnnotate.addEventListener('click', () => requestAssist('annotate'));
  el.assistReqControl.addEventListener('click', () => requestAssist('control'));
  el.assistEnd.addEventListener('click', () => endAssist());
  el.assistStop.addEventListener('click', () => endAssist());
  el.assistAllow.addEventListener('click', () => answerAssist(true));
  el.assistDeny.addEventListener('click', () => answerAssist(false));
  for (const b of el.assistView.querySelectorAll('.tool')) {
    b.addEventListener('click', () => setAssistTool(b.dataset.tool));
  }
  el.toolClear.addEventListener('click', () => sendAssistEvents([{ type: AT.clear }]));
  const c = el.assistCanvas;
  c.addEventListener('pointerdown', (e) => assistPointer(e, 'down'));
  c.addEventListener('pointermove', (e) => assistPointer(e, 'move'));
  c.addEventListener('pointerup', (e) => assistPointer(e, 'up'));
  c.addEventListener('wheel', (e) => assistWheel(e), { passive: false });
  c.addEventListener('keydown', (e) => assistKey(e, true));
  c.addEventListener('keyup', (e) => assistKey(e, false));
}

/** Starts screen help: asking to help them (helper) or asking them to help me. */
async function startAssist(helpMe) {
  const call = S.call;
  if (!call || !call.callId || !call.session) return;
  el.assistPanel.hidden = true;
  const peer = [...call.members.keys()][0] || call.peer;
  const req = helpMe
    ? { type: 'assist', call_id: call.callId, helped: myUser(), grants: ['view'] }
    : { type: 'assist', call_id: call.callId, helped: peer, grants: ['annotate', 'control'] };
  try {
    if (helpMe) await shareMyScreen(call); // consent is this click
    await S.sig.request(req);
  } catch (err) {
    if (helpMe) call.session.stopScreen();
    toast(`Screen help could not start: ${errorText(err)}`, 6000);
  }
}

function requestAssist(grant) {
  const call = S.call;
  if (!call || !call.callId) return;
  el.assistPanel.hidden = true;
  S.sig.request({ type: 'assist_request', call_id: call.callId, grants: [grant] }).catch((err) => toast(errorText(err)));
}

/** Stops everything at once: grants, screen, the help itself. */
function endAssist() {
  const call = S.call;
  if (!call || !call.callId) return;
  el.assistPanel.hidden = true;
  const a = call.assist;
  if (a && a.role === 'helped') sendSig({ type: 'assist_grant', call_id: call.callId, grants: [] });
  sendSig({ type: 'assist_end', call_id: call.callId });
  if (call.session) call.session.stopScreen();
}

async function shareMyScreen(call) {
  if (call.session.screen) return;
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = stream.getVideoTracks()[0];
  // The browser's own "stop sharing" takes view back.
  track.addEventListener('ended', () => {
    if (S.call !== call || !call.assist || call.assist.role !== 'helped') return;
    const st = call.assist.state;
    const keep = st ? st.granted.filter((g) => g !== 'view') : [];
    sendSig({ type: 'assist_grant', call_id: call.callId, grants: keep });
    call.session.stopScreen();
  });
  call.session.shareScreen(track, stream);
  el.assistPreview.srcObject = stream;
}

/** The helped person's answer to what the helper asks. */
async function answerAssist(allow) {
  const call = S.call;
  el.assistConsent.hidden = true;
  if (!call || !call.assist || !call.assist.state) return;
  const st = call.assist.state;
  const want = new Set(st.granted);
  if (allow) {
    for (const g of ['view', 'annotate', 'control']) {
      const box = el['consent' + g[0].toUpperCase() + g.slice(1)];
      if (st.requested.includes(g) && box.checked) want.add(g);
    }
  }
  if (want.has('view')) {
    try {
      await shareMyScreen(call);
    } catch (err) {
      want.delete('view');
      toast(`Your screen is not shared: ${errorText(err)}`, 6000);
    }
  }
  sendSig({ type: 'assist_grant', call_id: call.callId, grants: [...want] });
}

function onAssistState(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id) return;
  const a = assistOf(call);
  msg.granted = Array.isArray(msg.granted) ? msg.granted : [];
  msg.requested = Array.isArray(msg.requested) ? msg.requested : [];
  a.state = msg;
  a.role = msg.helped === myUser() ? 'helped' : 'helper';
  if (call.session && msg.active) call.session.openAssist().catch(() => {});
  if (call.session && !a.wired) {
    a.wired = true;
    call.session.addEventListener('assist', (e) => onAssistMessage(call, e.detail));
  }
  const granted = new Set(msg.granted);
  const other = a.role === 'helped' ? msg.helper : msg.helped;
  if (a.role === 'helped') {
    if (!granted.has('view') && call.session && call.session.screen && msg.reason !== 'started') call.session.stopScreen();
    // Asked for something: the person decides.
    const asked = msg.active ? msg.requested : [];
    if (asked.length) {
      el.assistConsentTitle.textContent = `${other} asks to help you with your screen`;
      for (const g of ['view', 'annotate', 'control']) {
        const key = g[0].toUpperCase() + g.slice(1);
        el['consent' + key + 'Row'].hidden = !asked.includes(g);
        el['consent' + key].checked = g !== 'control';
      }
      el.assistConsent.hidden = false;
    } else {
      el.assistConsent.hidden = true;
    }
    const can = [granted.has('view') && 'see your screen', granted.has('annotate') && 'draw on it', granted.has('control') && 'control your mouse and keyboard'].filter(Boolean);
    el.assistBar.hidden = !msg.active;
    el.assistBarText.textContent = can.length ? `${other} can ${can.join(', ')}` : `${other} is helping you; nothing is shared`;
    el.assistLocal.hidden = !(msg.active && granted.has('view'));
    if (!a.local) a.local = new AnnotationLayer(el.assistOverlay, { contentRect: () => videoContentRect(el.assistPreview) });
  } else {
    el.assistWho.textContent = `Helping ${other}`;
    el.toolPen.disabled = el.toolArrow.disabled = el.toolLaser.disabled = el.toolClear.disabled = !granted.has('annotate');
    el.toolControl.disabled = !granted.has('control');
    if ((a.tool === 'control' && !granted.has('control')) || (a.tool !== 'control' && !granted.has('annotate'))) {
      setAssistTool(granted.has('annotate') ? 'pen' : granted.has('control') ? 'control' : 'pen');
    }
    el.assistView.hidden = !(msg.active && granted.has('view'));
    if (!a.layer) a.layer = new AnnotationLayer(el.assistCanvas, { contentRect: () => videoContentRect(el.assistScreen) });
    if (msg.reason === 'request_timeout') toast(`${other} did not answer.`);
  }
  el.assistStart.hidden = !!msg.active;
  el.assistHelper.hidden = !(msg.active && a.role === 'helper');
  if (msg.reason === 'control_idle') toast('Remote control ended after a while unused.');
  if (!msg.active) endAssistUi(call);
}

function onAssistMessage(call, buf) {
  if (S.call !== call || !call.assist) return;
  const events = decodeAssist(buf);
  const a = call.assist;
  for (const e of events) {
    if (isControl(e.type)) a.received.control += 1;
    else a.received.annotate += 1;
  }
  if (a.local) a.local.apply(events);
}

function endAssistUi(call) {
  el.assistBar.hidden = true;
  el.assistConsent.hidden = true;
  el.assistView.hidden = true;
  el.assistLocal.hidden = true;
  el.assistStart.hidden = false;
  el.assistHelper.hidden = true;
  el.assistScreen.srcObject = null;
  const shared = el.assistPreview.srcObject;
  if (shared) for (const t of shared.getTracks()) t.stop();
  el.assistPreview.srcObject = null;
  if (call && call.session) call.session.stopScreen();
  if (call && call.assist) {
    if (call.assist.layer) call.assist.layer.clear();
    if (call.assist.local) call.assist.local.clear();
  }
}

function showAssistScreen(call, track, stream) {
  el.assistScreen.srcObject = stream;
  safePlay(el.assistScreen);
  track.addEventListener('ended', () => {
    if (el.assistScreen.srcObject === stream) el.assistScreen.srcObject = null;
  });
}

function setAssistTool(tool) {
  const call = S.call;
  if (!call) return;
  assistOf(call).tool = tool;
  for (const b of el.assistView.querySelectorAll('.tool')) b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  if (tool === 'control') el.assistCanvas.focus();
}

function sendAssistEvents(events) {
  const call = S.call;
  if (!call || !call.session) return false;
  if (call.assist && call.assist.layer) call.assist.layer.apply(events);
  return call.session.sendAssist(encodeAssist(events));
}

/** Where a pointer event falls on the shared screen, normalised to 0–65535; null outside it. */
function screenPoint(e) {
  const box = el.assistCanvas.getBoundingClientRect();
  const r = videoContentRect(el.assistScreen);
  const x = (e.clientX - box.left - r.x) / r.w;
  const y = (e.clientY - box.top - r.y) / r.h;
  if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
  return { x: Math.round(x * 65535), y: Math.round(y * 65535) };
}

function assistPointer(e, phase) {
  const call = S.call;
  const a = call && call.assist;
  if (!a || a.role !== 'helper') return;
  const p = screenPoint(e);
  if (!p) return;
  e.preventDefault();
  if (a.tool === 'control') {
    const button = e.button === 2 ? 3 : e.button === 1 ? 2 : 1;
    if (phase === 'down') sendAssistEvents([{ type: AT.pointerMove, ...p }, { type: AT.buttonDown, button, ...p }]);
    else if (phase === 'up') sendAssistEvents([{ type: AT.buttonUp, button, ...p }]);
    else sendAssistEvents([{ type: AT.pointerMove, ...p }]);
    return;
  }
  const tool = TOOLS[a.tool] ?? TOOLS.pen;
  if (phase === 'down') {
    a.drawing = true;
    a.stroke = (a.stroke + 1) % 256;
    el.assistCanvas.setPointerCapture?.(e.pointerId);
  }
  if (!a.drawing && tool !== TOOLS.laser) return;
  if (phase === 'up') {
    a.drawing = false;
    sendAssistEvents([{ type: AT.strokePoint, stroke: a.stroke, tool, color: 0, ...p }, { type: AT.strokeEnd, stroke: a.stroke }]);
    return;
  }
  if (tool === TOOLS.laser && !a.drawing) return;
  sendAssistEvents([{ type: AT.strokePoint, stroke: a.stroke, tool, color: 0, ...p }]);
}

function assistWheel(e) {
  const a = S.call && S.call.assist;
  if (!a || a.role !== 'helper' || a.tool !== 'control') return;
  e.preventDefault();
  const unit = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 120 : 1; // lines, pages → ~pixels of a notch
  const notch = (d) => Math.max(-2400, Math.min(2400, Math.round((d * unit * 120) / 100)));
  const dx = notch(e.deltaX);
  const dy = notch(e.deltaY);
  if (dx || dy) sendAssistEvents([{ type: AT.wheel, dx, dy }]);
}

function assistKey(e, down) {
  const a = S.call && S.call.assist;
  if (!a || a.role !== 'helper' || a.tool !== 'control') return;
  const ks = keysym(e.key);
  if (!ks) return;
  e.preventDefault();
  sendAssistEvents([{ type: down ? AT.keyDown : AT.keyUp, keysym: ks }]);
}

/** Fills the screen help log (the audit log) on the home screen. */
// ---------- your data ----------

/** Downloads everything the server holds about the user as a JSON file. */
async function downloadMyData() {
  if (!S.auth) return;
  el.exportData.disabled = true;
  el.myDataStatus.textContent = 'Preparing your data…';
  try {
    const archive = await exportMyData(S.auth.token);
    S.lastExport = archive;
    const blob = new Blob([JSON.stringify(archive, null, 2)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `tandem-${archive.user}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    const n = archive.calls.length;
    el.myDataStatus.textContent = `Downloaded: ${n} ${n === 1 ? 'call' : 'calls'} and ${archive.assist_log.length} screen help entries.`;
  } catch (err) {
    el.myDataStatus.textContent = `Your data could not be downloaded: ${errorText(err)}`;
  } finally {
    el.exportData.disabled = false;
  }
}

/** Erases everything the server holds about the user, then signs out. */
async function eraseAll() {
  if (!S.auth) return;
  el.eraseConfirm.disabled = true;
  el.myDataStatus.textContent = 'Erasing…';
  try {
    await eraseMyData(S.auth.token);
    el.eraseConfirmRow.hidden = true;
    signOut('Your data was erased from this server, and your devices were signed out.');
  } catch (err) {
    el.myDataStatus.textContent = `Your data could not be erased: ${errorText(err)}`;
  } finally {
    el.eraseConfirm.disabled = false;
  }
}

async function loadAssistLog() {
  if (!S.auth) return;
  let entries;
  try {
    entries = await getAssistLog(S.auth.token);
  } catch (err) {
    el.assistLogEmpty.textContent = `The log could not be loaded: ${errorText(err)}`;
    el.assistLogEmpty.hidden = false;
    return;
  }
  const what = { start: 'started', request: 'asked for', grant: 'allowed', revoke: 'took back', denied: 'not answered:', end: 'ended' };
  const items = entries.map((e) => {
    const li = document.createElement('li');
    li.className = 'assist-entry';
    li.dataset.event = e.event;
    const who = e.helped === myUser() ? `${e.helper} helping you` : `you helping ${e.helped}`;
    const grants = (e.grants || []).join(', ');
    const when = new Date(e.at).toLocaleString();
    li.textContent = `${when} · ${who}${e.device ? ` (${e.device})` : ''} · ${what[e.event] || e.event} ${grants}${e.reason ? ` (${e.reason.replace(/_/g, ' ')})` : ''}`;
    return li;
  });
  el.assistLog.replaceChildren(...items);
  el.assistLogEmpty.hidden = items.length > 0;
}

// ---------- group calls ----------

function myUser() {
  return S.auth ? S.auth.user : '';
}

/** "bob", "bob and carol", "bob, carol and dan". */
function listNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function callTitle(call) {
  if (call.room) return call.room;
  return call.members.size > 1 ? listNames([...call.members.keys()]) : call.peer;
}

/**
 * `watchers`: how many WHEP players watch the call. They see and hear it
 * without being members, so the count stays on screen while any do.
 * @param {{call_id?: string, whep?: number}} msg
 */
function onWatchers(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id) return;
  const n = Number.isInteger(msg.whep) && msg.whep > 0 ? msg.whep : 0;
  const before = call.watchers;
  call.watchers = n;
  renderWatchers(call);
  if (n > before) toast(n === 1 ? 'Someone is watching through a stream player' : `${n} are watching through stream players`);
  else if (n < before) toast(n ? `${n} still watching through a stream player` : 'Nobody is watching through a stream player any more');
}

function renderWatchers(call) {
  const n = call ? call.watchers : 0;
  el.callWatchers.hidden = !n;
  el.callWatchers.textContent = `${n} watching`;
  const label = `${n} watching through a stream player (WHEP): they see and hear this call but are not in it`;
  el.callWatchers.title = label;
  el.callWatchers.setAttribute('aria-label', label);
}

function renderCallTitle(call) {
  el.callPeer.textContent = callTitle(call);
  el.add.hidden = !(call.phase === 'in-call' && !call.room) || !!call.listening;
  el.assist.hidden = !(call.phase === 'in-call' && !call.room && !call.listening && call.members.size === 1);
  if (el.assist.hidden) el.assistPanel.hidden = true;
  if (el.add.hidden) closeAddPanel();
  renderMoveMenu();
  renderStatus();
}

/** Everyone in parties but this user becomes the call's member list. */
function setMembers(call, parties) {
  if (!Array.isArray(parties)) return;
  call.members.clear();
  for (const p of parties) {
    if (p && typeof p.user === 'string' && p.user && p.user !== myUser()) call.members.set(p.user, p);
  }
}

function onMemberJoined(msg) {
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

function onMemberLeft(msg) {
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

function toggleAddPanel() {
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

function closeAddPanel() {
  el.addPanel.hidden = true;
  el.add.setAttribute('aria-expanded', 'false');
}

/** Invites another user into the running call. */
async function addPerson(toRaw) {
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

// ---------- rooms ----------

/** {name, ptt} from ?room=NAME[&mode=ptt] or #room=NAME, for shared links. */
function roomFromUrl() {
  const pick = (params) => {
    const name = (params.get('room') || '').trim().toLowerCase();
    if (!ROOM_NAME.test(name)) return null;
    return { name, ptt: params.get('mode') === 'ptt' };
  };
  try {
    return pick(new URLSearchParams(location.search)) || pick(new URLSearchParams(location.hash.replace(/^#/, '')));
  } catch {
    return null;
  }
}

function maybeAutoJoin() {
  const r = S.autoRoom;
  if (!r || S.state !== 'idle' || S.call || !S.sig || !S.sig.connected) return;
  S.autoRoom = null;
  joinRoom(r.name, { ptt: r.ptt }).catch((err) => toast(errorText(err)));
}

async function joinRoom(nameRaw, { ptt = false } = {}) {
  unlockAudio();
  setFormError(el.roomError, '');
  if (!S.auth) return;
  const room = String(nameRaw || '').trim().toLowerCase();
  el.roomName.value = room;
  el.roomPtt.checked = !!ptt;
  if (!ROOM_NAME.test(room)) {
    setFormError(el.roomError, 'Room names use letters a–z, digits, “-”, “_” and “.”, up to 64 characters.');
    el.roomName.focus();
    return;
  }
  if (S.call) {
    setFormError(el.roomError, 'You are already in a call.');
    return;
  }
  if (!S.sig || !S.sig.connected) {
    setFormError(el.roomError, 'Not connected to the server yet — try again in a moment.');
    return;
  }

  // A walkie-talkie room is voice only.
  const call = newCall({ peer: room, video: !ptt, direction: 'room' });
  call.room = room;
  call.mode = ptt ? 'ptt' : null;
  S.call = call;
  showCallScreen(call);
  setState('calling');

  try {
    call.stream = await openLocalMedia(call.video);
  } catch (err) {
    if (S.call === call) failCall(call, errorText(err), el.roomError);
    return;
  }
  if (S.call !== call) {
    stopStream(call.stream);
    return;
  }
  attachLocal(call);

  const req = { type: 'join', room };
  if (ptt) req.mode = 'ptt';
  let ack;
  try {
    ack = await S.sig.request(req);
  } catch (err) {
    if (S.call === call) failCall(call, joinErrorText(err, room, ptt), el.roomError);
    return;
  }
  if (adoptCallId(call, ack, 'The server did not let you in.', el.roomError)) enterRoom(call);
}

function joinErrorText(err, room, ptt) {
  switch (err && err.code) {
    case 'invalid_state':
      // The first to join a room chose whether it is a walkie-talkie room.
      return ptt
        ? `${room} is not a walkie-talkie room: join it without “Walkie-talkie”.`
        : `${room} is a walkie-talkie room: tick “Walkie-talkie” to join it.`;
    case 'busy':
      return 'You are already in a call or room (perhaps on another device).';
    case 'call_full':
      return `${room} is full.`;
    case 'bad_message':
      return `Can't join “${room}”: ${err.message || 'invalid room name'}.`;
    case 'forbidden':
      return `Your account is not allowed to join ${room}.`;
    case 'shutting_down':
      return 'The server is restarting — try again in a moment.';
    case 'disconnected':
    case 'closed':
      return 'Lost the connection to the server — you did not join.';
    case 'timeout':
      return 'The server did not answer — you did not join.';
    default:
      return `Could not join ${room}: ${errorText(err)}`;
  }
}

/** `joined` (it comes just before the join's ack): the room's id and who is in it. */
function onJoined(msg) {
  const call = S.call;
  if (!call || !call.room || msg.room !== call.room || !msg.call_id) return;
  if (call.callId && call.callId !== msg.call_id) return;
  call.callId = msg.call_id;
  call.joinedMsg = true;
  const wanted = call.mode;
  call.mode = msg.mode === 'ptt' ? 'ptt' : null;
  if (wanted === 'ptt' && !call.mode) toast(`${call.room} is not a walkie-talkie room: everyone can talk at once.`);
  setMembers(call, msg.members);
  for (const user of call.members.keys()) {
    tiles.pin(user);
    tiles.setStatusText(user, 'Connecting…');
  }
  enterRoom(call);
}

/** Starts a room's media once both its `joined` and the join's ack are in. */
function enterRoom(call) {
  if (S.call !== call || call.session || !call.callId || !call.joinedMsg || !call.stream) return;
  if (call.mode === 'ptt' && call.video) {
    // Joined a walkie-talkie room with the camera on: voice only there.
    for (const t of call.stream.getVideoTracks()) {
      call.stream.removeTrack(t);
      t.stop();
    }
    call.video = false;
    call.videoOn = false;
    call.mediaSent = { audio: true, video: false };
    el.localVideo.srcObject = null;
  }
  call.phase = 'in-call';
  call.answeredAt = Date.now();
  const s = el.screenCall;
  s.dataset.mode = 'in-call';
  s.dataset.video = String(call.video);
  s.dataset.ptt = String(call.mode === 'ptt');
  el.pttPanel.hidden = call.mode !== 'ptt';
  tiles.refreshAll();
  renderCallTitle(call);
  renderFloor(call);
  startMedia(call);
  startTimer(call);
  setState('in-call');
  showNextIncomingIfAny();
}

// ---------- push-to-talk ----------

function pttActive() {
  const call = S.call;
  return !!(call && call.mode === 'ptt' && call.phase === 'in-call' && call.callId);
}

function onFloor(msg) {
  const call = S.call;
  if (!call || !msg.call_id || call.callId !== msg.call_id) return;
  call.floor = {
    holder: typeof msg.holder === 'string' ? msg.holder : '',
    queue: Array.isArray(msg.queue) ? msg.queue.filter((u) => typeof u === 'string' && u) : [],
  };
  call.floorUntil = call.floor.holder && msg.expires_ms > 0 ? Date.now() + msg.expires_ms : 0;
  renderFloor(call);
}

function renderFloor(call) {
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

function pttDown() {
  const call = S.call;
  if (!pttActive() || call.pttPressed) return;
  call.pttPressed = true;
  el.ptt.setAttribute('aria-pressed', 'true');
  renderFloor(call);
  floorRequest(call, 'request');
}

function pttUp() {
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
function typingIn(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'range'].includes(target.type);
}

function isSpace(ev) {
  return ev.code === 'Space' || ev.key === ' ';
}

// ---------- call screen ----------

function showCallScreen(call) {
  const s = el.screenCall;
  s.dataset.mode = 'calling';
  s.dataset.video = String(call.video);
  s.dataset.ptt = 'false';
  el.callPeer.textContent = callTitle(call);
  el.callInfo.textContent = call.room ? 'Joining…' : call.direction === 'outgoing' ? 'Calling…' : 'Connecting…';
  el.callQuality.hidden = true;
  renderWatchers(call);
  tiles.clear();
  if (!call.room) {
    tiles.pin(call.peer);
    tiles.setStatusText(call.peer, call.direction === 'outgoing' ? `Calling ${call.peer}…` : 'Connecting…');
  }
  el.hangup.setAttribute(
    'aria-label',
    call.room ? `Leave ${call.room}` : call.direction === 'outgoing' ? 'Cancel call' : 'Hang up',
  );
  el.add.hidden = true;
  closeAddPanel();
  el.pttPanel.hidden = true;
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

function sendMediaState(call, { force = false } = {}) {
  if (!call.callId || call.listening) return;
  const audio = call.audioOn;
  const video = call.video && call.videoOn;
  if (!force && call.mediaSent.audio === audio && call.mediaSent.video === video) return;
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
  if (open) closeAddPanel();
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
        if (S.call && S.call.view) S.call.view.rewatch();
      },
      onReturn: () => {
        setIcon(el.popout.firstElementChild, 'popOut');
        el.popout.setAttribute('aria-label', 'Pop out call window');
        tiles.playAll();
        safePlay(el.localVideo);
        if (S.call && S.call.view) S.call.view.rewatch();
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
  el.switchUserYes.addEventListener('click', () => settleSwitch && settleSwitch(true));
  el.switchUserNo.addEventListener('click', () => settleSwitch && settleSwitch(false));
  el.bannerClose.addEventListener('click', hideBanner);

  el.callForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    placeCall(el.callTo.value, true).catch((err) => toast(errorText(err)));
  });
  el.callAudio.addEventListener('click', () => {
    placeCall(el.callTo.value, false).catch((err) => toast(errorText(err)));
  });
  el.callHelp.addEventListener('click', () => {
    // An audio call that asks to help with their screen once answered.
    placeCall(el.callTo.value, false, { help: true }).catch((err) => toast(errorText(err)));
  });
  el.exportData.addEventListener('click', () => { downloadMyData(); });
  el.eraseData.addEventListener('click', () => {
    el.eraseConfirmRow.hidden = false;
    el.eraseConfirm.focus();
  });
  el.eraseCancel.addEventListener('click', () => { el.eraseConfirmRow.hidden = true; });
  el.eraseConfirm.addEventListener('click', () => { eraseAll(); });
  el.assistLogBox.addEventListener('toggle', () => {
    if (el.assistLogBox.open) loadAssistLog();
  });
  el.callTo.addEventListener('input', () => setFormError(el.callError, ''));
  el.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    joinRoom(el.roomName.value, { ptt: el.roomPtt.checked }).catch((err) => toast(errorText(err)));
  });
  el.roomName.addEventListener('input', () => setFormError(el.roomError, ''));

  el.add.addEventListener('click', toggleAddPanel);
  el.moveHere.addEventListener('click', () => pullCall(false));
  el.listenHere.addEventListener('click', () => pullCall(true));
  el.takeCall.addEventListener('click', () => pullCall(false));
  el.activeCallDismiss.addEventListener('click', () => {
    S.pushOffer = null;
    renderActiveCall();
  });
  el.moveTo.addEventListener('click', toggleMovePanel);
  wireAssist();
  el.addPanel.addEventListener('submit', (ev) => {
    ev.preventDefault();
    addPerson(el.addTo.value).catch((err) => setFormError(el.addError, errorText(err)));
  });
  el.addTo.addEventListener('input', () => setFormError(el.addError, ''));

  // Hold to talk: press = ask for the floor, let go (or slide off) = give it back.
  el.ptt.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType === 'mouse' && ev.button !== 0) return;
    ev.preventDefault();
    pttDown();
  });
  for (const type of ['pointerup', 'pointercancel', 'pointerleave']) el.ptt.addEventListener(type, pttUp);
  el.ptt.addEventListener('contextmenu', (ev) => ev.preventDefault()); // long press on touch screens
  document.addEventListener('keydown', (ev) => {
    if (!isSpace(ev) || !pttActive() || typingIn(ev.target)) return;
    ev.preventDefault();
    if (!ev.repeat) pttDown();
  });
  document.addEventListener('keyup', (ev) => {
    if (!isSpace(ev) || !pttActive() || typingIn(ev.target)) return;
    ev.preventDefault();
    pttUp();
  });
  window.addEventListener('blur', pttUp);
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
    } else if (ev.key === 'Escape' && !el.addPanel.hidden) {
      closeAddPanel();
      el.add.focus();
    }
  });
  el.tiles.addEventListener('click', () => {
    if (!el.devicesPanel.hidden) {
      el.devicesPanel.hidden = true;
      el.devices.setAttribute('aria-expanded', 'false');
    }
    closeAddPanel();
  });
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', () => {
      if (!el.devicesPanel.hidden) fillDeviceLists().catch(() => {});
    });
  }

  window.addEventListener('online', () => {
    if (S.sig) S.sig.retryNow();
    // A new network: media needs new paths too.
    if (S.call && S.call.session) S.call.session.restartIce();
  });
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
    /** How many camera and microphone tracks the page holds open. */
    localTracksLive() {
      return liveLocalTracks();
    },
    get lastEnded() {
      return S.lastEnded;
    },
    /** The last messages and state changes, oldest first. */
    get trace() {
      return [...S.trace];
    },
    /** The last archive "Download my data" fetched, or null. */
    get lastExport() {
      return S.lastExport;
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
    /** {user: {framesDecoded, videoBytes, audioBytes, audioPackets}} for each remote user. */
    async remoteStats() {
      const s = S.call && S.call.session;
      return s ? s.remoteStats() : {};
    },
    /** Everyone else in the current call or room, in joining order. */
    get members() {
      return S.call ? [...S.call.members.keys()] : [];
    },
    get room() {
      return S.call ? S.call.room : null;
    },
    get mode() {
      return S.call ? S.call.mode : null;
    },
    /** The push-to-talk floor: {holder, queue}; null outside a walkie-talkie room. */
    get floor() {
      const c = S.call;
      return c && c.mode === 'ptt' ? { holder: c.floor.holder, queue: [...c.floor.queue] } : null;
    },
    /**
     * Connection quality: {local: {level, rttMs, lossPct, jitterMs}, remote:
     * {user: {level, rttMs, lossPct, jitterMs, fps, freezes}}}; levels are
     * 'good', 'poor' or 'bad'. local is null until the first sample.
     */
    quality() {
      const q = S.call && S.call.quality;
      const last = q ? q.last : { local: null, remote: {} };
      return JSON.parse(JSON.stringify({ local: last.local, remote: last.remote }));
    },
    /** The last `view` sent: {call_id, tiles: [{user, track, width, height}], at}, or null. */
    lastView() {
      const c = S.call;
      const v = c && c.view && c.view.last;
      return v ? JSON.parse(JSON.stringify({ call_id: c.callId, tiles: v.tiles, at: v.at })) : null;
    },
    /** How many WHEP players watch the current call (0 outside one). */
    get watchers() {
      return S.call ? S.call.watchers : 0;
    },
    /** The highlighted active speaker's user id ('' = nobody). */
    speaker() {
      return tiles ? tiles.speaking : '';
    },
    /** The last `speakers` list: [{user, level}], loudest first. */
    speakers() {
      const c = S.call;
      return c && c.speakers ? c.speakers.levels.map((x) => ({ ...x })) : [];
    },
    /** The camera's simulcast encodings as sent now: [{rid, active}]. */
    layers() {
      const s = S.call && S.call.session;
      return s ? s.layers() : [];
    },
    /** Remote tiles in the order they are shown. */
    get tileOrder() {
      return tiles ? tiles.order() : [];
    },
    /** The user's call as the server describes it: {call_id, device, online, listening}, or null. */
    get activeCall() {
      return S.activeCall ? JSON.parse(JSON.stringify(S.activeCall)) : null;
    },
    get listening() {
      return !!(S.call && S.call.listening);
    },
    /** Remote tracks received since the page loaded: a handoff elsewhere must not add one. */
    get tracksReceived() {
      return tracksReceived;
    },
    /** Screen help: {state, role, received: {control, annotate}} or null. */
    get assist() {
      const a = S.call && S.call.assist;
      return a ? JSON.parse(JSON.stringify({ state: a.state, role: a.role, received: a.received, sharing: !!(S.call.session && S.call.session.screen) })) : null;
    },
    /** Sends raw assistance events as the helper would; false if the channel is not open. */
    assistSend: (events) => {
      const s = S.call && S.call.session;
      return !!s && s.sendAssist(encodeAssist(events));
    },
    moveHere: () => pullCall(false),
    listenHere: () => pullCall(true),
    moveTo: (device) => pushCall(device),
    call: (to, video = true) => placeCall(to, video),
    accept: () => acceptIncoming(),
    decline: () => declineIncoming(),
    hangup: () => hangup(),
    joinRoom: (room, opts) => joinRoom(room, opts),
    addPerson: (user) => addPerson(user),
  };
  Object.defineProperty(window, 'tandem', { value: api, configurable: true });
}

boot().catch((err) => {
  console.error('tandem: start-up failed', err);
  showSignIn();
  showBanner(`Tandem could not start: ${errorText(err)}`);
});
