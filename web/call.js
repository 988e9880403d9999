// @ts-check
// Media for one call leg (docs/protocol.md, "Media"): a `pub` PeerConnection
// (client offers, sends local tracks) and a `sub` PeerConnection (server
// offers, client answers, receives the other members' tracks), trickle ICE
// both ways. Events:
//   'track'       detail {user, track, stream, name}  a remote track arrived;
//                 stream holds the user's tracks but screens, or, for a
//                 screen, that track alone
//   'trackended'  detail {user, track}          a remote track went away
//   'connection'  detail {pc, state}            RTCPeerConnection.connectionState
//   'mediaerror'  detail {message}              negotiation failed (call stays up)
//
// Remote tracks are named as the SFU names them (docs/protocol.md, "Media"):
// the MediaStream id is the publishing user, and the msid track id is the
// SFU's track name ("audio", "video", "video-2", …), which `view` uses.

import { cameraEncodings, applyLayers } from './simulcast.js';

function relayOnly() {
  try {
    return new URLSearchParams(location.search).get('ice') === 'relay';
  } catch {
    return false;
  }
}

/**
 * The msid track id the SFU gave the track received on transceiver: the
 * second field of that m-line's a=msid in the sub PC's remote description.
 */
export function msidTrackId(pc, transceiver) {
  const sdp = pc && pc.remoteDescription && pc.remoteDescription.sdp;
  const mid = transceiver && transceiver.mid;
  if (!sdp || mid == null) return '';
  for (const section of sdp.split(/\r?\n(?=m=)/)) {
    const lines = section.split(/\r?\n/).map((l) => l.trim());
    if (!lines.includes(`a=mid:${mid}`)) continue;
    const msid = lines.find((l) => l.startsWith('a=msid:'));
    const parts = msid ? msid.slice('a=msid:'.length).split(/\s+/) : [];
    return parts[1] || '';
  }
  return '';
}

/** Whether an SFU track name is a screen share ("screen", "screen-2", …). */
export function isScreenName(name) {
  return name === 'screen' || /^screen-\d+$/.test(name);
}

export class CallSession extends EventTarget {
  /**
   * localStream is what this leg sends. A leg whose camera and microphone
   * are still opening passes sendKinds (['audio', 'video']) instead and
   * attachStream() later: its PeerConnections connect meanwhile, so the
   * other members' media arrives while the camera starts (a call moved
   * here shows the others at once).
   * @param {object} options
   * @param {string} options.callId the call whose media this is
   * @param {import('./signaling.js').Signaling} options.signaling the session's signaling
   * @param {RTCIceServer[]} [options.iceServers] from welcome (ice_servers)
   * @param {MediaStream | null} [options.localStream] what this leg sends
   * @param {string[] | null} [options.sendKinds] what it will send, once attachStream gives it
   */
  constructor({ callId, signaling, iceServers, localStream, sendKinds }) {
    super();
    this.callId = callId;
    this.signaling = signaling;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    this.localStream = localStream;
    this.sendKinds = localStream ? null : sendKinds || null;
    this.pcs = { pub: null, sub: null };
    this.senders = { audio: null, video: null };
    this.queued = { pub: [], sub: [] };
    this.chain = { pub: Promise.resolve(), sub: Promise.resolve() };
    this.awaitingPubAnswer = false;
    this.pubAgain = null; // pending re-offer options while an offer is outstanding
    // Remote track → user id (the stream id it arrived in). Keyed by the
    // track itself: track ids are the same for every member ("audio", "video").
    this.trackUsers = new Map();
    // Remote track → the SFU's name for it (the msid track id).
    this.trackNames = new Map();
    // User → the MediaStream of their tracks but screens (what their tile plays).
    this.userStreams = new Map();
    /** @type {Promise<unknown>} the simulcast layer changes, one after another */
    this.layerChain = Promise.resolve();
    this.lastRestart = 0;
    this.assistDC = null; // the "assist" data channel on pub
    this.screen = null; // {transceiver, track} while sharing the screen
    this.iceTimers = { pub: null, sub: null };
    this.closed = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Creates both PeerConnections and sends the first pub offer. */
  start() {
    if (this.pcs.pub) return;
    this.pcs.pub = this.createPc('pub');
    this.pcs.sub = this.createPc('sub');
    const stream = this.localStream;
    if (stream) {
      for (const track of stream.getTracks()) {
        const init = { direction: 'sendonly', streams: [stream] };
        const encodings = track.kind === 'video' ? cameraEncodings() : undefined;
        if (encodings) init.sendEncodings = encodings;
        const tr = this.pcs.pub.addTransceiver(track, init);
        this.senders[track.kind] = tr.sender;
      }
    }
    if (!stream && this.sendKinds) {
      // The camera is still opening: the same transceivers, without a
      // track until attachStream.
      for (const kind of this.sendKinds) {
        const init = { direction: 'sendonly' };
        const encodings = kind === 'video' ? cameraEncodings() : undefined;
        if (encodings) init.sendEncodings = encodings;
        this.senders[kind] = this.pcs.pub.addTransceiver(kind, init).sender;
      }
    } else if (!stream) {
      // A device listening along sends nothing, but the server creates a
      // leg on its first pub offer, which needs a media section.
      this.pcs.pub.addTransceiver('audio', { direction: 'recvonly' });
    }
    this.pcs.sub.ontrack = (ev) => this.onRemoteTrack(ev);
    this.offerPub();
  }

  /**
   * Restarts ICE after a network change: a pub offer with new credentials,
   * which the server answers and follows with a restarted sub offer. At
   * most once every 3 s.
   */
  restartIce() {
    if (this.closed || !this.pcs.pub) return;
    const now = Date.now();
    if (now - this.lastRestart < 3000) return;
    this.lastRestart = now;
    this.offerPub({ iceRestart: true });
  }

  /** Uses fresh ICE servers (new TURN credentials) from now on, also for ICE restarts. */
  updateIceServers(servers) {
    if (!Array.isArray(servers)) return;
    this.iceServers = servers;
    for (const pc of Object.values(this.pcs || {})) {
      if (!pc || pc.signalingState === 'closed') continue;
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
      } catch (err) {
        console.warn('tandem: could not apply new ICE servers', err);
      }
    }
  }

  createPc(name) {
    let pc;
    try {
      pc = new RTCPeerConnection({
        iceServers: this.iceServers,
        // ?ice=relay forces media through TURN: for checking a TURN setup.
        iceTransportPolicy: relayOnly() ? 'relay' : 'all',
        bundlePolicy: 'max-bundle',
        rtcpMuxPolicy: 'require',
      });
    } catch (err) {
      // Malformed ice_servers from the server: fall back to host candidates.
      console.warn('tandem: iceServers rejected, using none', err);
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    }
    pc.onicecandidate = (ev) => {
      if (this.closed) return;
      const c = ev.candidate ? ev.candidate.toJSON() : { candidate: '' };
      this.signaling.send({ type: 'ice', call_id: this.callId, pc: name, candidate: c });
    };
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      this.emit('connection', { pc: name, state: pc.connectionState });
    };
    pc.oniceconnectionstatechange = () => {
      if (this.closed) return;
      // A path that fails, or stays disconnected for 2 s (the network
      // changed under it), restarts ICE on both PeerConnections.
      clearTimeout(this.iceTimers[name]);
      const state = pc.iceConnectionState;
      if (state === 'failed') this.restartIce();
      else if (state === 'disconnected') {
        this.iceTimers[name] = setTimeout(() => {
          if (pc.iceConnectionState === 'disconnected') this.restartIce();
        }, 2000);
      }
    };
    return pc;
  }

  run(name, fn) {
    const next = this.chain[name].then(fn).catch((err) => {
      if (this.closed) return;
      console.error(`tandem: ${name} negotiation failed`, err);
      this.emit('mediaerror', { message: `Media setup failed (${name}): ${err && err.message ? err.message : err}` });
    });
    this.chain[name] = next;
    return next;
  }

  /** Sends a (re-)offer on pub; called again at any time (renegotiation, ICE restart). */
  offerPub(opts = {}) {
    if (this.awaitingPubAnswer) {
      this.pubAgain = { ...(this.pubAgain || {}), ...opts };
      return;
    }
    this.awaitingPubAnswer = true;
    this.run('pub', async () => {
      const pc = this.pcs.pub;
      if (!pc || this.closed) return;
      const offer = await pc.createOffer(opts);
      await pc.setLocalDescription(offer);
      const sdp = this.markSlides(pc.localDescription.sdp);
      if (!this.signaling.send({ type: 'sdp', call_id: this.callId, pc: 'pub', kind: 'offer', sdp })) {
        this.awaitingPubAnswer = false;
        throw new Error('not connected');
      }
    }).then(() => {
      if (this.awaitingPubAnswer && !this.pcs.pub) this.awaitingPubAnswer = false;
    });
  }

  handleSdp(msg) {
    const name = msg.pc;
    if (this.closed || (name !== 'pub' && name !== 'sub') || typeof msg.sdp !== 'string') return;
    if (name === 'pub' && msg.kind === 'answer') {
      this.run('pub', async () => {
        const pc = this.pcs.pub;
        if (!pc || pc.signalingState !== 'have-local-offer') return;
        try {
          await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
          await this.flush('pub');
        } finally {
          this.awaitingPubAnswer = false;
        }
        if (this.pubAgain) {
          const again = this.pubAgain;
          this.pubAgain = null;
          this.offerPub(again);
        }
      });
    } else if (name === 'sub' && msg.kind === 'offer') {
      this.run('sub', async () => {
        const pc = this.pcs.sub;
        if (!pc) return;
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        await this.flush('sub');
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        this.signaling.send({ type: 'sdp', call_id: this.callId, pc: 'sub', kind: 'answer', sdp: pc.localDescription.sdp });
      });
    } else {
      console.warn('tandem: unexpected sdp', name, msg.kind);
    }
  }

  handleIce(msg) {
    const name = msg.pc;
    if (this.closed || (name !== 'pub' && name !== 'sub')) return;
    let cand = msg.candidate;
    if (typeof cand === 'string') cand = { candidate: cand };
    if (!cand || typeof cand !== 'object') return;
    const pc = this.pcs[name];
    if (!pc || !pc.remoteDescription) {
      this.queued[name].push(cand);
      return;
    }
    this.addCandidate(pc, cand);
  }

  async flush(name) {
    const pc = this.pcs[name];
    const list = this.queued[name];
    this.queued[name] = [];
    for (const c of list) await this.addCandidate(pc, c);
  }

  async addCandidate(pc, cand) {
    try {
      if (!cand.candidate) {
        await pc.addIceCandidate(cand.sdpMid == null && cand.sdpMLineIndex == null ? undefined : cand);
      } else {
        await pc.addIceCandidate(cand);
      }
    } catch (err) {
      if (cand.candidate) console.warn('tandem: remote candidate rejected', err);
    }
  }

  /**
   * Marks the screen share's media section with a=content:slides (RFC
   * 4796), which is how the server tells a screen from a camera.
   */
  markSlides(sdp) {
    const mid = this.screen && this.screen.transceiver.mid;
    if (mid == null) return sdp;
    return sdp.replace(new RegExp(`(a=mid:${mid.replace(/[^\w-]/g, '')}\r\n)`), '$1a=content:slides\r\n');
  }

  /** Opens the "assist" data channel (once); resolves when it is open. */
  openAssist() {
    if (!this.pcs.pub || this.closed) return Promise.reject(new Error('no media'));
    if (!this.assistDC) {
      const dc = this.pcs.pub.createDataChannel('assist');
      dc.binaryType = 'arraybuffer';
      dc.onmessage = (ev) => {
        if (ev.data instanceof ArrayBuffer) this.emit('assist', ev.data);
      };
      this.assistDC = dc;
      this.assistOpen = new Promise((resolve) => dc.addEventListener('open', resolve, { once: true }));
      this.offerPub();
    }
    return this.assistOpen;
  }

  /** Sends an encoded assistance message; false when the channel is not open. */
  sendAssist(buf) {
    const dc = this.assistDC;
    if (!dc || dc.readyState !== 'open') return false;
    dc.send(buf);
    return true;
  }

  /** Publishes a screen share (a display-media track), marked as such. */
  shareScreen(track, stream) {
    if (this.screen || !this.pcs.pub) return;
    const transceiver = this.pcs.pub.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    this.screen = { transceiver, track };
    this.offerPub();
  }

  /** Stops publishing the screen share. */
  stopScreen() {
    const sh = this.screen;
    if (!sh) return;
    this.screen = null;
    try {
      this.pcs.pub.removeTrack(sh.transceiver.sender);
    } catch { /* closed */ }
    sh.track.stop();
    this.offerPub();
  }

  onRemoteTrack(ev) {
    const track = ev.track;
    const remote = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([track]);
    const user = ev.streams && ev.streams[0] ? ev.streams[0].id : 'remote';
    // The SFU may reuse a receiver for someone else's track later on: the
    // latest stream a track arrived in says whose it is.
    const before = this.trackUsers.get(track);
    if (before !== undefined && before !== user) this.dropFromUserStream(before, track);
    this.trackUsers.set(track, user);
    this.trackNames.set(track, msidTrackId(this.pcs.sub, ev.transceiver) || track.id);
    const name = this.trackName(track);
    // All of a user's tracks arrive in one MediaStream (its id is the
    // user), a screen shared for help included. A <video> plays whichever
    // video track it picks, and a page that reads the stream's video
    // tracks finds both: a user's tile gets a stream of its own without
    // the screen, and the screen a stream of its own.
    let stream;
    if (isScreenName(name)) {
      stream = new MediaStream([track]);
    } else {
      stream = this.userStreams.get(user);
      if (!stream) {
        stream = new MediaStream();
        this.userStreams.set(user, stream);
      }
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
    }
    this.emit('track', { user, track, stream, name });
    const gone = () => {
      this.dropFromUserStream(user, track);
      this.emit('trackended', { user, track });
    };
    track.addEventListener('ended', gone);
    remote.addEventListener('removetrack', (e) => {
      if (e.track === track) gone();
    });
  }

  /** Takes track out of user's own stream (the one their tile plays). */
  dropFromUserStream(user, track) {
    const s = this.userStreams.get(user);
    if (s && s.getTracks().includes(track)) s.removeTrack(track);
  }

  /** The user a remote track comes from ('' if unknown). */
  trackUser(track) {
    return this.trackUsers.get(track) || '';
  }

  /** The SFU's name for a remote track ("video", "video-2", …), '' if unknown. */
  trackName(track) {
    return this.trackNames.get(track) || '';
  }

  /**
   * Applies the server's `layers` message for one of this leg's tracks:
   * pauses the simulcast layers nobody receives and resumes the others.
   * The camera is the SFU's "video"; this client publishes no other video.
   */
  setLayers(trackName, active) {
    const sender = trackName === 'video' ? this.senders.video : null;
    if (!sender || this.closed) return Promise.resolve(false);
    // getParameters/setParameters pairs must not interleave. A layer left
    // paused by mistake would leave its viewers without a picture: a
    // failed change is tried once more (a renegotiation may have been under way).
    const apply = () => (this.closed ? false : applyLayers(sender, active));
    const next = this.layerChain.then(apply).catch(async (err) => {
      console.warn('tandem: could not change simulcast layers, trying again', err);
      await new Promise((r) => setTimeout(r, 500));
      return apply();
    });
    this.layerChain = next.catch((err) => {
      console.warn('tandem: could not change simulcast layers', err);
      return false;
    });
    return this.layerChain;
  }

  /** The camera's encodings as sent now: [{rid, active}] ([] without a camera). */
  layers() {
    const sender = this.senders.video;
    if (!sender) return [];
    return (sender.getParameters().encodings || []).map((e) => ({ rid: e.rid || '', active: e.active !== false }));
  }

  /** Swaps the track sent on pub for kind 'audio'|'video' (no renegotiation). */
  async replaceTrack(kind, track) {
    const sender = this.senders[kind];
    if (!sender) throw new Error(`no ${kind} sender`);
    await sender.replaceTrack(track);
  }

  async stats() {
    const out = { framesDecoded: 0, audioPacketsReceived: 0, audioBytesReceived: 0 };
    const pc = this.pcs.sub;
    if (!pc || this.closed) return out;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const kind = s.kind || s.mediaType;
      if (kind === 'video') out.framesDecoded += s.framesDecoded || 0;
      else if (kind === 'audio') {
        out.audioPacketsReceived += s.packetsReceived || 0;
        out.audioBytesReceived += s.bytesReceived || 0;
      }
    });
    return out;
  }

  /**
   * What arrives from each remote user, from the sub PeerConnection's
   * inbound-rtp statistics: {user: {framesDecoded, videoBytes, audioBytes,
   * audioPackets}}. Users whose tracks were offered but who sent nothing
   * yet show zeros.
   */
  async remoteStats() {
    const out = {};
    const pc = this.pcs.sub;
    if (!pc || this.closed) return out;
    const byMid = new Map(); // mid → user whose track that m-line carries now
    for (const t of pc.getTransceivers()) {
      if (t.mid == null || !t.receiver || !t.receiver.track) continue;
      const user = this.trackUsers.get(t.receiver.track);
      const live = t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv';
      if (!user || !live) continue;
      byMid.set(t.mid, user);
      if (!out[user]) out[user] = CallSession.emptyStats();
    }
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const user = byMid.get(s.mid);
      if (!user) return;
      const u = out[user] || (out[user] = CallSession.emptyStats());
      const kind = s.kind || s.mediaType;
      if (kind === 'video') {
        u.framesDecoded += s.framesDecoded || 0;
        u.videoBytes += s.bytesReceived || 0;
        u.freezeCount += s.freezeCount || 0;
        u.freezeSeconds += s.totalFreezesDuration || 0;
        u.frameWidth = Math.max(u.frameWidth, s.frameWidth || 0);
      } else if (kind === 'audio') {
        u.audioBytes += s.bytesReceived || 0;
        u.audioPackets += s.packetsReceived || 0;
        u.concealedSamples += s.concealedSamples || 0;
        u.samplesReceived += s.totalSamplesReceived || 0;
      }
    });
    return out;
  }

  /**
   * What remoteStats reports per user: frames decoded, Chrome's freezes
   * (count and seconds), the decoded width, bytes, audio packets and the
   * audio samples received and concealed (at 48 kHz).
   */
  static emptyStats() {
    return {
      framesDecoded: 0, videoBytes: 0, freezeCount: 0, freezeSeconds: 0, frameWidth: 0,
      audioBytes: 0, audioPackets: 0, concealedSamples: 0, samplesReceived: 0,
    };
  }

  /**
   * Starts sending stream on the transceivers start() made for sendKinds:
   * no renegotiation, the media simply begins. Tracks of other kinds are
   * not sent.
   */
  async attachStream(stream) {
    if (this.closed || !stream) return;
    this.localStream = stream;
    this.sendKinds = null;
    for (const track of stream.getTracks()) {
      const sender = this.senders[track.kind];
      if (!sender || sender.track) continue;
      await sender.replaceTrack(track);
      if (typeof sender.setStreams === 'function') sender.setStreams(stream);
    }
  }

  /**
   * Starts sending stream on a leg that sent nothing so far (a device that
   * listened along and takes the call): new transceivers, one pub offer.
   */
  sendStream(stream) {
    if (this.closed || !stream || !this.pcs.pub) return;
    this.localStream = stream;
    for (const track of stream.getTracks()) {
      if (this.senders[track.kind]) continue;
      const init = { direction: 'sendonly', streams: [stream] };
      const encodings = track.kind === 'video' ? cameraEncodings() : undefined;
      if (encodings) init.sendEncodings = encodings;
      this.senders[track.kind] = this.pcs.pub.addTransceiver(track, init).sender;
    }
    this.offerPub();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.iceTimers.pub);
    clearTimeout(this.iceTimers.sub);
    for (const name of ['pub', 'sub']) {
      const pc = this.pcs[name];
      if (!pc) continue;
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      try { pc.close(); } catch { /* ignore */ }
    }
  }
}
