package signaling

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// limitedHub is a hub with small invite limits on st and a clock the
// test moves.
func limitedHub(t *testing.T, st Store) (*Hub, *clock.Manual) {
	t.Helper()
	now := clock.NewManual(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	h := NewHub(Config{Clock: now, InviteLimits: InviteLimits{
		Caller: store.Rate{Every: 6 * time.Second, Burst: 4},
		Pair:   store.Rate{Every: 12 * time.Second, Burst: 2},
		Callee: store.Rate{Every: 4 * time.Second, Burst: 3},
	}}, nil, nil, st, nil)
	return h, now
}

// limitInvite runs the limits as invite does.
func limitInvite(h *Hub, caller, callee string) error {
	if err := h.limitCaller(caller); err != nil {
		return err
	}
	return h.limitCallee(caller, callee)
}

// TestInviteLimits: which limit refuses which invite, and what the caller
// is told, step by step.
func TestInviteLimits(t *testing.T) {
	mem, err := store.OpenLocal("", 10)
	if err != nil {
		t.Fatal(err)
	}
	h, now := limitedHub(t, mem)
	t0 := now.Now()
	steps := []struct {
		at             time.Duration
		caller, callee string
		want           string // "" allowed; else the start of the message
		retry          time.Duration
	}{
		{0, "mallory", "bob", "", 0},
		{0, "mallory", "bob", "", 0},
		{0, "mallory", "bob", "you have called bob too often", 12 * time.Second},
		{time.Second, "mallory", "carol", "", 0}, // another callee: the pair's budget is bob's
		{time.Second, "trudy", "bob", "", 0},
		{time.Second, "alice", "bob", "bob is being called too often", 3 * time.Second},
		// The caller's limit counted the invite the pair's refused.
		{2 * time.Second, "mallory", "dave", "you have placed too many calls", 4 * time.Second},
		{2 * time.Second, "mallory", "nobody", "you have placed too many calls", 4 * time.Second},
		{6 * time.Second, "mallory", "erin", "", 0}, // one interval later
		{12 * time.Second, "alice", "bob", "", 0},   // the callee's budget came back
		{12 * time.Second, "mallory", "bob", "", 0}, // and the pair's
		{12 * time.Second, "mallory", "bob", "you have placed too many calls", 6 * time.Second},
	}
	for i, st := range steps {
		now.Advance(t0.Add(st.at).Sub(now.Now()))
		err := limitInvite(h, st.caller, st.callee)
		var rerr *reqError
		switch {
		case st.want == "" && err != nil:
			t.Errorf("step %d: %s → %s refused: %v", i, st.caller, st.callee, err)
		case st.want != "" && !errors.As(err, &rerr):
			t.Errorf("step %d: %s → %s: %v, want rate_limited", i, st.caller, st.callee, err)
		case st.want != "":
			if rerr.code != protocol.CodeRateLimited || !strings.HasPrefix(rerr.msg, st.want) || rerr.retry != st.retry {
				t.Errorf("step %d: %s → %s: %s %q after %v; want rate_limited %q… after %v", i, st.caller, st.callee, rerr.code, rerr.msg, rerr.retry, st.want, st.retry)
			}
			if !strings.Contains(rerr.msg, "try again in ") {
				t.Errorf("step %d: %q does not say when to try again", i, rerr.msg)
			}
		}
	}
	for limit, want := range map[string]float64{limitCaller: 3, limitPair: 1, limitCallee: 1} {
		var m dto.Metric
		if err := h.metrics.limited.WithLabelValues(limit).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("%s refusals counted %v, want %v", limit, got, want)
		}
	}
}

// TestInviteLimitsOff: with no limits set nothing is refused.
func TestInviteLimitsOff(t *testing.T) {
	mem, _ := store.OpenLocal("", 10)
	h := NewHub(Config{}, nil, nil, mem, nil)
	for i := range 1000 {
		if err := limitInvite(h, "mallory", "bob"); err != nil {
			t.Fatalf("invite %d: %v", i, err)
		}
	}
}

// unanswering is a store whose limiter cannot be reached.
type unanswering struct{ *store.Local }

func (unanswering) Allow(context.Context, string, store.Rate, time.Time) (store.Decision, error) {
	return store.Decision{}, store.ErrUnavailable
}

// TestInviteLimitsWithoutTheStore: when the store does not answer, the
// limits hold on the node, rather than refusing every call or none.
func TestInviteLimitsWithoutTheStore(t *testing.T) {
	mem, _ := store.OpenLocal("", 10)
	h, _ := limitedHub(t, unanswering{mem})
	for i := range 2 {
		if err := limitInvite(h, "mallory", "bob"); err != nil {
			t.Fatalf("invite %d: %v", i, err)
		}
	}
	var rerr *reqError
	if err := limitInvite(h, "mallory", "bob"); !errors.As(err, &rerr) || rerr.code != protocol.CodeRateLimited {
		t.Errorf("the third invite: %v, want rate_limited from the node's own limit", err)
	}
	if err := limitInvite(h, "alice", "carol"); err != nil {
		t.Errorf("another pair: %v", err)
	}
}

// TestRetryWording: the wait said to people, and on the wire.
func TestRetryWording(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		text string
		ms   int64
	}{
		{0, "1 second", 0},
		{time.Millisecond, "1 second", 1},
		{1500 * time.Microsecond, "1 second", 2},
		{time.Second, "1 second", 1000},
		{1001 * time.Millisecond, "2 seconds", 1001},
		{12 * time.Second, "12 seconds", 12000},
	} {
		if got := inSeconds(c.d); got != c.text {
			t.Errorf("inSeconds(%v) = %q, want %q", c.d, got, c.text)
		}
		if got := retryMS(c.d); got != c.ms {
			t.Errorf("retryMS(%v) = %d, want %d", c.d, got, c.ms)
		}
	}
}
