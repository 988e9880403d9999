// @ts-check
// The call this page is on, and the page's state derived from it.
//
// A Call has one phase and two named transitions: it starts 'calling'
// (placed and ringing, accepted and connecting, or joined and waiting for
// the room), answered() makes it 'in-call', end() makes it 'ended'. The
// page's state is that phase while a call is on it, and otherwise whether
// anyone is signed in and whether a call rings (pageState).

/** @typedef {'calling' | 'in-call' | 'ended'} CallPhase */
/** @typedef {'outgoing' | 'incoming' | 'room'} CallDirection */
/** @typedef {'signed-out' | 'idle' | 'ringing'} RestState */
/** @typedef {RestState | 'calling' | 'in-call'} PageState */

/**
 * A party as the server describes it (protocol.js Party).
 * @typedef {{user: string, device?: string, name?: string}} Party
 */

/**
 * Screen help in this call: the role this device plays and the helper's
 * tools (help.js).
 * @typedef {{state: any, role: string, received: {control: number, annotate: number},
 *   tool: string, stroke: number, drawing: boolean, layer: any, local: any, wired: boolean}} AssistState
 */

export class Call {
  /**
   * @param {{peer: string, video: boolean, direction: CallDirection, callId?: string | null}} o
   */
  constructor({ peer, video, direction, callId = null }) {
    /** @type {string | null} the server's call id, once it gave one */
    this.callId = callId;
    /** @type {string} the other person (a room's name in a room) */
    this.peer = peer;
    this.video = !!video;
    /** @type {CallDirection} */
    this.direction = direction;
    /** @type {CallPhase} */
    this.phase = 'calling';
    this.ringing = false; // the callee's devices ring (ringback plays)
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {import('../call.js').CallSession | null} */
    this.session = null;
    this.audioOn = true;
    this.videoOn = !!video;
    this.answeredAt = 0;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {any[]} sdp/ice that arrived before the session existed */
    this.pending = [];
    this.mediaSent = { audio: true, video: !!video };
    /** @type {string | null} the room's name when this is a room */
    this.room = null;
    /** @type {'ptt' | null} */
    this.mode = null;
    this.joinedMsg = false; // a room's `joined` has arrived
    /** @type {Map<string, Party>} everyone else in the call, in joining order */
    this.members = new Map();
    /** @type {Set<string>} users this device invited into the call who still ring */
    this.invited = new Set();
    /** @type {{holder: string, queue: string[]}} the push-to-talk floor */
    this.floor = { holder: '', queue: [] };
    this.floorUntil = 0; // when the holder's talk time ends (local clock)
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.floorTimer = null;
    this.pttPressed = false;
    /** @type {import('../quality.js').QualityMonitor | null} while media runs */
    this.quality = null;
    /** @type {import('../view.js').ViewReporter | null} while media runs */
    this.view = null;
    this.viewUnsupported = false; // the server answered `view` with unknown_type
    this.viewSeq = 0;
    /** @type {import('../speakers.js').SpeakerTracker | null} */
    this.speakers = null;
    this.watchers = 0; // WHEP players watching the call from outside it
    this.helpOnAnswer = false; // ask to help with their screen once answered
    /** @type {AssistState | null} */
    this.assist = null;
    // Moving between one's devices (moving.js).
    this.listening = false; // this device listens along; the call stays on another
    this.moving = false; // this device is taking the call from another
    this.from = ''; // the device the call is moving or listened from
    /** @type {string[] | null} kinds the page sends once its media opens */
    this.sendKinds = null;
    // The signaling connection dropped during the call (connection.js).
    this.offline = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.resumeTimer = null;
  }

  /** The other side answered, the room let us in, or a moved call arrived. */
  answered(now = Date.now()) {
    if (this.phase !== 'calling') return false;
    this.phase = 'in-call';
    this.answeredAt = now;
    return true;
  }

  /** The call is over for this page. */
  end() {
    this.phase = 'ended';
  }
}
