package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit/passkey"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// account is a device signed in with an account.
type account struct {
	User       string `json:"user"`
	Device     string `json:"device"`
	Credential string `json:"credential"`
	Token      string `json:"token"`
}

// apiCall makes a request to the node at base and decodes a 2xx answer
// into out (when not nil); it returns the status.
func apiCall(t testing.TB, method, url, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

// joinWithPasskey makes an account from an invite link with a software
// passkey, as a browser at the node's localhost address would.
func joinWithPasskey(t *testing.T, ts *testServer, link, name string) account {
	t.Helper()
	return joinAt(t, localURL(ts), link, name)
}

// joinAt is joinWithPasskey for the node at base (a localhost URL).
func joinAt(t testing.TB, base, link, name string) account {
	t.Helper()
	_, secret, _ := strings.Cut(link, "#invite=")
	var begun struct {
		Ceremony string          `json:"ceremony"`
		Options  json.RawMessage `json:"options"`
	}
	if st := apiCall(t, "POST", base+"/api/v1/account/register/begin", "", map[string]string{"invite": secret, "name": name}, &begun); st != http.StatusOK {
		t.Fatalf("register/begin: %d", st)
	}
	cred, err := passkey.New(base).Create(begun.Options)
	if err != nil {
		t.Fatal(err)
	}
	var a account
	if st := apiCall(t, "POST", base+"/api/v1/account/register/finish", "", map[string]any{"ceremony": begun.Ceremony, "credential": json.RawMessage(cred)}, &a); st != http.StatusOK {
		t.Fatalf("register/finish: %d", st)
	}
	return a
}

// family sets a node with accounts up as the tests' family does: Mom the
// owner from the setup link, Grandpa from her invite, each the other's
// contact.
func family(t *testing.T, ts *testServer) (mom, grandpa account) {
	t.Helper()
	return familyAt(t, localURL(ts), ts.SetupLink())
}

// familyAt is family for the node at base, whose setup link is setup.
func familyAt(t testing.TB, base, setup string) (mom, grandpa account) {
	t.Helper()
	mom = joinAt(t, base, setup, "Mom")
	var inv struct {
		Link string `json:"link"`
	}
	apiCall(t, "POST", base+"/api/v1/account/invites", mom.Token, map[string]string{"for": "Grandpa"}, &inv)
	return mom, joinAt(t, base, inv.Link, "Grandpa")
}

// TestAccountInExportAndErasure: a person's data archive holds their
// account (devices, passkeys, contacts), and erasing their data removes
// it: their credential is refused and they leave their contacts' lists.
func TestAccountInExportAndErasure(t *testing.T) {
	ts := accountNode(t, t.TempDir())
	mom, gp := family(t, ts)

	var x adminapi.Export
	if st := apiCall(t, "GET", ts.URL()+"/api/v1/me/export", mom.Token, nil, &x); st != http.StatusOK {
		t.Fatalf("export: %d", st)
	}
	a := x.Account
	if a == nil || a.Name != "Mom" || a.Role != "owner" || len(a.Devices) != 1 || len(a.Passkeys) != 1 ||
		len(a.Contacts) != 1 || a.Contacts[0].Name != "Grandpa" {
		t.Fatalf("the archive's account: %+v", a)
	}
	if b, _ := json.Marshal(x); bytes.Contains(b, []byte(mom.Credential)) {
		t.Fatal("the archive holds the device's credential")
	}

	if st := apiCall(t, "DELETE", ts.URL()+"/api/v1/me", mom.Token, nil, nil); st/100 != 2 {
		t.Fatalf("erase: %d", st)
	}
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/token", "", map[string]string{"credential": mom.Credential}, nil); st != http.StatusUnauthorized {
		t.Fatalf("an erased person's credential: %d, want 401", st)
	}
	var cs struct {
		Contacts []any `json:"contacts"`
	}
	apiCall(t, "GET", ts.URL()+"/api/v1/account/contacts", gp.Token, nil, &cs)
	if len(cs.Contacts) != 0 {
		t.Fatalf("Grandpa still lists %v", cs.Contacts)
	}
}

// dialAccount signs a device in to signaling with an account's token.
func dialAccount(t *testing.T, ts *testServer, a account) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: ts.wsURL(), Token: a.Token, Logger: clientLogger(t), LoopbackOnly: true})
	if err != nil {
		t.Fatalf("dial %s: %v", a.User, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCallsFromContactsOnly: with accounts.calls_from: contacts, a person
// is rung by their people and a stranger is refused with a clear error;
// with anyone, the stranger's call rings, marked as a stranger's.
func TestCallsFromContactsOnly(t *testing.T) {
	for _, only := range []bool{true, false} {
		t.Run(fmt.Sprintf("contacts only %v", only), func(t *testing.T) {
			ts := startServer(t, func(c *config.Config) {
				c.Dev, c.Auth.Secret = false, "a-family-server-secret-of-32-bytes!"
				if only {
					c.Accounts.CallsFrom = "contacts"
				}
			})
			mom, gp := family(t, ts)
			carol := joinWithPasskey(t, ts, adminInvite(t, ts), "Carol")

			momC, gpC, carolC := dialAccount(t, ts, mom), dialAccount(t, ts, gp), dialAccount(t, ts, carol)
			ctx := testCtx(t, 20*time.Second)
			id, err := momC.Invite(ctx, "grandpa", false)
			if err != nil {
				t.Fatalf("mom calling grandpa: %v", err)
			}
			in := waitType(t, gpC, func(m *protocol.Incoming) bool { return m.CallID == id })
			if in.Stranger {
				t.Fatal("mom's call rang as a stranger's")
			}
			if err := momC.Hangup(ctx, id); err != nil {
				t.Fatal(err)
			}
			waitType(t, gpC, func(m *protocol.Ended) bool { return m.CallID == id })

			id, err = carolC.Invite(ctx, "grandpa", false)
			if only {
				var e *client.ServerError
				if !errors.As(err, &e) || e.Code != protocol.CodeNotAContact || !strings.Contains(e.Message, "only from their people") {
					t.Fatalf("a stranger's call: %v, want not_a_contact", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a stranger's call: %v", err)
			}
			if in := waitType(t, gpC, func(m *protocol.Incoming) bool { return m.CallID == id }); !in.Stranger {
				t.Fatal("a stranger's call rang as a contact's")
			}
		})
	}
}
