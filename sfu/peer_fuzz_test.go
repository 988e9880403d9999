package sfu

import (
	"errors"
	"testing"
)

// FuzzParseSDP feeds arbitrary bytes to the SDP gate every client offer and
// answer passes before pion sees it: it must reject with ErrBadSDP, never
// panic.
func FuzzParseSDP(f *testing.F) {
	f.Add("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("v=0\r\n")
	f.Add("")
	f.Add("m=video 9 RTP/AVP 96\r\na=mid:\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseSDP(s); err != nil && !errors.Is(err, ErrBadSDP) {
			t.Fatalf("error %v does not wrap ErrBadSDP", err)
		}
	})
}
