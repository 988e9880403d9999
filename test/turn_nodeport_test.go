package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/udptrap"
)

// TestTURNRelaysToTheNodeOnlyAtItsMediaPort: TURN relays to this node's
// media port (a call over relays only carries media), and nothing a
// client relays to another port of the same address arrives there:
// coturn's client gets 403 for its channel, its Send indications are
// dropped, over UDP and TCP, and each refusal is counted.
func TestTURNRelaysToTheNodeOnlyAtItsMediaPort(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.TURN.Secrets = []string{turnSecret}
		c.TURN.MaxAllocationsPerUser = 100
	})
	tu := ts.TURN()
	media := ts.MediaAddr()
	if !media.IP.IsLoopback() {
		t.Fatalf("media address %v: the test expects loopback", media)
	}
	// A service on the node's address that is not Tandem's.
	trap := udptrap.New(t, 1)
	port := trap.Addr(0).Port

	for _, tc := range []struct {
		name  string
		tcp   bool
		flags []string
		want  string // what coturn's client prints, "" for nothing in particular
	}{
		{"udp channel", false, nil, "403"},
		{"udp send", false, []string{"-s"}, ""},
		{"tcp channel", true, []string{"-t"}, "403"},
		{"tcp send", true, []string{"-t", "-s"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tu.Stats().PeerDenied["node_port"]
			serverPort := tu.UDPAddr().Port
			if tc.tcp {
				serverPort = tu.TCPAddr().Port
			}
			args := append(append([]string{}, tc.flags...), "-c", "-W", turnSecret, "-u", "mallory",
				"-e", media.IP.String(), "-r", strconv.Itoa(port), "-p", strconv.Itoa(serverPort), "-n", "10")
			// The client runs until the server has refused it (and said
			// so, where it answers), or for 20 s on a busy machine.
			refused := func(out string) bool {
				return tu.Stats().PeerDenied["node_port"] > before && (tc.want == "" || strings.Contains(out, tc.want))
			}
			r := uclientUntil(t, 20*time.Second, refused, args...)
			if tc.want != "" && !strings.Contains(r.out, tc.want) {
				t.Fatalf("no %s from the server (exit %d):\n%s", tc.want, r.exitCode, tail(r.out, 10))
			}
			if r.recv != 0 {
				t.Fatalf("%d messages came back from another port of the node", r.recv)
			}
			if got := tu.Stats().PeerDenied["node_port"]; got <= before {
				t.Fatalf("refusal not counted: node_port %d → %d\n%s", before, got, tail(r.out, 10))
			}
		})
	}
	// Every datagram would have arrived by now: the relays are closed.
	if n := trap.Packets(); n != 0 {
		t.Fatalf("the service on port %d received %d datagrams through TURN", port, n)
	}

	// The media port itself: a call whose legs may only use relays.
	dial := func(user, device string) *client.Client {
		c, err := client.Dial(testCtx(t, 10*time.Second), client.Options{URL: ts.wsURL(), Token: ts.token(t, user, device), LoopbackOnly: true, UseICEServers: true, RelayOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := dial("alice", "phone"), dial("bob", "laptop")
	id := answeredCall(t, alice, bob, false)
	am, bm := startMedia(t, testCtx(t, 30*time.Second), id, alice, bob)
	testkit.Eventually(t, 20*time.Second, "media over relays to the media port", func() bool {
		return am.Stats().Audio.PacketsReceived > 20 && bm.Stats().Audio.PacketsReceived > 20
	})
	if st := tu.Stats(); st.RelayedPackets["to_peer"] == 0 {
		t.Fatalf("media did not go through TURN: %+v", st.RelayedPackets)
	}
}
