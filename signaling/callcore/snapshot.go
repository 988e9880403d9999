package callcore

import (
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A deployment of several nodes keeps a snapshot of each answered call
// (store.CallSnapshot). When the call's home node goes away, another node
// takes the call over from it: Snapshot is what is kept, Restore the
// transition of taking over.

// Snapshot describes c for another node to rebuild: the call and its
// joined members, each on the device that holds their place. home is the
// node that holds it now; ptt, whether it is a push-to-talk room.
func (c *Call[D]) Snapshot(ms []*Member[D], home string, ptt bool) store.CallSnapshot {
	s := store.CallSnapshot{ID: c.ID, Home: home, Room: c.Room, PTT: ptt, Caller: c.Caller, Callee: c.Callee,
		Video: c.Video, Started: c.Started, Answered: c.Answered}
	var zero D
	for _, m := range Joined(ms) {
		ms := store.MemberSnapshot{User: m.User, Device: c.Party(m.Dev).Device, Joined: m.Joined}
		if m.Inviter != zero {
			ms.Inviter = c.Party(m.Inviter).User
		}
		for _, l := range m.Listeners {
			ms.Aside = append(ms.Aside, c.Party(l).Device)
		}
		if m.Move != nil {
			ms.Aside = append(ms.Aside, c.Party(m.Move.To).Device)
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

// Restore takes a call over from snap: the call, answered, with each of
// its members joined on the device device finds for them; a device aside
// (listening along, or taking the call over) hears the call ended
// (failed) for it. A member whose
// device is online here (device reports true) hears resumed, with rejoin:
// its media connects anew on this node. The others are returned as away:
// the caller holds their place for the grace window, as after a lost
// connection, and a device that comes back in time resumes (Resume). An
// inviter is found as device(user, "").
func Restore[D comparable](snap store.CallSnapshot, party func(D) protocol.Party, device func(user, device string) (D, bool)) (
	c *Call[D], ms []*Member[D], away []*Member[D], effs []Effect[D]) {
	c = &Call[D]{ID: snap.ID, Caller: snap.Caller, Callee: snap.Callee, Room: snap.Room, Video: snap.Video,
		Phase: PhaseActive, Started: snap.Started, Answered: snap.Answered, Party: party}
	var here []*Member[D]
	for _, s := range snap.Members {
		m := &Member[D]{User: s.User, State: MemberJoined, Joined: s.Joined}
		if s.Inviter != "" {
			m.Inviter, _ = device(s.Inviter, "")
		}
		var online bool
		m.Dev, online = device(s.User, s.Device)
		m.Ring = AnsweredOn(m.Dev)
		if online {
			here = append(here, m)
		} else {
			away = append(away, m)
		}
		ms = append(ms, m)
	}
	for _, m := range here {
		effs = append(effs, send(m.Dev, protocol.TypeResumed, &protocol.Resumed{CallID: c.ID, Room: c.Room, Video: c.Video,
			Members: c.Parties(ms), Rejoin: true}))
	}
	// A device listening along, or taking the call over, had media on the
	// node that went: its part ends, and it may listen or pull again.
	for _, s := range snap.Members {
		for _, dev := range s.Aside {
			if d, online := device(s.User, dev); online && dev != "" {
				effs = append(effs, send(d, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: protocol.ReasonFailed}))
			}
		}
	}
	return c, ms, away, effs
}
