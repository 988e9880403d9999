package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/assistwire"
)

// Remote assistance in a room (DESIGN.md, "Remote assistance"). The SFU is
// where the helped person's grants are enforced: the helped user's screen
// share reaches the helper only while view is granted, and of what the
// helper sends on its "assist" data channel only the events of granted
// classes reach the helped user's device. Everything else is dropped here
// and counted.

// AssistLabel is the label of the data channel a helper and a helped
// device open on their pub PeerConnection for assistance events
// (internal/assistwire).
const AssistLabel = "assist"

// Assist is a room's remote assistance: the helper's and the helped
// user's stream ids (user ids) and what the helped device granted.
type Assist struct {
	Helper, Helped          string
	View, Annotate, Control bool
}

// classes is the set of event classes the helper may send.
func (a *Assist) classes() assistwire.Class {
	var c assistwire.Class
	if a.Control {
		c |= assistwire.Control
	}
	if a.Annotate {
		c |= assistwire.Annotate
	}
	return c
}

// AssistStats counts the assistance events the room's SFU handled.
type AssistStats struct {
	Forwarded uint64 // events that reached the helped device
	Denied    uint64 // well-formed events without a grant, or from someone not the helper
	Malformed uint64 // malformed or out-of-range events, and refused messages
	Flooded   uint64 // events over the rate a helper may send (assistRate)
}

// A helper's events reach the helped device at most this fast: a person
// moving a pointer at 60 Hz while typing sends a small part of it, and a
// flood from a broken or hostile client is dropped here, not on the
// helped device's link and input queue.
const (
	assistRate  = 400 // events per second
	assistBurst = 800
)

// assistState is a room's assistance and its counters.
type assistState struct {
	cur         atomic.Pointer[Assist]
	lastControl atomic.Int64 // unix nanoseconds of the last control event forwarded
	forwarded   atomic.Uint64
	denied      atomic.Uint64
	malformed   atomic.Uint64
	flooded     atomic.Uint64

	bucketMu sync.Mutex
	tokens   float64   // events the helper may send now
	filled   time.Time // when tokens was last topped up
}

// allow takes n events from the room's budget, or reports false (and
// takes none) when the helper sends faster than assistRate.
func (st *assistState) allow(n int, now time.Time) bool {
	st.bucketMu.Lock()
	defer st.bucketMu.Unlock()
	if st.filled.IsZero() {
		st.tokens = assistBurst
	} else {
		st.tokens = min(assistBurst, st.tokens+now.Sub(st.filled).Seconds()*assistRate)
	}
	st.filled = now
	if st.tokens < float64(n) {
		return false
	}
	st.tokens -= float64(n)
	return true
}

// SetAssist sets the room's assistance (nil: none) and brings the
// helper's subscriptions to the helped user's screen in line with it.
func (r *Room) SetAssist(a *Assist) {
	if a != nil {
		c := *a
		a = &c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assist.cur.Store(a)
	for _, ft := range r.tracks {
		if !ft.screen {
			continue
		}
		for _, p := range r.participants {
			if p == ft.publisher || p.kind != kindLeg || p.streamID == ft.publisher.streamID {
				continue
			}
			want, have := r.mayReceive(ft, p), ft.hasDown(p)
			switch {
			case want && !have:
				r.subscribeLocked(ft, p)
			case !want && have:
				for _, d := range ft.removeDowns(func(d *downTrack) bool { return d.sub == p }) {
					p.removeDown(d)
				}
			}
		}
	}
}

// mayReceive reports whether sub may receive ft: anything but a screen
// share of the helped user, which only the helper granted view gets while
// assistance runs, and no screen share at all for a WHEP viewer.
func (r *Room) mayReceive(ft *forwardTrack, sub *Participant) bool {
	if ft.screen && sub.kind == kindViewer {
		// A viewer is nobody's helper, and its tracks are fixed when it
		// arrives: a screen shared now may be one shared for assistance
		// later, under grants the viewer never had.
		return false
	}
	a := r.assist.cur.Load()
	if !ft.screen || a == nil || ft.publisher.streamID != a.Helped {
		return true
	}
	return sub.streamID == a.Helper && a.View
}

// ControlActivity is when the helper's last control event was forwarded;
// zero if never.
func (r *Room) ControlActivity() time.Time {
	if n := r.assist.lastControl.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// AssistStats returns the room's assistance counters.
func (r *Room) AssistStats() AssistStats {
	return AssistStats{
		Forwarded: r.assist.forwarded.Load(),
		Denied:    r.assist.denied.Load(),
		Malformed: r.assist.malformed.Load(),
		Flooded:   r.assist.flooded.Load(),
	}
}

// assistChannel is a participant's "assist" data channel and the buffers
// its messages are decoded and re-encoded in; pion delivers one channel's
// messages one at a time.
type assistChannel struct {
	dc     *webrtc.DataChannel
	events []assistwire.Event
	out    []byte
}

// onDataChannel takes the "assist" data channel a client opens on pub;
// any other is closed.
func (p *Participant) onDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() != AssistLabel {
		p.log.Debug("data channel refused", "label", dc.Label())
		_ = dc.Close()
		return
	}
	ch := &assistChannel{dc: dc, events: make([]assistwire.Event, 0, assistwire.MaxEvents)}
	dc.OnOpen(func() { p.assistDC.Store(ch) })
	dc.OnClose(func() { p.assistDC.CompareAndSwap(ch, nil) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if !m.IsString {
			p.room.relayAssist(p, ch, m.Data)
		} else {
			p.room.assist.malformed.Add(1)
		}
	})
}

// relayAssist forwards what the helper from sent and may send to the
// helped user's devices.
func (r *Room) relayAssist(from *Participant, ch *assistChannel, msg []byte) {
	st := &r.assist
	events, drops, err := assistwire.Decode(msg, ch.events[:0])
	if err != nil {
		st.malformed.Add(1)
		return
	}
	st.malformed.Add(uint64(drops.Total()))
	a := st.cur.Load()
	if a == nil || from.streamID != a.Helper {
		st.denied.Add(uint64(len(events)))
		return
	}
	kept, denied := assistwire.Filter(events, a.classes())
	st.denied.Add(uint64(denied))
	if len(kept) == 0 {
		return
	}
	if !st.allow(len(kept), time.Now()) {
		st.flooded.Add(uint64(len(kept)))
		return
	}
	out, err := assistwire.AppendMessage(ch.out[:0], kept...)
	if err != nil {
		st.malformed.Add(uint64(len(kept)))
		return
	}
	ch.out = out
	for _, e := range kept {
		if e.Type.Class() == assistwire.Control {
			st.lastControl.Store(time.Now().UnixNano())
			break
		}
	}
	sent := false
	r.mu.Lock()
	for _, p := range r.participants {
		if p.streamID != a.Helped || p.kind != kindLeg {
			continue
		}
		if to := p.assistDC.Load(); to != nil {
			if err := to.dc.Send(out); err == nil {
				sent = true
			}
		}
	}
	r.mu.Unlock()
	if sent {
		st.forwarded.Add(uint64(len(kept)))
	} else {
		st.denied.Add(uint64(len(kept)))
	}
}

// slidesMids lists the media sections an offer marks as a screen share
// with RFC 4796's a=content:slides.
func slidesMids(offer string) map[string]bool {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return nil
	}
	var mids map[string]bool
	for _, m := range d.MediaDescriptions {
		v, ok := m.Attribute("content")
		if !ok || !strings.Contains(","+v+",", ",slides,") {
			continue
		}
		if mid, ok := m.Attribute("mid"); ok {
			if mids == nil {
				mids = make(map[string]bool)
			}
			mids[mid] = true
		}
	}
	return mids
}

// midOf returns the mid of the pub transceiver receiver belongs to.
func (p *Participant) midOf(receiver *webrtc.RTPReceiver) string {
	for _, tr := range p.pub.pc.GetTransceivers() {
		if tr.Receiver() == receiver {
			return tr.Mid()
		}
	}
	return ""
}
