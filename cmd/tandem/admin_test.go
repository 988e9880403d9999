package main

// These tests run `tandem admin` in-process, through run, against a real
// node on 127.0.0.1 with kernel-chosen ports, and check what an operator
// and the users in the call would notice.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/server"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/testkit/passkey"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// adminNode starts a dev-mode node in this process and returns it with
// its base URL and data dir.
func adminNode(t *testing.T) (srv *server.Server, url, dataDir string) {
	t.Helper()
	cfg := testnode.Config(t)
	srv, _ = testnode.Start(t, cfg, nil)
	return srv, srv.URL(), cfg.DataDir
}

func grantToken(t *testing.T, srv *server.Server, grants ...string) string {
	t.Helper()
	tok, _, err := srv.Authority().Mint("ops", "cli", grants, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func userToken(t *testing.T, srv *server.Server, user, device string) string {
	t.Helper()
	tok, _, err := srv.Authority().Mint(user, device, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// runAdmin runs `tandem admin args...` in this process.
func runAdmin(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(append([]string{"admin"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustAdmin runs `tandem admin args...` and fails the test if it fails.
func mustAdmin(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runAdmin(t, args...)
	if err != nil {
		t.Fatalf("tandem admin %s: %v\nstderr:\n%s", redacted(args), err, errOut)
	}
	return out
}

// redacted is args without the value of --token.
func redacted(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if i > 0 && args[i-1] == "--token" {
			out[i] = "<token>"
		}
	}
	return strings.Join(out, " ")
}

// answeredCall puts a and b in an answered call placed by a to user to.
func answeredCall(t *testing.T, a, b *client.Client, to string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := a.Invite(ctx, to, false)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	waitMsg(t, b, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := b.Accept(ctx, id, false); err != nil {
		t.Fatalf("accept: %v", err)
	}
	waitMsg(t, a, func(m *protocol.Accepted) bool { return m.CallID == id })
	return id
}

func readExport(t *testing.T, path string) adminapi.Export {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var x adminapi.Export
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("export is not a JSON archive: %v\n%s", err, b)
	}
	return x
}

func hasCall(x adminapi.Export, id string) bool {
	for _, c := range x.Calls {
		if c.CallID == id {
			return true
		}
	}
	return false
}

// TestAdminCommands drives every command against a node with a call up.
func TestAdminCommands(t *testing.T) {
	srv, url, _ := adminNode(t)
	tok := grantToken(t, srv, auth.GrantAdmin)
	g := []string{"--server", url, "--token", tok} // global flags
	alice := dial(t, url, userToken(t, srv, "alice", "phone"))
	bob := dial(t, url, userToken(t, srv, "bob", "laptop"))
	id := answeredCall(t, alice, bob, "bob")

	// rooms: the call, with both members on their devices.
	out := mustAdmin(t, append(g, "rooms")...)
	for _, want := range []string{id, "call", "active", "alice/phone", "bob/laptop", "joined"} {
		if !strings.Contains(out, want) {
			t.Errorf("rooms does not show %q:\n%s", want, out)
		}
	}
	var list struct {
		Rooms []adminapi.RoomView `json:"rooms"`
	}
	out = mustAdmin(t, append(g, "rooms", "--json")...)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("rooms --json: %v\n%s", err, out)
	}
	if len(list.Rooms) != 1 || list.Rooms[0].ID != id || len(list.Rooms[0].Members) != 2 {
		t.Errorf("rooms --json = %+v, want call %s with alice and bob", list.Rooms, id)
	}

	// room: one call as indented JSON; an unknown one is an error.
	var rv adminapi.RoomView
	out = mustAdmin(t, append(g, "room", id)...)
	if err := json.Unmarshal([]byte(out), &rv); err != nil || rv.ID != id || !strings.Contains(out, "\n  \"") {
		t.Errorf("room %s printed (%v):\n%s", id, err, out)
	}
	if _, _, err := runAdmin(t, append(g, "room", "no-such-call")...); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("room no-such-call: err = %v, want not_found", err)
	}

	// sessions: bob's device, in the call.
	var ss struct {
		User    string                `json:"user"`
		Devices []adminapi.DeviceInfo `json:"devices"`
	}
	out = mustAdmin(t, append(g, "sessions", "bob", "--json")...)
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("sessions --json: %v\n%s", err, out)
	}
	if ss.User != "bob" || len(ss.Devices) != 1 || ss.Devices[0].Device != "laptop" || ss.Devices[0].Call != id {
		t.Errorf("sessions bob --json = %+v, want bob's laptop in %s", ss, id)
	}
	if out = mustAdmin(t, append(g, "sessions", "bob")...); !strings.Contains(out, "laptop") || !strings.Contains(out, id) {
		t.Errorf("sessions bob:\n%s", out)
	}

	// A token without the admin grant is refused, and not printed.
	plain := userToken(t, srv, "mallory", "phone")
	out, errOut, err := runAdmin(t, "--server", url, "--token", plain, "rooms")
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("rooms with a non-admin token: err = %v, want forbidden", err)
	}
	if strings.Contains(out, id) || strings.Contains(out+errOut+errString(err), plain) {
		t.Errorf("refused rooms printed the call or the token:\nstdout %q\nstderr %q\nerr %v", out, errOut, err)
	}

	// remove: bob's device hears he was removed; a 1:1 call then ends.
	if out = mustAdmin(t, append(g, "remove", id, "bob")...); !strings.Contains(out, "bob") || strings.Count(out, "\n") != 1 {
		t.Errorf("remove printed %q, want one confirmation line", out)
	}
	if r := waitMsg(t, bob, func(m *protocol.Ended) bool { return m.CallID == id }).Reason; r != protocol.ReasonRemoved {
		t.Errorf("bob's call ended with %q, want %s", r, protocol.ReasonRemoved)
	}
	waitMsg(t, alice, func(m *protocol.Ended) bool { return m.CallID == id })
	if out = mustAdmin(t, append(g, "rooms")...); strings.Contains(out, id) {
		t.Errorf("rooms still lists the ended call:\n%s", out)
	}
	if _, _, err := runAdmin(t, append(g, "remove", id, "bob")...); err == nil {
		t.Error("remove from an ended call succeeded")
	}

	// end: both devices hear the operator ended the call.
	id2 := answeredCall(t, bob, alice, "alice")
	if out = mustAdmin(t, append(g, "end", id2)...); !strings.Contains(out, id2) || strings.Count(out, "\n") != 1 {
		t.Errorf("end printed %q, want one confirmation line", out)
	}
	for name, c := range map[string]*client.Client{"alice": alice, "bob": bob} {
		if r := waitMsg(t, c, func(m *protocol.Ended) bool { return m.CallID == id2 }).Reason; r != protocol.ReasonEndedByOperator {
			t.Errorf("%s's call ended with %q, want %s", name, r, protocol.ReasonEndedByOperator)
		}
	}

	// export: alice's archive, with both calls, in a private file.
	file := filepath.Join(t.TempDir(), "alice.json")
	mustAdmin(t, append(g, "export", "alice", "-o", file)...)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("export file mode = %v, want 0600", perm)
	}
	if x := readExport(t, file); x.User != "alice" || !x.Known || !hasCall(x, id) || !hasCall(x, id2) {
		t.Errorf("alice's archive = %+v, want calls %s and %s", x, id, id2)
	}
	// To stdout too.
	var x adminapi.Export
	if out = mustAdmin(t, append(g, "export", "alice")...); json.Unmarshal([]byte(out), &x) != nil || !hasCall(x, id) {
		t.Errorf("export alice to stdout:\n%s", out)
	}

	// erase without --yes: refused, says what it would erase, erases nothing.
	out, _, err = runAdmin(t, append(g, "erase", "alice")...)
	if err == nil || !strings.Contains(err.Error(), "--yes") || !strings.Contains(err.Error(), "alice") || !strings.Contains(err.Error(), "history") {
		t.Errorf("erase without --yes: err = %v, want a refusal naming alice, her history and --yes", err)
	}
	mustAdmin(t, append(g, "export", "alice", "-o", file)...)
	if x := readExport(t, file); !x.Known || !hasCall(x, id) {
		t.Errorf("erase without --yes erased something: %+v", x)
	}
	if out = mustAdmin(t, append(g, "sessions", "alice")...); !strings.Contains(out, "phone") {
		t.Errorf("erase without --yes signed alice out:\n%s", out)
	}

	// erase --yes: alice's device is signed out and her archive is empty;
	// bob's own history of their calls stays.
	if out = mustAdmin(t, append(g, "erase", "alice", "--yes")...); !strings.Contains(out, "alice") || strings.Count(out, "\n") != 1 {
		t.Errorf("erase printed %q, want one confirmation line", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = alice.WaitFor(ctx, func(any) bool { return false })
	cancel()
	if !errors.Is(err, client.ErrDisconnected) {
		t.Errorf("alice's device after the erasure: %v, want a disconnect", err)
	}
	mustAdmin(t, append(g, "export", "alice", "-o", file)...)
	if x := readExport(t, file); x.Known || len(x.Calls) != 0 || len(x.AssistLog) != 0 || len(x.Devices) != 0 {
		t.Errorf("alice's archive after the erasure = %+v, want empty", x)
	}
	mustAdmin(t, append(g, "export", "bob", "-o", file)...)
	if x := readExport(t, file); !hasCall(x, id) {
		t.Errorf("bob's archive lost call %s with the erased alice: %+v", id, x)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestAdminUsageErrors: mistakes are refused before anything is sent.
func TestAdminUsageErrors(t *testing.T) {
	// Port 9 on loopback: nothing must be sent anyway.
	g := []string{"--server", "http://127.0.0.1:9", "--token", "x.y.z"}
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"reboot"}, "unknown command"},
		{[]string{"room"}, "room ID"},
		{[]string{"remove", "c1"}, "remove ID USER"},
		{[]string{"rooms", "extra"}, "no arguments"},
		{[]string{"end", "c1", "--yes"}, "--yes"},
		{[]string{"erase", "bob"}, "--yes"},
		{[]string{"--token-file", "/nonexistent", "--token", "", "rooms"}, "token-file"},
		{[]string{"revoke"}, "revoke user USER"},
		{[]string{"revoke", "group", "g1"}, "revoke token ID"},
		{[]string{"revoke", "user"}, "revoke user USER"},
		{[]string{"revoke", "device", "alice"}, "revoke device USER DEVICE"},
		{[]string{"revoke", "token", "a", "b"}, "revoke token ID"},
		{[]string{"revoke", "user", "alice", "--yes"}, "--yes"},
	}
	for _, tt := range tests {
		_, _, err := runAdmin(t, append(append([]string{}, g...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("admin %v: err = %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}

// TestAdminTokenSources: --token-file works; without a token, one is
// minted with the key in the node's data dir, as `tandem token` does, and
// one minted with another key is refused.
func TestAdminTokenSources(t *testing.T) {
	// config.Load rejects unknown TANDEM_* variables: keep this process's
	// own settings out of it.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TANDEM_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	srv, url, dataDir := adminNode(t)
	alice := dial(t, url, userToken(t, srv, "alice", "phone"))
	bob := dial(t, url, userToken(t, srv, "bob", "laptop"))
	id := answeredCall(t, alice, bob, "bob")

	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(grantToken(t, srv, auth.GrantAdmin)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustAdmin(t, "--server", url, "--token-file", tokFile, "rooms"); !strings.Contains(out, id) {
		t.Errorf("rooms with --token-file does not list %s:\n%s", id, out)
	}

	if out := mustAdmin(t, "--data-dir", dataDir, "--dev", "--server", url, "rooms"); !strings.Contains(out, id) || !strings.Contains(out, "alice/phone") {
		t.Errorf("rooms with a minted token does not list %s:\n%s", id, out)
	}

	_, _, err := runAdmin(t, "--data-dir", t.TempDir(), "--dev", "--server", url, "rooms")
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("rooms with a token minted with another key: err = %v, want unauthorized", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, bob, func(m *protocol.Ended) bool { return m.CallID == id })
}

// TestAdminRoomsTable: the rooms table shows each member's tracks and
// live quality in a line an operator can read.
func TestAdminRoomsTable(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rooms := []adminapi.RoomView{{
		ID: "c_1", Kind: "call", State: "active", Video: true, StartedAt: now.Add(-95 * time.Second),
		Members: []adminapi.MemberView{
			{User: "alice", Device: "phone", State: "joined",
				Tracks: []adminapi.TrackView{
					{Kind: "audio", Codec: "opus"},
					{Kind: "video", Codec: "VP8", Layers: []adminapi.LayerView{{RID: "q"}, {RID: "h"}, {RID: "f"}}},
				},
				Quality: &adminapi.QualityView{Level: "good", RTTMs: 12.4, LossUpPct: 0, SendKbps: 1800, RecvKbps: 640}},
			{User: "bob", State: "ringing", Tracks: []adminapi.TrackView{}},
		},
	}, {
		ID: "r_2", Kind: "room", Room: "ops", Mode: "ptt", State: "active", StartedAt: now.Add(-time.Hour),
		Members: []adminapi.MemberView{{User: "carol", Device: "radio", State: "joined",
			Tracks:  []adminapi.TrackView{{Kind: "video", Screen: true, Layers: []adminapi.LayerView{{}}}},
			Quality: &adminapi.QualityView{Level: "poor", RTTMs: 250, LossUpPct: 1.2, LossDownPct: 4.5, SendKbps: 90, RecvKbps: 2500}}},
	}}
	var b bytes.Buffer
	if err := writeRooms(&b, rooms, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := [][]string{
		{"ID", "QUALITY"},
		{"c_1", "call, video", "active", "1m35s"},
		{"alice/phone", "joined", "audio, video 3 layers", "good 12 ms rtt 0.0% loss 1.8 Mbit/s up 640 kbit/s down"},
		{"bob", "ringing", "-"},
		{"r_2", "room ops (ptt)", "1h0m0s"},
		{"carol/radio", "joined", "screen", "poor 250 ms rtt 4.5% loss 90 kbit/s up 2.5 Mbit/s down"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, ws := range want {
		for _, w := range ws {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q does not show %q", i, lines[i], w)
			}
		}
	}
	// Members are indented under their call, and columns line up.
	if !strings.HasPrefix(lines[2], "  alice/phone") {
		t.Errorf("member line %q is not indented", lines[2])
	}
	if a, c := strings.Index(lines[2], "good"), strings.Index(lines[5], "poor"); a != c || a != strings.Index(lines[0], "QUALITY") {
		t.Errorf("quality columns do not line up:\n%s", b.String())
	}
}

// TestAdminRevoke: revoking a device signs out that device only; a token
// id, that token only; a user, all their devices. Each prints one line
// saying what it revoked; nothing is erased.
func TestAdminRevoke(t *testing.T) {
	srv, url, _ := adminNode(t)
	g := []string{"--server", url, "--token", grantToken(t, srv, auth.GrantAdmin)}
	phone := dial(t, url, userToken(t, srv, "alice", "phone"))
	obs := dial(t, url, userToken(t, srv, "alice", "obs"))
	bobTok, bobOther := userToken(t, srv, "bob", "laptop"), userToken(t, srv, "bob", "laptop")
	bob := dial(t, url, bobTok)

	out := mustAdmin(t, append(g, "revoke", "device", "alice", "obs")...)
	if !strings.Contains(out, "alice") || !strings.Contains(out, "obs") || strings.Count(out, "\n") != 1 {
		t.Errorf("revoke device printed %q, want one line naming alice and obs", out)
	}
	if e := waitMsg(t, obs, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked }); e.Code == "" {
		t.Fatal("no token_revoked")
	}
	testkit.Eventually(t, 5*time.Second, "alice's obs session to go", func() bool {
		out = mustAdmin(t, append(g, "sessions", "alice")...)
		return !strings.Contains(out, "obs")
	})
	if !strings.Contains(out, "phone") {
		t.Errorf("after revoking alice/obs, her sessions:\n%s", out)
	}

	id, err := srv.Authority().Verify(bobTok)
	if err != nil {
		t.Fatal(err)
	}
	out = mustAdmin(t, append(g, "revoke", "token", "--", id.ID)...) // an id may start with -
	if !strings.Contains(out, id.ID) || !strings.Contains(out, "until") {
		t.Errorf("revoke token printed %q, want the id and until when", out)
	}
	waitMsg(t, bob, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	if code, body := httpGet(t, url+"/api/v1/calls", bobTok); code != 401 || !strings.Contains(body, "token_revoked") {
		t.Errorf("bob's revoked token: %d %s, want 401 token_revoked", code, body)
	}
	if code, body := httpGet(t, url+"/api/v1/calls", bobOther); code != 200 {
		t.Errorf("bob's other token of the same device: %d %s, want 200", code, body)
	}

	out = mustAdmin(t, append(g, "revoke", "user", "alice")...)
	if !strings.Contains(out, "alice") || strings.Count(out, "\n") != 1 {
		t.Errorf("revoke user printed %q", out)
	}
	waitMsg(t, phone, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	if out = mustAdmin(t, append(g, "export", "alice")...); !strings.Contains(out, `"known": true`) {
		t.Errorf("revoking alice erased her data:\n%s", out)
	}

	// Bad ids are refused by the server with a clear error.
	if _, _, err := runAdmin(t, append(g, "revoke", "token", "a b")...); err == nil || !strings.Contains(err.Error(), "bad_message") {
		t.Errorf("revoke token \"a b\": %v, want bad_message", err)
	}
}

// TestTokenLifetimeAndID: tandem token prints the token's id on stderr,
// the one the token carries; a --ttl over auth.max_token_ttl is refused
// with an error naming the key, and prints no token.
func TestTokenLifetimeAndID(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TANDEM_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run([]string{"token", "--dev", "--data-dir", dir, "--user", "studio", "--device", "obs", "--ttl", "720h"}, &out, &errOut); err != nil {
		t.Fatalf("tandem token: %v\n%s", err, errOut.String())
	}
	key, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := auth.New(key, "")
	id, err := a.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("the printed token: %v", err)
	}
	if id.ID == "" || !strings.Contains(errOut.String(), "token id "+id.ID) || strings.Contains(out.String(), id.ID) {
		t.Errorf("stderr %q, stdout %q: want the token alone on stdout and its id %q on stderr", errOut.String(), out.String(), id.ID)
	}

	out.Reset()
	errOut.Reset()
	err = run([]string{"token", "--dev", "--data-dir", dir, "--user", "studio", "--device", "obs", "--ttl", "2161h"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "auth.max_token_ttl") || out.Len() != 0 {
		t.Errorf("--ttl 2161h: err %v, stdout %q; want a refusal naming auth.max_token_ttl and no token", err, out.String())
	}
	// Raised on the node, the maximum is raised for tandem token too.
	t.Setenv("TANDEM_AUTH_MAX_TOKEN_TTL", "4000h")
	if err := run([]string{"token", "--dev", "--data-dir", dir, "--user", "studio", "--device", "obs", "--ttl", "3000h"}, &out, &errOut); err != nil {
		t.Errorf("--ttl 3000h under auth.max_token_ttl 4000h: %v", err)
	}
}

// TestAdminAccounts: the owner's first invite from the command line, and
// people managed from it: listed with their devices, made admin,
// disabled (their device's credential refused), a device removed.
func TestAdminAccounts(t *testing.T) {
	srv, url, _ := adminNode(t)
	g := []string{"--server", url, "--token", grantToken(t, srv, auth.GrantAdmin)}
	if out := mustAdmin(t, append(g, "people")...); !strings.Contains(out, "nobody has an account yet") {
		t.Fatalf("people before anyone: %q", out)
	}
	out := mustAdmin(t, append(g, "invite", "--owner", "--for", "Mom", "--ttl", "48h")...)
	link, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(link, url+"/#invite=") || !strings.Contains(out, "For Mom (owner)") {
		t.Fatalf("invite printed %q", out)
	}
	_, secret, _ := strings.Cut(link, "#invite=")
	// By address, passkeys cannot work: the person is told to use the name.
	if st := postStatus(t, url+"/api/v1/account/register/begin", map[string]string{"invite": secret, "name": "Mom"}); st != http.StatusMisdirectedRequest {
		t.Fatalf("a passkey by IP address: %d, want 421", st)
	}
	mom := registerPasskey(t, strings.Replace(url, "127.0.0.1", "localhost", 1), secret, "Mom")

	out = mustAdmin(t, append(g, "people")...)
	if !strings.Contains(out, "mom") || !strings.Contains(out, "owner") || !strings.Contains(out, mom.Device) {
		t.Fatalf("people: %q", out)
	}
	if out := mustAdmin(t, append(g, "role", "mom", "admin")...); !strings.Contains(out, "mom (Mom) is admin, enabled") {
		t.Fatalf("role: %q", out)
	}
	mustAdmin(t, append(g, "role", "mom", "member")...)
	if out := mustAdmin(t, append(g, "can-invite", "mom", "yes")...); !strings.Contains(out, "mom (Mom) is member, may invite, enabled") {
		t.Fatalf("can-invite: %q", out)
	}
	if out := mustAdmin(t, append(g, "disable", "mom")...); !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %q", out)
	}
	if st := postStatus(t, url+"/api/v1/account/token", map[string]string{"credential": mom.Credential}); st != http.StatusForbidden {
		t.Fatalf("a disabled person's credential: %d, want 403", st)
	}
	mustAdmin(t, append(g, "enable", "mom")...)
	if st := postStatus(t, url+"/api/v1/account/token", map[string]string{"credential": mom.Credential}); st != http.StatusOK {
		t.Fatalf("enabled again: %d, want 200", st)
	}
	if out := mustAdmin(t, append(g, "remove-device", "mom", mom.Device)...); !strings.Contains(out, "signed it out everywhere") {
		t.Fatalf("remove-device: %q", out)
	}
	if st := postStatus(t, url+"/api/v1/account/token", map[string]string{"credential": mom.Credential}); st != http.StatusUnauthorized {
		t.Fatalf("a removed device's credential: %d, want 401", st)
	}
	if _, _, err := runAdmin(t, append(g, "role", "mom", "queen")...); err == nil || !strings.Contains(err.Error(), "owner, admin or member") {
		t.Fatalf("a made-up role: %v", err)
	}
	if _, _, err := runAdmin(t, append(g, "people", "--owner")...); err == nil {
		t.Fatal("people took --owner")
	}
}

// signedIn is what an account sign-in answers.
type signedIn struct {
	User       string `json:"user"`
	Device     string `json:"device"`
	Credential string `json:"credential"`
	Token      string `json:"token"`
}

// registerPasskey makes an account from an invite secret with a software
// passkey, as a browser at url would.
func registerPasskey(t *testing.T, url, invite, name string) signedIn {
	t.Helper()
	var begun struct {
		Ceremony string          `json:"ceremony"`
		Options  json.RawMessage `json:"options"`
	}
	postInto(t, url+"/api/v1/account/register/begin", map[string]string{"invite": invite, "name": name}, &begun)
	cred, err := passkey.New(url).Create(begun.Options)
	if err != nil {
		t.Fatal(err)
	}
	var in signedIn
	postInto(t, url+"/api/v1/account/register/finish", map[string]any{"ceremony": begun.Ceremony, "credential": json.RawMessage(cred)}, &in)
	return in
}

func postStatus(t *testing.T, url string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func postInto(t *testing.T, url string, body, into any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}
