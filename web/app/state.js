// @ts-check
// The page's state (S), its trace, and the status it shows.
import { el, setStatus } from '../ui.js';
import { listNames } from './group.js';

/**
 * What the page knows and shows. Each feature module reads it and changes
 * its own part; the call itself changes through setCall and its Call
 * transitions.
 * @typedef {object} PageData
 * @property {any} info /api/v1/info answer, null while unknown
 * @property {boolean} dev the server signs in anyone (dev mode)
 * @property {{token: string, user: string, device: string, credential?: string, name?: string, deviceName?: string} | null} auth the signed-in device; credential and name with a built-in account
 * @property {import('../signaling.js').Signaling | null} sig
 * @property {'connecting' | 'open' | 'reconnecting' | 'closed'} conn
 * @property {import('./callstate.js').RestState} rest the page's state when no call is on it
 * @property {import('./callstate.js').Call | null} call the call on this page: placed, answered, joined or moved here
 * @property {Map<string, import('../protocol.js').Incoming>} incoming call_id → incoming message, in arrival order
 * @property {string | null} shownIncoming call_id shown in #incoming
 * @property {{call_id: string, reason: string, duration_ms: number, device?: string} | null} lastEnded
 * @property {any} lastExport the last archive downloaded, for tests
 * @property {boolean} erasing the user's data is being erased: the revocation of this device is expected
 * @property {Set<string>} forgotten call ids torn down locally whose `ended` is still to come
 * @property {{name: string, ptt: boolean} | null} autoRoom from a shared room link, joined once signed in
 * @property {any} activeCall the user's call as the server last described it (active_call), or null
 * @property {any} pushOffer a handoff offer: another device of the user sends its call here
 * @property {boolean} moving a pull or listen request is under way
 * @property {{callId: string, video: boolean, promise: Promise<any>} | null} earlyMedia local media opened at a move's click
 * @property {string[]} trace the last messages and state changes, for a person (or a test) to read
 * @property {string | null} answerOnRing a call Answer on a notification opened the app for: answered once it rings here
 */

/** @type {PageData} */
export const S = {
  info: null,
  dev: false,
  auth: null,
  sig: null,
  conn: 'closed',
  rest: 'signed-out',
  call: null,
  incoming: new Map(),
  shownIncoming: null,
  lastEnded: null,
  lastExport: null,
  /** The user's data is being erased: the server revoking this device's sign-in is expected, and the erasure says so. */
  erasing: false,
  forgotten: new Set(),
  autoRoom: null,
  activeCall: null,
  pushOffer: null,
  moving: false,
  earlyMedia: null,
  trace: [],
  answerOnRing: null,
};

/** Notes an event in S.trace, keeping the last 60. */
export function trace(what) {
  S.trace.push(`${(performance.now() / 1000).toFixed(3)} ${what}`);
  if (S.trace.length > 60) S.trace.splice(0, S.trace.length - 60);
}

// Room names (docs/protocol.md, "Group calls and rooms").
export const ROOM_NAME = /^[a-z0-9._-]{1,64}$/;

/** @type {import('../ui.js').Tiles} */
export let tiles = null;

/** Sets the call screen's tiles, made once at start-up. */
export function setTiles(t) {
  tiles = t;
}

/**
 * The page's state: the phase of its call while one is on it, unless
 * nobody is signed in any more.
 * @returns {import('./callstate.js').PageState}
 */
export function pageState() {
  if (S.rest === 'signed-out' || !S.call || S.call.phase === 'ended') return S.rest;
  return S.call.phase;
}

let shownState = '';

/** Shows the page's state (pageState) after it may have changed. */
export function renderState() {
  const state = pageState();
  if (state !== shownState) trace(`state ${state}`);
  shownState = state;
  el.app.dataset.state = state;
  renderStatus();
}

/**
 * Sets what the page is when no call is on it.
 * @param {import('./callstate.js').RestState} state
 */
export function setState(state) {
  S.rest = state;
  renderState();
}

/**
 * Puts call on the page (null: none). A page with a call on it no longer
 * rings: a call that comes in meanwhile waits inside the call.
 * @param {import('./callstate.js').Call | null} call
 */
export function setCall(call) {
  S.call = call;
  if (call && S.rest === 'ringing') S.rest = 'idle';
  renderState();
}

export function renderStatus() {
  const c = S.call;
  const state = pageState();
  if (state === 'signed-out') {
    setStatus('Signed out');
    return;
  }
  if (S.conn !== 'open') {
    setStatus(S.conn === 'connecting' ? 'Connecting…' : 'Reconnecting…', 'warn');
    return;
  }
  switch (state) {
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
      setStatus(state);
  }
}

export function errorText(err) {
  return (err && err.message) || String(err || 'Unknown error');
}
