// @ts-check
// Rooms: joining by name or a shared link, and leaving.
import { openLocalMedia, stopStream } from '../media.js';
import { unlockAudio } from '../ringtone.js';
import { el, toast } from '../ui.js';
import { renderCallTitle, setMembers } from './group.js';
import { showNextIncomingIfAny } from './incoming.js';
import { failCall, startMedia } from './lifecycle.js';
import { adoptCallId } from './outgoing.js';
import { renderFloor } from './ptt.js';
import { attachLocal, showCallScreen, startTimer } from './screen.js';
import { setFormError } from './signin.js';
import { Call } from './callstate.js';
import { ROOM_NAME, S, errorText, renderState, setCall, tiles } from './state.js';

/** {name, ptt} from ?room=NAME[&mode=ptt] or #room=NAME, for shared links. */
export function roomFromUrl() {
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

export function maybeAutoJoin() {
  const r = S.autoRoom;
  if (!r || S.rest !== 'idle' || S.call || !S.sig || !S.sig.connected) return;
  S.autoRoom = null;
  joinRoom(r.name, { ptt: r.ptt }).catch((err) => toast(errorText(err)));
}

export async function joinRoom(nameRaw, { ptt = false } = {}) {
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
  const call = new Call({ peer: room, video: !ptt, direction: 'room' });
  call.room = room;
  call.mode = ptt ? 'ptt' : null;
  setCall(call);
  showCallScreen(call);

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
export function onJoined(msg) {
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
  call.answered();
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
  renderState();
  showNextIncomingIfAny();
}
