package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit/passkey"
)

// revocations records what the service revoked, as the hub would carry out.
type revocations struct {
	mu   sync.Mutex
	list []auth.Revocation
}

func (r *revocations) Revoke(_ context.Context, rv auth.Revocation) (auth.Revocation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rv)
	return rv, nil
}

func (r *revocations) all() []auth.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]auth.Revocation(nil), r.list...)
}

// site is the accounts API served on loopback, as a browser at origin sees it.
type site struct {
	t       *testing.T
	svc     *Service
	url     string // where requests go
	origin  string // the public URL passkeys are bound to
	revoked *revocations
	auth    *auth.Authority
}

func newSite(t *testing.T) *site {
	t.Helper()
	db, err := store.OpenSQLite("", 0)
	if err != nil {
		t.Fatal(err)
	}
	local, err := store.OpenLocal("", 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); local.Close() })
	a, err := auth.New([]byte("a-test-secret-that-is-32-bytes-long!"), "")
	if err != nil {
		t.Fatal(err)
	}
	st := &site{t: t, revoked: &revocations{}, auth: a}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st.url = srv.URL
	st.origin = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	st.svc = New(Config{PublicURL: st.origin}, accountStore{db, local, local}, a, st.revoked, nil)
	mux.Handle("/api/v1/account/", st.svc.Handler(a))
	mux.Handle("/api/v1/admin/", st.svc.AdminHandler(a))
	return st
}

type accountStore struct {
	store.Accounts
	store.RateLimiter
	store.Users
}

// call makes a request and returns the status and the JSON answer.
func (s *site) call(method, path, token string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// must is call, failing unless the status is 200.
func (s *site) must(method, path, token string, body any) map[string]any {
	s.t.Helper()
	code, out := s.call(method, path, token, body)
	if code != http.StatusOK {
		s.t.Fatalf("%s %s: %d %v", method, path, code, out)
	}
	return out
}

// errMessage is an error answer's message.
func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// options is a begun ceremony's options, as the browser gets them.
func options(t *testing.T, begun map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(begun["options"])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register makes an account from an invite secret with a, returning the sign-in.
func (s *site) register(a *passkey.Authenticator, invite, name string) map[string]any {
	s.t.Helper()
	begun := s.must("POST", "/api/v1/account/register/begin", "", map[string]string{"invite": invite, "name": name})
	cred, err := a.Create(options(s.t, begun))
	if err != nil {
		s.t.Fatal(err)
	}
	return s.must("POST", "/api/v1/account/register/finish", "", map[string]any{
		"ceremony": begun["ceremony"], "credential": json.RawMessage(cred), "device_name": "Phone"})
}

// inviteSecret is the secret of an invite link.
func inviteSecret(link string) string { _, s, _ := strings.Cut(link, "#invite="); return s }

// owner sets the site up: the first-run link makes Mom the owner.
func (s *site) owner(a *passkey.Authenticator) map[string]any {
	s.t.Helper()
	link, err := s.svc.SetupLink(context.Background(), s.url)
	if err != nil || link == "" {
		s.t.Fatalf("setup link %q, %v", link, err)
	}
	if !strings.HasPrefix(link, s.origin+"/#invite=") {
		s.t.Fatalf("the setup link %q is not on the public URL", link)
	}
	return s.register(a, inviteSecret(link), "Mom")
}

func TestRegisterAndSignInAgain(t *testing.T) {
	s := newSite(t)
	phone := passkey.New(s.origin)
	mom := s.owner(phone)
	if mom["user"] != "mom" || mom["credential"] == "" || mom["token"] == "" {
		t.Fatalf("signed in as %v", mom)
	}
	if link, _ := s.svc.SetupLink(context.Background(), s.url); link != "" {
		t.Fatal("a second setup link once the server has an owner")
	}
	me := s.must("GET", "/api/v1/account/me", mom["token"].(string), nil)
	if me["role"] != store.RoleOwner || me["name"] != "Mom" {
		t.Fatalf("me: %v", me)
	}

	// Another device with the same passkey (synced) signs in: a new device.
	laptop := &passkey.Authenticator{Origin: s.origin}
	*laptop = *phone
	begun := s.must("POST", "/api/v1/account/login/begin", "", nil)
	answer, err := laptop.Get(options(t, begun))
	if err != nil {
		t.Fatal(err)
	}
	again := s.must("POST", "/api/v1/account/login/finish", "", map[string]any{
		"ceremony": begun["ceremony"], "credential": json.RawMessage(answer), "device_name": "Laptop"})
	if again["user"] != "mom" || again["device"] == mom["device"] {
		t.Fatalf("second device %v", again)
	}
	// Its credential gets fresh tokens; the token is the kind signaling takes.
	fresh := s.must("POST", "/api/v1/account/token", "", map[string]any{"credential": again["credential"]})
	id, err := s.auth.Verify(fresh["token"].(string))
	if err != nil || id.User != "mom" || id.Device != again["device"] || !id.Has(auth.GrantCall) {
		t.Fatalf("fresh token: %+v, %v", id, err)
	}
	devs := s.must("GET", "/api/v1/account/devices", fresh["token"].(string), nil)["devices"].([]any)
	if len(devs) != 2 {
		t.Fatalf("devices %v", devs)
	}

	// Mom invites Grandpa: each is the other's contact.
	inv := s.must("POST", "/api/v1/account/invites", mom["token"].(string), map[string]any{"for": "Grandpa"})
	info := s.must("POST", "/api/v1/account/invite", "", map[string]string{"invite": inviteSecret(inv["link"].(string))})
	if info["inviter"] != "Mom" || info["for"] != "Grandpa" {
		t.Fatalf("invite info %v", info)
	}
	gp := s.register(passkey.New(s.origin), inviteSecret(inv["link"].(string)), "Grandpa")
	contacts := s.must("GET", "/api/v1/account/contacts", gp["token"].(string), nil)["contacts"].([]any)
	if len(contacts) != 1 || contacts[0].(map[string]any)["name"] != "Mom" {
		t.Fatalf("grandpa's contacts %v", contacts)
	}
	// A member may not invite unless allowed.
	if code, out := s.call("POST", "/api/v1/account/invites", gp["token"].(string), map[string]any{}); code != http.StatusForbidden {
		t.Fatalf("a member inviting: %d %v", code, out)
	}
}

// TestInvitesRefused: a forged, a used and an expired invite each get a
// clear answer and make nobody.
func TestInvitesRefused(t *testing.T) {
	s := newSite(t)
	mom := s.owner(passkey.New(s.origin))
	tok := mom["token"].(string)
	once := inviteSecret(s.must("POST", "/api/v1/account/invites", tok, map[string]any{})["link"].(string))
	s.register(passkey.New(s.origin), once, "Ann")

	now := time.Now()
	s.svc.now = func() time.Time { return now }
	late := inviteSecret(s.must("POST", "/api/v1/account/invites", tok, map[string]any{"ttl_hours": 1})["link"].(string))
	s.svc.now = func() time.Time { return now.Add(2 * time.Hour) }

	for _, tc := range []struct {
		name, secret string
		status       int
		says         string
	}{
		{"forged", "not-a-real-invite-secret", http.StatusNotFound, "not valid"},
		{"used", once, http.StatusGone, "has been used"},
		{"expired", late, http.StatusGone, "has expired"},
	} {
		code, out := s.call("POST", "/api/v1/account/register/begin", "", map[string]string{"invite": tc.secret, "name": "Mallory"})
		if code != tc.status || !strings.Contains(errMessage(out), tc.says) {
			t.Errorf("%s invite: %d %q, want %d saying %q", tc.name, code, errMessage(out), tc.status, tc.says)
		}
	}
	people, _ := s.svc.store.People(context.Background())
	if len(people) != 2 {
		t.Fatalf("%d people, want Mom and Ann", len(people))
	}
}

// TestPasskeyAnswersRefused: a replayed answer, an answer to another
// challenge, one from another site, one under another person's handle
// and one from a passkey nobody registered are each refused, and the
// real one still works after them.
func TestPasskeyAnswersRefused(t *testing.T) {
	s := newSite(t)
	phone := passkey.New(s.origin)
	s.owner(phone)
	other := passkey.New(s.origin)
	s.register(other, inviteSecret(s.must("POST", "/api/v1/admin/invites", s.adminToken(), map[string]any{})["link"].(string)), "Ann")

	finish := func(ceremony any, answer []byte) (int, map[string]any) {
		return s.call("POST", "/api/v1/account/login/finish", "", map[string]any{
			"ceremony": ceremony, "credential": json.RawMessage(answer), "device_name": "X"})
	}
	begin := func() (map[string]any, string) {
		b := s.must("POST", "/api/v1/account/login/begin", "", nil)
		var o struct {
			PublicKey struct {
				Challenge string `json:"challenge"`
			} `json:"publicKey"`
		}
		_ = json.Unmarshal(options(t, b), &o)
		return b, o.PublicKey.Challenge
	}

	b1, ch1 := begin()
	good, err := phone.Assert(phone.Credentials()[0], ch1)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := finish(b1["ceremony"], good); code != http.StatusOK {
		t.Fatalf("the real answer: %d %v", code, out)
	}
	if code, _ := finish(b1["ceremony"], good); code != http.StatusGone {
		t.Errorf("a replayed answer: %d, want 410", code)
	}
	b2, _ := begin()
	if code, _ := finish(b2["ceremony"], good); code != http.StatusUnauthorized {
		t.Errorf("an answer to another challenge: %d, want 401", code)
	}

	b3, ch3 := begin()
	evil := &passkey.Authenticator{Origin: "http://evil.example"}
	*evil = *phone
	evil.Origin = "http://evil.example"
	foreign, _ := evil.Assert(phone.Credentials()[0], ch3)
	if code, _ := finish(b3["ceremony"], foreign); code != http.StatusUnauthorized {
		t.Errorf("an answer from another site: %d, want 401", code)
	}

	b4, ch4 := begin()
	swapped := *phone.Credentials()[0]
	swapped.UserHandle = other.Credentials()[0].UserHandle // Mom's key, Ann's name
	lie, _ := phone.Assert(&swapped, ch4)
	if code, _ := finish(b4["ceremony"], lie); code != http.StatusUnauthorized {
		t.Errorf("a passkey under another person's handle: %d, want 401", code)
	}

	b5, _ := begin()
	stranger := passkey.New(s.origin)
	if _, err := stranger.Create([]byte(`{"publicKey":{"challenge":"AA","rp":{"id":"localhost"},"user":{"id":"bW9t"}}}`)); err != nil {
		t.Fatal(err)
	}
	unknown, _ := stranger.Get(options(t, b5))
	if code, _ := finish(b5["ceremony"], unknown); code != http.StatusUnauthorized {
		t.Errorf("an unregistered passkey: %d, want 401", code)
	}

	b6, _ := begin()
	again, _ := phone.Get(options(t, b6))
	if code, out := finish(b6["ceremony"], again); code != http.StatusOK || out["user"] != "mom" {
		t.Fatalf("the real passkey after the attempts: %d %v", code, out)
	}
}

func (s *site) adminToken() string {
	tok, _, err := s.auth.Mint("ops", "cli", []string{auth.GrantAdmin}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// TestAddDeviceByCode: a new device's code is approved by a signed-in
// one, and the new device, holding the pairing's secret, is signed in.
// Codes tried by the dozen are slowed; a wrong secret finishes nothing.
func TestAddDeviceByCode(t *testing.T) {
	s := newSite(t)
	mom := s.owner(passkey.New(s.origin))
	tok := mom["token"].(string)
	p := s.must("POST", "/api/v1/account/pair/start", "", nil)
	code, secret := p["code"].(string), p["secret"].(string)
	if !strings.HasSuffix(p["link"].(string), "#pair="+code) {
		t.Fatalf("pairing link %v", p["link"])
	}
	if st, _ := s.call("POST", "/api/v1/account/pair/finish", "", map[string]string{"code": code, "secret": secret}); st != http.StatusAccepted {
		t.Fatalf("before approval: %d, want 202 (waiting)", st)
	}
	// Someone guessing codes: refused, then slowed.
	var statuses []int
	for i := range 12 {
		st, _ := s.call("POST", "/api/v1/account/pair/approve", tok, map[string]string{"code": strings.Repeat("A", 7) + string(codeAlphabet[i]), "device_name": "Tablet"})
		statuses = append(statuses, st)
	}
	if statuses[0] != http.StatusNotFound || statuses[11] != http.StatusTooManyRequests {
		t.Fatalf("guessed codes answered %v", statuses)
	}
	s.svc.now = func() time.Time { return time.Now().Add(time.Minute) } // the limit refills
	spaced := strings.ToLower(code[:4]) + " " + code[4:]                // typed with a space, in lower case
	s.must("POST", "/api/v1/account/pair/approve", tok, map[string]string{"code": spaced, "device_name": "Tablet"})
	if st, _ := s.call("POST", "/api/v1/account/pair/finish", "", map[string]string{"code": code, "secret": "wrong"}); st != http.StatusNotFound {
		t.Fatalf("a wrong secret: %d, want 404", st)
	}
	in := s.must("POST", "/api/v1/account/pair/finish", "", map[string]string{"code": code, "secret": secret})
	if in["user"] != "mom" || in["credential"] == "" {
		t.Fatalf("the tablet signed in as %v", in)
	}
	if st, _ := s.call("POST", "/api/v1/account/pair/finish", "", map[string]string{"code": code, "secret": secret}); st != http.StatusNotFound {
		t.Fatalf("finished twice: %d", st)
	}
}

// TestRemovedDeviceAndDisabledPerson: a removed device's credential is
// refused and its tokens revoked; a disabled person's devices all are.
func TestRemovedDeviceAndDisabledPerson(t *testing.T) {
	s := newSite(t)
	mom := s.owner(passkey.New(s.origin))
	ann := s.register(passkey.New(s.origin), inviteSecret(s.must("POST", "/api/v1/account/invites", mom["token"].(string), map[string]any{})["link"].(string)), "Ann")

	s.must("DELETE", "/api/v1/account/devices/"+ann["device"].(string), ann["token"].(string), nil)
	if st, out := s.call("POST", "/api/v1/account/token", "", map[string]any{"credential": ann["credential"]}); st != http.StatusUnauthorized || !strings.Contains(errMessage(out), "sign in again") {
		t.Fatalf("a removed device's credential: %d %v", st, out)
	}
	if r := s.revoked.all(); len(r) != 1 || r[0].User != "ann" || r[0].Device != ann["device"] {
		t.Fatalf("revoked %+v", r)
	}
	// Mom's device is not Ann's to remove.
	if st, _ := s.call("DELETE", "/api/v1/account/devices/"+mom["device"].(string), ann["token"].(string), nil); st != http.StatusNotFound {
		t.Fatalf("removing another's device: %d, want 404", st)
	}

	s.must("PATCH", "/api/v1/admin/people/mom", s.adminToken(), map[string]any{"disabled": true})
	if st, _ := s.call("POST", "/api/v1/account/token", "", map[string]any{"credential": mom["credential"]}); st != http.StatusForbidden {
		t.Fatalf("a disabled person's credential: %d, want 403", st)
	}
	if r := s.revoked.all(); len(r) != 2 || r[1].User != "mom" || r[1].Device != "" {
		t.Fatalf("revoked %+v", r)
	}
}

// TestOpenDoorsSlowAScript: the endpoints that need no sign-in answer a
// script knocking from one address with 429 and Retry-After.
func TestOpenDoorsSlowAScript(t *testing.T) {
	s := newSite(t)
	var last int
	for range 40 {
		last, _ = s.call("POST", "/api/v1/account/invite", "", map[string]string{"invite": "guess"})
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the 40th guess answered %d, want 429", last)
	}
}

// FuzzAccountsAPI: any body to any open endpoint gets an answer, never a
// server error or a panic.
func FuzzAccountsAPI(f *testing.F) {
	paths := []string{"invite", "register/begin", "register/finish", "login/begin", "login/finish", "token", "pair/start", "pair/finish"}
	f.Add(uint8(0), []byte(`{"invite":"x"}`))
	f.Add(uint8(2), []byte(`{"ceremony":"c","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{}}}`))
	f.Add(uint8(4), []byte(`{"ceremony":"c","credential":"x"}`))
	f.Add(uint8(7), []byte(`{"code":"ABCD EFGH","secret":""}`))
	db, err := store.OpenSQLite("", 0)
	if err != nil {
		f.Fatal(err)
	}
	local, _ := store.OpenLocal("", 10)
	a, _ := auth.New([]byte("a-test-secret-that-is-32-bytes-long!"), "")
	svc := New(Config{PublicURL: "http://localhost"}, accountStore{db, local, local}, a, &revocations{}, nil)
	h := svc.Handler(a)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := "/api/v1/account/" + paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.1:1" // the limit of one address would soon answer everything
		w := httptest.NewRecorder()
		svc.now = func() time.Time { return time.Unix(int64(len(body))*3600, 0) }
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s answered %d: %s", path, w.Code, w.Body)
		}
	})
}

// TestContactRequests: someone on the server asks to be a person's
// contact; accepted, they are; declined, they are not; two asking each
// other are at once. Nobody, oneself and a flood are refused.
func TestContactRequests(t *testing.T) {
	s := newSite(t)
	mom := s.owner(passkey.New(s.origin))
	join := func(name string) map[string]any {
		inv := s.must("POST", "/api/v1/admin/invites", s.adminToken(), map[string]any{})
		return s.register(passkey.New(s.origin), inviteSecret(inv["link"].(string)), name)
	}
	carol, dave := join("Carol"), join("Dave")
	tok := func(m map[string]any) string { return m["token"].(string) }
	contacts := func(m map[string]any) string {
		var ids []string
		for _, c := range s.must("GET", "/api/v1/account/contacts", tok(m), nil)["contacts"].([]any) {
			ids = append(ids, c.(map[string]any)["user"].(string))
		}
		return strings.Join(ids, " ")
	}

	if out := s.must("POST", "/api/v1/account/contacts/requests", tok(carol), map[string]string{"user": "mom"}); out["state"] != "requested" {
		t.Fatalf("carol's request: %v", out)
	}
	rs := s.must("GET", "/api/v1/account/contacts/requests", tok(mom), nil)["requests"].([]any)
	if len(rs) != 1 || rs[0].(map[string]any)["name"] != "Carol" {
		t.Fatalf("requests to mom: %v", rs)
	}
	s.must("POST", "/api/v1/account/contacts/requests/carol/accept", tok(mom), nil)
	if contacts(mom) != "carol" || contacts(carol) != "mom" {
		t.Fatalf("after accepting: mom %q, carol %q", contacts(mom), contacts(carol))
	}
	if st, _ := s.call("POST", "/api/v1/account/contacts/requests/carol/accept", tok(mom), nil); st != http.StatusNotFound {
		t.Fatalf("accepted twice: %d", st)
	}

	s.must("POST", "/api/v1/account/contacts/requests", tok(dave), map[string]string{"user": "mom"})
	s.must("DELETE", "/api/v1/account/contacts/requests/dave", tok(mom), nil)
	if contacts(dave) != "" {
		t.Fatalf("declined, dave has %q", contacts(dave))
	}
	// Two asking each other are contacts at once.
	s.must("POST", "/api/v1/account/contacts/requests", tok(dave), map[string]string{"user": "carol"})
	if out := s.must("POST", "/api/v1/account/contacts/requests", tok(carol), map[string]string{"user": "dave"}); out["state"] != "added" {
		t.Fatalf("carol asking dave back: %v", out)
	}
	if contacts(dave) != "carol" {
		t.Fatalf("dave's contacts %q", contacts(dave))
	}

	for _, tc := range []struct {
		user   string
		status int
	}{{"nobody", http.StatusNotFound}, {"dave", http.StatusOK}, {"carol", http.StatusBadRequest}} {
		if st, out := s.call("POST", "/api/v1/account/contacts/requests", tok(carol), map[string]string{"user": tc.user}); st != tc.status {
			t.Errorf("carol asking %s: %d %v, want %d", tc.user, st, out, tc.status)
		}
	}
	// A flood of requests is slowed.
	var last int
	start := time.Now()
	for i := range 25 {
		// Four seconds a person: the address's own limit allows the
		// sign-ups; the requests' limit does not refill in that time.
		s.svc.now = func() time.Time { return start.Add(time.Duration(i) * 4 * time.Second) }
		ann := join(fmt.Sprint("Ann ", i))
		last, _ = s.call("POST", "/api/v1/account/contacts/requests", tok(dave), map[string]string{"user": ann["user"].(string)})
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the 25th request answered %d, want 429", last)
	}
}

// TestFamilyCircle: with a family circle, everyone who joins is everyone's
// contact, however they were invited.
func TestFamilyCircle(t *testing.T) {
	s := newSite(t)
	s.svc.cfg.FamilyCircle = true
	mom := s.owner(passkey.New(s.origin))
	var joined []map[string]any
	for _, name := range []string{"Ann", "Ben"} {
		inv := s.must("POST", "/api/v1/admin/invites", s.adminToken(), map[string]any{})
		joined = append(joined, s.register(passkey.New(s.origin), inviteSecret(inv["link"].(string)), name))
	}
	for _, m := range append(joined, mom) {
		if n := len(s.must("GET", "/api/v1/account/contacts", m["token"].(string), nil)["contacts"].([]any)); n != 2 {
			t.Fatalf("%s has %d contacts, want 2", m["user"], n)
		}
	}
}

// withExif is a JPEG of w×h with an Exif segment saying where it was
// taken, as a phone's camera writes one.
func withExif(t *testing.T, w, h int, place string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: 128, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	payload := append([]byte("Exif\x00\x00"), []byte(place)...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	return append(append(append([]byte{}, b[:2]...), append(seg, payload...)...), b[2:]...)
}

// TestAvatars: a picture is scaled down and written anew (nothing of the
// camera's metadata is kept), shown to its person and their contacts and
// to nobody else; a file too large, or not a picture, is refused.
func TestAvatars(t *testing.T) {
	s := newSite(t)
	mom := s.owner(passkey.New(s.origin))
	inv := s.must("POST", "/api/v1/account/invites", mom["token"].(string), map[string]any{})
	gp := s.register(passkey.New(s.origin), inviteSecret(inv["link"].(string)), "Grandpa")
	stranger := s.register(passkey.New(s.origin), inviteSecret(s.must("POST", "/api/v1/admin/invites", s.adminToken(), map[string]any{})["link"].(string)), "Stranger")

	put := func(token string, body []byte) int {
		req, _ := http.NewRequest("PUT", s.url+"/api/v1/account/avatar", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(token, user string) (int, []byte) {
		req, _ := http.NewRequest("GET", s.url+"/api/v1/account/avatar/"+user, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	const place = "GPS 48.8584 N 2.2945 E, Mom's house"
	photo := withExif(t, 1200, 800, place)
	if !bytes.Contains(photo, []byte(place)) {
		t.Fatal("the test photo carries no metadata: the check could not fail")
	}
	if st := put(mom["token"].(string), photo); st != http.StatusOK {
		t.Fatalf("upload: %d", st)
	}
	st, b := get(gp["token"].(string), "mom")
	if st != http.StatusOK {
		t.Fatalf("her contact's view: %d", st)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if sz := img.Bounds().Size(); sz.X != 256 || sz.Y != 171 {
		t.Fatalf("kept at %v, want 256×171", sz)
	}
	if bytes.Contains(b, []byte(place)) || bytes.Contains(b, []byte("Exif")) {
		t.Fatal("the kept picture still says where it was taken")
	}
	if st, _ := get(stranger["token"].(string), "mom"); st != http.StatusForbidden {
		t.Fatalf("a stranger's view: %d, want 403", st)
	}
	cs := s.must("GET", "/api/v1/account/contacts", gp["token"].(string), nil)["contacts"].([]any)
	if cs[0].(map[string]any)["avatar"] != true {
		t.Fatalf("the contact list does not say Mom has a picture: %v", cs)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"too large", bytes.Repeat([]byte{0xFF}, MaxAvatarBytes+1), http.StatusRequestEntityTooLarge},
		{"not a picture", []byte("<svg onload=alert(1)>"), http.StatusUnsupportedMediaType},
	} {
		if st := put(gp["token"].(string), tc.body); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
	s.must("DELETE", "/api/v1/account/avatar", mom["token"].(string), nil)
	if st, _ := get(gp["token"].(string), "mom"); st != http.StatusNotFound {
		t.Fatalf("after removal: %d, want 404", st)
	}
}

// FuzzCleanAvatar: any upload is refused or becomes a small PNG, without
// a panic.
func FuzzCleanAvatar(f *testing.F) {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 700)))
	f.Add(buf.Bytes())
	buf.Reset()
	_ = jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 300, 2)), nil)
	f.Add(buf.Bytes())
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := cleanAvatar(b)
		if err != nil {
			return
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("made an unreadable PNG: %v", err)
		}
		if sz := img.Bounds().Size(); sz.X > avatarSize || sz.Y > avatarSize || sz.X < 1 || sz.Y < 1 {
			t.Fatalf("made a %v picture", sz)
		}
	})
}
