package test

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestDevTokenOnlyForLoopbackPages: the dev sign-in mints a token only
// for a request to a loopback host name or address, from no page or a
// page of this server; a page that reaches it by DNS rebinding (a
// foreign Host) or by a cross-origin POST gets 403.
func TestDevTokenOnlyForLoopbackPages(t *testing.T) {
	ts := startServer(t, nil)
	port := strconv.Itoa(ts.Addr().(*net.TCPAddr).Port)
	self := "http://127.0.0.1:" + port
	for _, tc := range []struct {
		name, host, origin string
		status             int
	}{
		{"no origin (curl)", "127.0.0.1:" + port, "", 200},
		{"its own page", "127.0.0.1:" + port, self, 200},
		{"its own page by name", "localhost:" + port, "http://localhost:" + port, 200},
		{"LOCALHOST", "LOCALHOST:" + port, "http://localhost:" + port, 200},
		{"ipv6 loopback", "[::1]:" + port, "http://[::1]:" + port, 200},
		{"another loopback address", "127.1.2.3:" + port, "", 200},
		{"dns rebinding", "attacker.example:" + port, "http://attacker.example:" + port, 403},
		{"dns rebinding, no origin", "attacker.example", "", 403},
		{"a name that ends like localhost", "localhost.attacker.example:" + port, "", 403},
		{"a name that starts like an address", "127.0.0.1.nip.io:" + port, "", 403},
		{"cross-origin post", "127.0.0.1:" + port, "https://attacker.example", 403},
		{"opaque origin", "127.0.0.1:" + port, "null", 403},
		{"another port", "127.0.0.1:" + port, "http://127.0.0.1:1", 403},
		{"another scheme", "127.0.0.1:" + port, "https://127.0.0.1:" + port, 403},
		{"localhost page posting to 127.0.0.1", "127.0.0.1:" + port, "http://localhost:" + port, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, self+"/api/v1/dev/token", strings.NewReader(`{"user":"alice","device":"laptop"}`))
			req.Host = tc.host
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status == 200 && !strings.Contains(string(b), `"token"`) {
				t.Fatalf("no token: %s", b)
			}
			if tc.status == 403 && (strings.Contains(string(b), `"token"`) || !strings.Contains(string(b), `"forbidden"`)) {
				t.Fatalf("refusal without the forbidden code: %s", b)
			}
		})
	}
}
