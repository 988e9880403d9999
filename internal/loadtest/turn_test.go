package loadtest

import (
	"context"
	"strings"
	"testing"
)

// A load test never leaves the machine: a server address off loopback is
// refused before any packet is sent.
func TestTURNRefusesNonLoopbackServer(t *testing.T) {
	for _, addr := range []string{"192.0.2.1:3478", "[2001:db8::1]:3478", "10.0.0.1:3478"} {
		_, err := TURNAllocations(context.Background(), TURNConfig{Server: addr, Secret: []byte("s"), Allocations: 1})
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s: got %v", addr, err)
		}
	}
}
