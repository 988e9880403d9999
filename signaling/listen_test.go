package signaling

import "testing"

const offerHead = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

func TestSendsMedia(t *testing.T) {
	for _, tt := range []struct {
		name, sdp string
		want      bool
	}{
		{"recvonly audio", offerHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n", false},
		{"inactive and recvonly", offerHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=inactive\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n", false},
		{"sendonly video", offerHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n", true},
		{"no direction means sendrecv", offerHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", true},
		{"session-level recvonly", offerHead + "a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", false},
		{"rejected section", offerHead + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n", false},
		{"not sdp", "hello", true},
		{"empty: nothing to send (the SFU refuses it for other reasons)", "", false},
	} {
		if got := sendsMedia(tt.sdp); got != tt.want {
			t.Errorf("%s: sendsMedia = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzSendsMedia: any offer a listening device sends is judged without a
// panic.
func FuzzSendsMedia(f *testing.F) {
	f.Add(offerHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n")
	f.Add(offerHead + "a=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
	f.Add("v=0\r\nm=")
	f.Fuzz(func(t *testing.T, s string) {
		_ = sendsMedia(s)
	})
}
