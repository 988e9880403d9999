// @ts-check
// The page's state (S), its trace, and the status it shows.
import { el, setStatus } from '../ui.js';
import { listNames } from './group.js';

export const S = {
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

export function setState(state) {
  if (S.state !== state) trace(`state ${state}`);
  S.state = state;
  el.app.dataset.state = state;
  renderStatus();
}

export function renderStatus() {
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

export function errorText(err) {
  return (err && err.message) || String(err || 'Unknown error');
}
