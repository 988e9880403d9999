package testkit

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/tandemcall/tandem/internal/pionlog"
)

func TestCauses(t *testing.T) {
	c := NewCauses(nil)
	log := slog.New(c)
	log.Error("history not written", "err", errors.New("redis: connection refused"))
	log.With("call", "c_1").Error("call ended badly", "reason", "node_gone")
	log.With("err", errors.New("closed")).Error("write failed")
	log.Warn("only a warning")
	log.Error("something went wrong", "call", "c_2")
	pf := pionlog.Factory{Log: log, Levels: pionlog.Plain}.NewLogger("ice")
	pf.Errorf("failed to send packet: %v", errors.New("closed"))
	pf.Error("something failed")
	missing, n := c.Uncaused()
	if n != 6 {
		t.Errorf("%d error records counted, want 6", n)
	}
	if len(missing) != 2 {
		t.Fatalf("uncaused: %q, want the two lines without a cause", missing)
	}
	if missing[0] != `"something went wrong" call=c_2` {
		t.Errorf("uncaused[0] = %q", missing[0])
	}
}
