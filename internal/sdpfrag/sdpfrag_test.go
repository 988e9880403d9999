package sdpfrag

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := "a=ice-options:trickle ice2\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
		"a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
		"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ srflx raddr 10.0.0.1 rport 9 generation 0\r\n" +
		"a=end-of-candidates\r\n"
	f, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "EsAw" || f.Pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || len(f.Candidates) != 2 || !f.EndOfCandidates {
		t.Fatalf("parsed %+v", f)
	}
	if c := f.Candidates[0]; c.SDPMid == nil || *c.SDPMid != "0" || c.SDPMLineIndex == nil || *c.SDPMLineIndex != 0 ||
		!strings.HasPrefix(c.Candidate, "candidate:1387637174 ") {
		t.Errorf("candidate %+v", c)
	}
	for name, body := range map[string]string{
		"empty":          "",
		"blank lines":    "\r\n\r\n",
		"not sdp":        "hello world",
		"short ufrag":    "a=ice-ufrag:ab\r\n",
		"short pwd":      "a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n",
		"ufrag injects":  "a=ice-ufrag:abcd\r\nx\r\n",
		"ufrag chars":    "a=ice-ufrag:ab cd\r\n",
		"two ufrags":     "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\n",
		"bad candidate":  "a=candidate:nonsense\r\n",
		"bad address":    "a=candidate:1 1 udp 1 not-an-ip 9 typ host\r\n",
		"bad mid":        "a=mid:a b\r\n",
		"invalid utf8":   "a=ice-ufrag:\xff\xfe\xfd\xfc\r\n",
		"too many lines": strings.Repeat("a=x\r\n", maxFragmentLines+1),
		"too many cands": strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", maxFragmentCandidates+1),
	} {
		if _, err := Parse(body); !errors.Is(err, ErrBad) {
			t.Errorf("%s: err = %v, want ErrBad", name, err)
		}
	}
}

func TestWithCredentials(t *testing.T) {
	in := "v=0\r\na=ice-ufrag:old1\r\nm=audio 9 X 0\r\na=ice-pwd:oldpasswordoldpassword\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=end-of-candidates\r\na=mid:0\r\n"
	out := WithCredentials(in, "new1", "newpasswordnewpassword")
	want := "v=0\r\na=ice-ufrag:new1\r\nm=audio 9 X 0\r\na=ice-pwd:newpasswordnewpassword\r\na=mid:0\r\n"
	if out != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
}

// FuzzParse feeds arbitrary PATCH bodies to the fragment
// parser: it must not panic, must reject with ErrBad, and what it
// accepts must be safe to splice into an SDP.
func FuzzParse(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=candidate:1 1 tcp 1 ::1 9 typ host tcptype passive\n")
	f.Add("m=video 9 X 0\na=mid:1\na=candidate:2 1 udp 1 abc.local 9 typ host\n")
	f.Add("")
	f.Add("a=ice-ufrag:\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		fr, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("error %v does not wrap ErrBad", err)
			}
			return
		}
		if fr.Ufrag != "" && !ICEString(fr.Ufrag, 4) || fr.Pwd != "" && !ICEString(fr.Pwd, 22) {
			t.Fatalf("accepted credentials %q %q", fr.Ufrag, fr.Pwd)
		}
		if len(fr.Candidates) > maxFragmentCandidates {
			t.Fatalf("%d candidates", len(fr.Candidates))
		}
		for _, c := range fr.Candidates {
			if strings.ContainsAny(c.Candidate, "\r\n") {
				t.Fatalf("candidate with a line break: %q", c.Candidate)
			}
		}
	})
}
