package sfu

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// TestFollowNomination: a pub PC takes the pair its client nominates last
// once the SFU's own check proved it, whatever its priority, and a check
// on the pair it has changes nothing.
func TestFollowNomination(t *testing.T) {
	prflx := func(port int) ice.Candidate {
		c, err := ice.NewCandidatePeerReflexive(&ice.CandidatePeerReflexiveConfig{Network: "udp", Address: "127.0.0.1", Port: port, Component: 1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	local, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: "127.0.0.1", Port: 7882, Component: 1})
	if err != nil {
		t.Fatal(err)
	}
	nominate := stun.MustBuild(stun.BindingRequest, stun.TransactionID)
	nominate.Add(stun.AttrUseCandidate, nil)
	check := stun.MustBuild(stun.BindingRequest, stun.TransactionID)

	var selected atomic.Pointer[net.UDPAddr]
	selected.Store(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 50000})
	follow := followNomination(&selected)

	proved := func(port int) *ice.CandidatePair {
		p := &ice.CandidatePair{Local: local, Remote: prflx(port)}
		p.UpdateRoundTripTime(time.Millisecond) // the SFU's check got its answer
		return p
	}
	unproved := &ice.CandidatePair{Local: local, Remote: prflx(50002)}
	for _, c := range []struct {
		name string
		m    *stun.Message
		pair *ice.CandidatePair
		want bool
	}{
		{"the client nominates another pair the SFU proved", nominate, proved(50001), true},
		{"a plain check on another pair", check, proved(50001), false},
		{"a nomination the SFU has not proved yet", nominate, unproved, false},
		{"a nomination of the pair selected now", nominate, proved(50000), false},
	} {
		if got := follow(c.m, local, c.pair.Remote, c.pair); got != c.want {
			t.Errorf("%s: switch %v, want %v", c.name, got, c.want)
		}
	}
	selected.Store(nil)
	if !follow(nominate, local, prflx(50000), proved(50000)) {
		t.Error("with no pair selected, a proved nomination is not taken")
	}
}
