// @ts-check
// window.tandem: the surface tests and automation drive the page through.
import { encode as encodeAssist } from '../assist.js';
import { liveLocalTracks } from '../media.js';
import { presenceStates } from './account.js';
import { addPerson } from './group.js';
import { acceptIncoming, declineIncoming } from './incoming.js';
import { hangup, tracksReceived } from './lifecycle.js';
import { pullCall, pushCall } from './moving.js';
import { placeCall } from './outgoing.js';
import { joinRoom } from './rooms.js';
import { S, pageState, tiles } from './state.js';

export function exposeApi() {
  const api = {
    get state() {
      return pageState();
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
    /** The contacts' presence as the server told it: {user: state}. */
    get presence() {
      return presenceStates();
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
    /** The candidate pair each PeerConnection uses: {pub: {local, remote, relayProtocol}, sub: …}. */
    async paths() {
      const s = S.call && S.call.session;
      const out = {};
      if (!s || !s.pcs) return out;
      for (const [name, pc] of Object.entries(s.pcs)) {
        if (!pc) continue;
        const stats = await pc.getStats();
        let pairId = '';
        stats.forEach((r) => {
          if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
        });
        const pair = pairId && stats.get(pairId);
        if (!pair) continue;
        const local = stats.get(pair.localCandidateId) || {};
        const remote = stats.get(pair.remoteCandidateId) || {};
        out[name] = { local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol || '' };
      }
      return out;
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
