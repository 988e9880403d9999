package server

import (
	"strings"
	"testing"
)

// TestContentSecurityPolicyHost: the page's own host is named in
// connect-src (old Safari does not count ws: and wss: as 'self'), and a
// Host that could add to the header is left out.
func TestContentSecurityPolicyHost(t *testing.T) {
	for host, named := range map[string]bool{
		"calls.example.org":              true,
		"calls.example.org:8443":         true,
		"127.0.0.1:7880":                 true,
		"[::1]:7880":                     true,
		"":                               false,
		"evil; script-src *":             false,
		"a.example\r\nSet-Cookie: x=1":   false,
		"x.example 'unsafe-inline'":      false,
		strings.Repeat("a", 300) + ".io": false,
	} {
		csp := contentSecurityPolicy(host)
		connect := ""
		for _, d := range strings.Split(csp, ";") {
			if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
				connect = strings.Join(f[1:], " ")
			}
		}
		want := "'self'"
		if named {
			want += " wss://" + host + " ws://" + host
		}
		if connect != want {
			t.Errorf("Host %q: connect-src %q, want %q", host, connect, want)
		}
		if strings.Count(csp, ";") != strings.Count(contentSecurityPolicy("x"), ";") {
			t.Errorf("Host %q changed the policy's directives: %q", host, csp)
		}
	}
}
