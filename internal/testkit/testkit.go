// Package testkit holds what Tandem's tests share: waiting for a condition
// and checking that goroutines end. It imports only the standard library,
// so the tests of every package can use it.
package testkit

import (
	"runtime"
	"testing"
	"time"
)

// PollEvery is how often Eventually checks its condition: often enough that
// a test waits little past the moment it holds, seldom enough not to steal
// the CPU from what it waits for.
const PollEvery = 10 * time.Millisecond

// Eventually waits until cond holds, checking it every PollEvery, and
// fails t when it still does not after d, naming what it waited for.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(PollEvery)
	}
}

// LeakCheck counts the goroutines running now and returns a check that
// waits up to 10 s for their number to come back to that count plus
// slack, then fails t with every goroutine's stack. Call it before starting
// what is tested and the check after closing it; slack allows for
// goroutines the runtime or a library starts once and keeps (an HTTP
// client's idle connections, say).
func LeakCheck(t testing.TB, slack int) func() {
	base := runtime.NumGoroutine() + slack
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Fatalf("goroutines leaked: %d running, at most %d expected:\n%s", runtime.NumGoroutine(), base, buf[:n])
			}
			time.Sleep(PollEvery)
		}
	}
}
