// Package sdpfrag reads and writes the SDP fragments of trickle ICE
// (RFC 8840, application/trickle-ice-sdpfrag) that WHIP and WHEP clients
// PATCH, and the ICE credentials of a session description.
package sdpfrag

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ErrBad is returned by Parse for a malformed fragment.
var ErrBad = errors.New("sdpfrag: bad ICE fragment")

// Fragment is what a trickle-ice-sdpfrag body (RFC 8840) carries: the
// ICE credentials it belongs to, candidates and end-of-candidates.
type Fragment struct {
	Ufrag, Pwd      string
	Candidates      []webrtc.ICECandidateInit
	EndOfCandidates bool
}

// Limits on a fragment.
const (
	maxFragmentBytes      = 64 << 10
	maxFragmentLines      = 512
	maxFragmentCandidates = 64
	maxMidLen             = 64
)

// Parse parses an application/trickle-ice-sdpfrag body. It
// accepts session- and media-level ice-ufrag and ice-pwd (which must agree
// and use only ICE characters, RFC 8839 §5.4), mid, candidate and
// end-of-candidates lines, ignores other attributes, and returns an error
// wrapping ErrBad for anything malformed.
func Parse(body string) (Fragment, error) {
	var f Fragment
	bad := func(format string, args ...any) (Fragment, error) {
		return Fragment{}, fmt.Errorf("%w: "+format, append([]any{ErrBad}, args...)...)
	}
	if len(body) > maxFragmentBytes {
		return bad("longer than %d bytes", maxFragmentBytes)
	}
	if !utf8.ValidString(body) {
		return bad("not UTF-8")
	}
	lines := strings.Split(body, "\n")
	if len(lines) > maxFragmentLines {
		return bad("more than %d lines", maxFragmentLines)
	}
	mid, sections, seen := "", 0, false
	for n, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return bad("line %d is not <letter>=<value>", n+1)
		}
		seen = true
		if line[0] == 'm' {
			sections++
			mid = ""
			continue
		}
		if line[0] != 'a' {
			continue
		}
		name, value, _ := strings.Cut(line[2:], ":")
		switch name {
		case "ice-ufrag":
			if !ICEString(value, 4) {
				return bad("ice-ufrag must be 4–256 ICE characters")
			}
			if f.Ufrag != "" && f.Ufrag != value {
				return bad("two different ice-ufrag values")
			}
			f.Ufrag = value
		case "ice-pwd":
			if !ICEString(value, 22) {
				return bad("ice-pwd must be 22–256 ICE characters")
			}
			if f.Pwd != "" && f.Pwd != value {
				return bad("two different ice-pwd values")
			}
			f.Pwd = value
		case "mid":
			if value == "" || len(value) > maxMidLen || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return bad("bad mid")
			}
			mid = value
		case "candidate":
			if len(f.Candidates) == maxFragmentCandidates {
				return bad("more than %d candidates", maxFragmentCandidates)
			}
			if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return bad("control character in candidate on line %d", n+1)
			}
			if _, err := ice.UnmarshalCandidate(value); err != nil {
				return bad("candidate on line %d: %v", n+1, err)
			}
			c := webrtc.ICECandidateInit{Candidate: "candidate:" + value}
			if mid != "" {
				m := mid
				c.SDPMid = &m
			}
			if sections > 0 && sections <= maxFragmentLines {
				i := uint16(sections - 1)
				c.SDPMLineIndex = &i
			}
			f.Candidates = append(f.Candidates, c)
		case "end-of-candidates":
			f.EndOfCandidates = true
		}
	}
	if !seen {
		return bad("empty")
	}
	return f, nil
}

// ICEString reports whether s is min–256 ICE characters (ALPHA / DIGIT /
// "+" / "/").
func ICEString(s string, min int) bool {
	if len(s) < min || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// Credentials returns the ICE ufrag and password of a description
// (session level, else the first media section that has them).
func Credentials(desc string) (ufrag, pwd string) {
	var d sdp.SessionDescription
	if d.UnmarshalString(desc) != nil {
		return "", ""
	}
	ufrag, _ = d.Attribute("ice-ufrag")
	pwd, _ = d.Attribute("ice-pwd")
	for _, m := range d.MediaDescriptions {
		if ufrag == "" {
			ufrag, _ = m.Attribute("ice-ufrag")
		}
		if pwd == "" {
			pwd, _ = m.Attribute("ice-pwd")
		}
	}
	return ufrag, pwd
}

// WithCredentials returns desc with every ice-ufrag and ice-pwd replaced
// and its candidates removed: the offer a client restarting ICE would have
// sent. ufrag and pwd must have passed ICEString.
func WithCredentials(desc, ufrag, pwd string) string {
	lines := strings.SplitAfter(desc, "\n")
	var b strings.Builder
	b.Grow(len(desc))
	for _, line := range lines {
		eol := line[len(strings.TrimRight(line, "\r\n")):]
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			b.WriteString("a=ice-ufrag:" + ufrag + eol)
		case strings.HasPrefix(line, "a=ice-pwd:"):
			b.WriteString("a=ice-pwd:" + pwd + eol)
		case strings.HasPrefix(line, "a=candidate:"), strings.HasPrefix(line, "a=end-of-candidates"):
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}

// Local turns the SFU's local description into the
// trickle-ice-sdpfrag answer to an ICE restart: the bundle group, the first
// media section's m= line and mid, the ICE credentials, its candidates and
// end-of-candidates.
func Local(desc string) string {
	var d sdp.SessionDescription
	if d.UnmarshalString(desc) != nil {
		return ""
	}
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\r\n") }
	if g, ok := d.Attribute("group"); ok {
		line("a=group:" + g)
	}
	ufrag, pwd := Credentials(desc)
	if len(d.MediaDescriptions) == 0 {
		line("a=ice-ufrag:" + ufrag)
		line("a=ice-pwd:" + pwd)
		return b.String()
	}
	m := d.MediaDescriptions[0]
	line(fmt.Sprintf("m=%s 9 %s %s", m.MediaName.Media, strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " ")))
	if mid, ok := m.Attribute("mid"); ok {
		line("a=mid:" + mid)
	}
	line("a=ice-ufrag:" + ufrag)
	line("a=ice-pwd:" + pwd)
	for _, a := range m.Attributes {
		if a.Key == "candidate" {
			line("a=candidate:" + a.Value)
		}
	}
	line("a=end-of-candidates")
	return b.String()
}
