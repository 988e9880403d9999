// @ts-check
// The smallest page that places and receives Tandem calls, on the client
// library alone (/tandem.js). One call at a time, video always on.

import { Signaling, CallSession, openLocalMedia, stopStream, devToken } from '../tandem.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const remote = /** @type {HTMLVideoElement} */ ($('remote'));
const local = /** @type {HTMLVideoElement} */ ($('local'));

/** @type {Signaling | null} */
let sig = null;
/** @type {{id: string, session: CallSession | null, stream: MediaStream | null} | null} */
let call = null;
/** @type {import('../protocol.js').Incoming | null} */
let ringing = null;

/** @param {string} text */
function status(text) {
  $('status').textContent = text;
  document.body.dataset.status = text;
}

$('signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = /** @type {HTMLInputElement} */ ($('user')).value.trim();
  const { token } = await devToken(user, 'example');
  sig = new Signaling(token);
  sig.addEventListener('welcome', () => {
    $('signin').hidden = true;
    $('dial').hidden = false;
    status(`Signed in as ${user}`);
  });
  sig.addEventListener('message', (/** @type {CustomEvent} */ ev) => onMessage(ev.detail));
  sig.start();
});

$('dial').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!sig || call) return;
  const to = /** @type {HTMLInputElement} */ ($('to')).value.trim();
  status(`Calling ${to}…`);
  const stream = await openLocalMedia(true);
  try {
    const ack = await sig.request({ type: 'invite', to, video: true });
    begin(ack.call_id, stream);
  } catch (err) {
    stopStream(stream);
    status(`Could not call ${to}: ${err.message}`);
  }
});

$('answer').addEventListener('click', async () => {
  if (!sig || !ringing || call) return;
  const inc = ringing;
  ringing = null;
  $('answer').hidden = true;
  const stream = await openLocalMedia(true);
  await sig.request({ type: 'accept', call_id: inc.call_id });
  begin(inc.call_id, stream);
  status(`In a call with ${inc.from.user}`);
});

$('hangup').addEventListener('click', () => {
  if (sig && call) sig.send({ type: 'hangup', call_id: call.id });
  end('You hung up');
});

/**
 * Starts the media of call id, sending stream.
 * @param {string} id
 * @param {MediaStream} stream
 */
function begin(id, stream) {
  local.srcObject = stream;
  const session = new CallSession({ callId: id, signaling: sig, iceServers: sig.welcome.ice_servers, localStream: stream });
  session.addEventListener('track', (/** @type {CustomEvent} */ ev) => {
    if (ev.detail.track.kind === 'video') remote.srcObject = ev.detail.stream;
  });
  call = { id, session, stream };
  $('hangup').hidden = false;
  session.start();
}

/** @param {string} text */
function end(text) {
  if (call) {
    if (call.session) call.session.close();
    stopStream(call.stream);
  }
  call = null;
  remote.srcObject = local.srcObject = null;
  $('hangup').hidden = true;
  status(text);
}

/** @param {import('../protocol.js').ServerMessage} m */
function onMessage(m) {
  switch (m.type) {
    case 'incoming':
      if (call) return; // busy here: let it ring elsewhere
      ringing = m;
      $('answer').hidden = false;
      status(`${m.from.user} is calling`);
      break;
    case 'accepted':
      if (call && call.id === m.call_id) status(`In a call with ${m.peer.user}`);
      break;
    case 'sdp':
      if (call && call.id === m.call_id && call.session) call.session.handleSdp(m);
      break;
    case 'ice':
      if (call && call.id === m.call_id && call.session) call.session.handleIce(m);
      break;
    case 'ended':
      if (ringing && ringing.call_id === m.call_id) {
        ringing = null;
        $('answer').hidden = true;
        status('Missed call');
      } else if (call && call.id === m.call_id) {
        end(`Call ended (${m.reason})`);
      }
      break;
  }
}

/** For tests: frames of the other side's video decoded so far. */
Object.defineProperty(window, 'exampleFrames', {
  get: () => (remote.getVideoPlaybackQuality ? remote.getVideoPlaybackQuality().totalVideoFrames : 0),
});
