// @ts-check
// The signaling connection: its events, and every server message routed to the feature that handles it.
import { Signaling } from '../signaling.js';
import { el, toast, showBanner } from '../ui.js';
import { onMemberJoined, onMemberLeft, onWatchers } from './group.js';
import { onAssistState, onAssistClipboard, onAssistScreens } from './help.js';
import { dismissAllIncoming, onIncoming } from './incoming.js';
import {
  endCurrentCall, onAccepted, onEnded, onLayers, onMediaSignal, onRemoteMedia, onSpeakers,
} from './lifecycle.js';
import { onActiveCall, onHandoff, onResumed } from './moving.js';
import { onRinging } from './outgoing.js';
import { onFloor } from './ptt.js';
import { loadHistory } from './recent.js';
import { maybeAutoJoin, onJoined } from './rooms.js';
import { REMOVED, onPresence, refreshToken } from './account.js';
import { showMe, signOut } from './signin.js';
import { S, renderStatus, trace } from './state.js';

export function startSignaling() {
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
    // An erasure revokes this device too; its own message follows.
    if (S.erasing) return;
    if (S.auth && S.auth.credential && (code === 'token_expired' || code === 'unauthorized')) {
      // A device with an account gets a fresh token and goes on.
      refreshToken().then((ok) => {
        if (ok && S.auth) startSignaling();
        else signOut(REMOVED);
      });
      return;
    }
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

export function sendSig(msg) {
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
    case 'assist_clipboard':
      onAssistClipboard(msg);
      break;
    case 'assist_screens':
      onAssistScreens(msg);
      break;
    case 'watchers':
      onWatchers(msg);
      break;
    case 'presence':
      onPresence(msg);
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
