// @ts-check
// The messages of Tandem's signaling protocol (docs/protocol.md), as JSDoc
// types for the client library and the pages built on it. Nothing here
// runs. Each typedef names its Go type in signaling/protocol, and
// signaling/protocol's tests check that their fields agree.

/**
 * @typedef {object} Party one user in a call, and the device of theirs in it (Party)
 * @property {string} user
 * @property {string} [device]
 */

/**
 * @typedef {object} ICEServer an ICE server for RTCPeerConnection (ICEServer)
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * @typedef {object} Welcome the answer to hello (Welcome)
 * @property {'welcome'} type
 * @property {number} protocol the protocol version
 * @property {string} session_id
 * @property {string} user
 * @property {string} device
 * @property {ICEServer[]} ice_servers
 * @property {number} ring_timeout_ms
 */

/**
 * @typedef {object} Incoming a call ringing this device (Incoming)
 * @property {'incoming'} type
 * @property {string} call_id
 * @property {Party} from who calls, from which device
 * @property {boolean} video
 * @property {boolean} [waiting] the user is in another call
 * @property {boolean} [stranger] the caller is not one of the user's contacts
 * @property {Party[]} [members] who is in the call already, for a group call
 */

/**
 * @typedef {object} Accepted the call was answered (Accepted)
 * @property {'accepted'} type
 * @property {string} call_id
 * @property {Party} by who answered
 * @property {Party} peer the other party, as this device sees it
 * @property {Party[]} [members]
 */

/**
 * @typedef {object} Ended the call ended for this device (Ended)
 * @property {'ended'} type
 * @property {string} call_id
 * @property {string} reason completed, declined, busy, no_answer, cancelled,
 *   answered_elsewhere, declined_elsewhere, connection_lost, failed, handed_off
 * @property {number} duration_ms
 * @property {string} [device] handed_off: the device the call went to
 */

/**
 * @typedef {object} Joined this device joined a room (Joined)
 * @property {'joined'} type
 * @property {string} call_id
 * @property {string} room
 * @property {string} [mode] '' or 'ptt'
 * @property {Party[]} members
 */

/**
 * @typedef {object} MemberJoined someone joined the call (MemberJoined)
 * @property {'member_joined'} type
 * @property {string} call_id
 * @property {Party} member
 */

/**
 * @typedef {object} MemberLeft someone left the call (MemberLeft)
 * @property {'member_left'} type
 * @property {string} call_id
 * @property {string} user
 * @property {string} reason
 */

/**
 * @typedef {object} SDP an offer or answer of one of the call's two
 *   PeerConnections (SDP)
 * @property {'sdp'} type
 * @property {string} call_id
 * @property {'pub'|'sub'} pc
 * @property {'offer'|'answer'} kind
 * @property {string} sdp
 */

/**
 * @typedef {object} ICECandidate (ICECandidate)
 * @property {string} candidate
 * @property {string} [sdpMid]
 * @property {number} [sdpMLineIndex]
 * @property {string} [usernameFragment]
 */

/**
 * @typedef {object} ICE a trickled candidate (ICE)
 * @property {'ice'} type
 * @property {string} call_id
 * @property {'pub'|'sub'} pc
 * @property {ICECandidate} candidate
 */

/**
 * @typedef {object} Handoff a call moving between a user's devices (Handoff)
 * @property {'handoff'} type
 * @property {string} call_id
 * @property {string} [device]
 * @property {boolean} [listen]
 * @property {boolean} [keep]
 * @property {string} [state] offer, started, done, failed
 * @property {boolean} [video]
 * @property {Party[]} [members]
 * @property {string} [message]
 */

/**
 * @typedef {object} Resumed a call given back after a lost connection (Resumed)
 * @property {'resumed'} type
 * @property {string} call_id
 * @property {string} [room]
 * @property {boolean} [video]
 * @property {Party[]} members
 * @property {boolean} [rejoin] connect the media anew
 */

/**
 * @typedef {object} PersonPresence one contact's presence (PersonPresence)
 * @property {string} user
 * @property {'available'|'in_call'|'offline'} state
 * @property {number} [last_seen_ms] when an offline contact was last seen
 */

/**
 * @typedef {object} Presence contacts' presence: all on sign-in, then each change (Presence)
 * @property {'presence'} type
 * @property {PersonPresence[]} people
 */

/**
 * @typedef {object} ServerError a request refused, or the session closing (Error)
 * @property {'error'} type
 * @property {string} [re] the request's id
 * @property {string} code
 * @property {string} message
 * @property {string} [call_id]
 * @property {number} [retry_after_ms]
 */

/**
 * @typedef {Welcome|Incoming|Accepted|Ended|Joined|MemberJoined|MemberLeft|SDP|ICE|Handoff|Resumed|Presence|ServerError} ServerMessage
 */

export {};
