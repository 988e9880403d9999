package signaling

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// refusingHistory is a store that refuses the first refusals history
// writes, as a store that is briefly away does.
type refusingHistory struct {
	*store.Local
	refusals atomic.Int32
}

func (s *refusingHistory) AppendCall(ctx context.Context, user string, e store.CallEntry) error {
	if s.refusals.Add(-1) >= 0 {
		return store.ErrUnavailable
	}
	return s.Local.AppendCall(ctx, user, e)
}

// TestHistoryWrittenWhenTheStoreComesBack: the store refuses a call's
// history for a while; the entries are written once it takes them again,
// each member's once.
func TestHistoryWrittenWhenTheStoreComesBack(t *testing.T) {
	leaks := testkit.LeakCheck(t, 2)
	mem, err := store.OpenLocal("", 10)
	if err != nil {
		t.Fatal(err)
	}
	st := &refusingHistory{Local: mem}
	st.refusals.Store(3)
	h := NewHub(Config{
		RingTimeout: time.Minute, MaxMessageBytes: 64 << 10, PingInterval: time.Minute, PongTimeout: 2 * time.Minute,
		HelloTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, SendQueue: 64, RateLimit: 100,
	}, nameVerifier{}, nil, st, nil)
	srv := httptest.NewServer(h)
	defer func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close(context.Background())
		leaks()
	}()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	alice, bob := dial(t, url, "alice/phone"), dial(t, url, "bob/phone")
	alice.send(map[string]any{"type": protocol.TypeInvite, "id": "1", "to": "bob"})
	id := bob.next(protocol.TypeIncoming)["call_id"].(string)
	bob.send(map[string]any{"type": protocol.TypeAccept, "call_id": id})
	alice.next(protocol.TypeAccepted)
	alice.send(map[string]any{"type": protocol.TypeHangup, "call_id": id})
	bob.next(protocol.TypeEnded)
	for _, u := range []string{"alice", "bob"} {
		testkit.Eventually(t, 10*time.Second, u+"'s history written", func() bool {
			calls, err := mem.Calls(context.Background(), u, 10)
			return err == nil && len(calls) == 1 && calls[0].CallID == id
		})
	}
}
