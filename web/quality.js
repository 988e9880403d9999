// @ts-check
// Connection quality from the call's own statistics. The SFU answers the
// media it receives with RTCP receiver reports, which give the browser real
// loss, jitter and round-trip figures for what it sends (remote-inbound-rtp
// on pub); what arrives from each remote user is measured directly
// (inbound-rtp on sub). Every couple of seconds this turns both into a
// level — good, poor or bad — for this device's connection and for each
// remote user, with the figures behind it.

/** Level thresholds: bad above the first, poor above the second. */
export const LIMITS = {
  bad: { lossPct: 10, rttMs: 400 },
  poor: { lossPct: 3, rttMs: 200, jitterMs: 30 },
};

/** 'good' | 'poor' | 'bad' for figures (null figures are unknown and ignored). */
export function levelFor({ rttMs = null, lossPct = null, jitterMs = null } = {}) {
  const over = (v, limit) => v != null && limit != null && v > limit;
  if (over(lossPct, LIMITS.bad.lossPct) || over(rttMs, LIMITS.bad.rttMs)) return 'bad';
  if (over(lossPct, LIMITS.poor.lossPct) || over(rttMs, LIMITS.poor.rttMs) || over(jitterMs, LIMITS.poor.jitterMs)) return 'poor';
  return 'good';
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const round1 = (v) => (v == null ? null : Math.round(v * 10) / 10);
const ms = (seconds) => (num(seconds) == null ? null : Math.round(seconds * 1000));

/** "rtt 34 ms · loss 0.5 % · jitter 4 ms" (plus frame rate and freezes for video). */
export function describe(q) {
  if (!q) return '';
  const parts = [];
  if (q.rttMs != null) parts.push(`rtt ${q.rttMs} ms`);
  if (q.lossPct != null) parts.push(`loss ${q.lossPct} %`);
  if (q.jitterMs != null) parts.push(`jitter ${q.jitterMs} ms`);
  if (q.fps != null) parts.push(`${q.fps} fps`);
  if (q.freezes) parts.push(`${q.freezes} freeze${q.freezes === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

/** The selected candidate pair's current round-trip time in ms, or null. */
/** @param {RTCStatsReport} report */
function pairRtt(report) {
  /** @type {any} */
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  return pair ? ms(pair.currentRoundTripTime) : null;
}

/**
 * Samples a CallSession's statistics every intervalMs and calls onUpdate
 * with {local, remote: {user: …}}; each entry is {level, rttMs, lossPct,
 * jitterMs} (remote entries add fps and freezes). Loss counts only the
 * packets of the last interval.
 */
export class QualityMonitor {
  /**
   * @param {import('./call.js').CallSession} session
   * @param {{intervalMs?: number, onUpdate?: (figures: {local: any, remote: Object<string, any>}) => void}} [options]
   */
  constructor(session, { intervalMs = 2000, onUpdate = () => {} } = {}) {
    this.session = session;
    this.intervalMs = intervalMs;
    this.onUpdate = onUpdate;
    this.prev = new Map(); // stats id → counters at the last sample
    this.last = { local: null, remote: {} };
    this.timer = null;
    this.busy = false;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // A first, quick look: figures show up soon after the call connects.
    setTimeout(() => this.tick(), Math.min(1000, this.intervalMs));
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.session = null;
  }

  async tick() {
    const s = this.session;
    if (!s || s.closed || this.busy) return;
    this.busy = true;
    try {
      const local = await this.sampleLocal(s);
      const remote = await this.sampleRemote(s);
      if (this.session !== s) return;
      this.last = { local, remote };
      this.onUpdate(this.last);
    } catch (err) {
      console.warn('tandem: could not read call statistics', err);
    } finally {
      this.busy = false;
    }
  }

  /** Counters of stats entry id now minus at the previous sample. */
  delta(id, now) {
    const before = this.prev.get(id) || {};
    this.prev.set(id, now);
    const out = {};
    for (const [k, v] of Object.entries(now)) out[k] = Math.max(0, v - (before[k] || 0));
    return out;
  }

  /** This device's uplink: what the SFU reports about the media it receives from us. */
  async sampleLocal(s) {
    const pc = s.pcs.pub;
    if (!pc || pc.connectionState === 'closed') return null;
    const report = await pc.getStats();
    const sent = new Map(); // outbound-rtp id → packets sent this interval
    report.forEach((r) => {
      if (r.type === 'outbound-rtp') sent.set(r.id, this.delta(r.id, { packets: r.packetsSent || 0 }).packets);
    });
    let rtt = null;
    let lossWeighted = 0;
    let lossPackets = 0;
    let lossAny = null;
    let audioJitter = null;
    let videoJitter = null;
    report.forEach((r) => {
      if (r.type !== 'remote-inbound-rtp') return;
      // Paused simulcast layers keep their last report: only layers that
      // sent something this interval count.
      const packets = sent.get(r.localId) || 0;
      if (!packets) return;
      const kind = r.kind || r.mediaType;
      const rttMs = ms(r.roundTripTime);
      if (rttMs != null) rtt = Math.max(rtt ?? 0, rttMs);
      const frac = num(r.fractionLost);
      if (frac != null) {
        lossWeighted += frac * packets;
        lossPackets += packets;
        lossAny = Math.max(lossAny ?? 0, frac);
      }
      const j = ms(r.jitter);
      if (j != null) {
        if (kind === 'audio') audioJitter = Math.max(audioJitter ?? 0, j);
        else videoJitter = Math.max(videoJitter ?? 0, j);
      }
    });
    const q = {
      // Before the first receiver report, the ICE round trip still tells something.
      rttMs: rtt ?? pairRtt(report),
      lossPct: lossPackets ? round1((lossWeighted / lossPackets) * 100) : lossAny != null ? round1(Number(lossAny) * 100) : null,
      // Audio jitter says most about the path: video packets of one frame
      // leave in a burst, which reads as jitter on its own.
      jitterMs: audioJitter ?? videoJitter,
    };
    q.level = levelOf(pc, q);
    return q;
  }

  /** What arrives from each remote user on sub. */
  async sampleRemote(s) {
    const pc = s.pcs.sub;
    const out = {};
    if (!pc || pc.connectionState === 'closed') return out;
    const byMid = new Map(); // mid → user
    for (const t of pc.getTransceivers()) {
      if (t.mid == null || !t.receiver || !t.receiver.track) continue;
      const user = s.trackUsers.get(t.receiver.track);
      const live = t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv';
      if (user && live) byMid.set(t.mid, user);
    }
    const report = await pc.getStats();
    const rtt = pairRtt(report);
    const acc = {};
    const remoteOut = new Map(); // ssrc → remote-outbound-rtp
    report.forEach((r) => {
      if (r.type === 'remote-outbound-rtp') remoteOut.set(r.ssrc, r);
    });
    report.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      const user = byMid.get(r.mid);
      if (!user) return;
      const a = acc[user] || (acc[user] = { lost: 0, received: 0, audioJitter: null, videoJitter: null, fps: null, freezes: 0, rtt: null });
      // Keyed by user too: the SFU may reuse an m-line for someone else.
      const d = this.delta(`${r.id}/${user}`, {
        lost: Math.max(0, r.packetsLost || 0),
        received: r.packetsReceived || 0,
        freezes: r.freezeCount || 0,
      });
      a.lost += d.lost;
      a.received += d.received;
      a.freezes += d.freezes;
      const kind = r.kind || r.mediaType;
      const j = ms(r.jitter);
      if (kind === 'audio') a.audioJitter = j ?? a.audioJitter;
      else {
        a.videoJitter = j ?? a.videoJitter;
        if (num(r.framesPerSecond) != null) a.fps = Math.round(r.framesPerSecond);
      }
      const ro = remoteOut.get(r.ssrc);
      if (ro && num(ro.roundTripTime) != null) a.rtt = Math.max(a.rtt ?? 0, ms(ro.roundTripTime));
    });
    for (const [user, a] of Object.entries(acc)) {
      const expected = a.lost + a.received;
      const q = {
        rttMs: a.rtt ?? rtt,
        lossPct: expected ? round1((a.lost / expected) * 100) : (this.last.remote[user] ? this.last.remote[user].lossPct : null),
        jitterMs: a.audioJitter ?? a.videoJitter,
        fps: a.fps,
        freezes: a.freezes,
      };
      q.level = levelOf(pc, q);
      out[user] = q;
    }
    return out;
  }
}

function levelOf(pc, q) {
  if (pc.connectionState === 'failed' || pc.connectionState === 'disconnected') return 'bad';
  return levelFor(q);
}
