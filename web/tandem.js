// @ts-check
// Tandem's web client library: what the app in index.html is built on, for
// another page to place and receive Tandem calls. Plain ES modules, no build
// step; import it from the server that serves it:
//
//   import { Signaling, CallSession, openLocalMedia, devToken } from '/tandem.js';
//
// A call, from the caller's side (web/examples/call.js does both sides):
//
//   const sig = new Signaling(token);          // the WebSocket, with reconnects
//   sig.addEventListener('message', (e) => {   // what the server says
//     const m = e.detail;                      // a ServerMessage (protocol.js)
//     if (m.type === 'sdp') session.handleSdp(m);
//     if (m.type === 'ice') session.handleIce(m);
//   });
//   sig.start();
//   const stream = await openLocalMedia(true);                       // camera and microphone
//   const { call_id } = await sig.request({ type: 'invite', to: 'bob', video: true });
//   const session = new CallSession({ callId: call_id, signaling: sig,
//     iceServers: sig.welcome.ice_servers, localStream: stream });
//   session.addEventListener('track', (e) => { video.srcObject = e.detail.stream; });
//   session.start();                           // media flows once Bob accepts
//
// The callee hears `incoming`, answers with {type: 'accept', call_id}, and
// starts a CallSession the same way once the request is acknowledged.
// `ended` ends the call on either side; close the session and stop the
// stream then. docs/protocol.md describes every message; protocol.js gives
// them as types.

export { Signaling, SignalingError } from './signaling.js';
export { CallSession, isScreenName } from './call.js';
export { openLocalMedia, openTrack, listDevices, stopStream, MediaError } from './media.js';
export { devToken, getCalls, ApiError } from './api.js';
