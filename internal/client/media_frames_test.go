package client

import (
	"testing"

	"github.com/pion/rtp/codecs"
)

func TestVP8KeyframeDetection(t *testing.T) {
	for _, pictureID := range []bool{false, true} {
		p := &codecs.VP8Payloader{EnablePictureID: pictureID}
		key := p.Payload(1200, vp8Keyframe())
		delta := p.Payload(1200, vp8Delta())
		if len(key) != 1 || len(delta) != 1 {
			t.Fatalf("frames take %d and %d packets, want 1 each", len(key), len(delta))
		}
		if !isVP8Keyframe(key[0]) {
			t.Errorf("pictureID=%v: keyframe not detected", pictureID)
		}
		if isVP8Keyframe(delta[0]) {
			t.Errorf("pictureID=%v: delta frame taken for a keyframe", pictureID)
		}
	}
	if isVP8Keyframe(nil) || isVP8Keyframe([]byte{0x90}) {
		t.Error("truncated payload taken for a keyframe")
	}
}

func TestLoopbackCandidate(t *testing.T) {
	tests := []struct {
		cand string
		want bool
	}{
		{"", true},
		{"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", true},
		{"candidate:1 1 udp 2130706431 127.0.0.2 50000 typ host", true},
		{"candidate:1 1 udp 2130706431 192.168.1.5 50000 typ host", false},
		{"candidate:1 1 udp 2130706431 abcd.local 50000 typ host", false},
		{"candidate:1 1 udp 1694498815 203.0.113.7 50000 typ srflx raddr 127.0.0.1 rport 1", false},
	}
	for _, tt := range tests {
		if got := loopbackCandidate(tt.cand); got != tt.want {
			t.Errorf("loopbackCandidate(%q) = %v, want %v", tt.cand, got, tt.want)
		}
	}
}
