package store

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/redistest"
)

// accountStores are the Accounts implementations, each fresh.
func accountStores(t *testing.T) map[string]Accounts {
	t.Helper()
	mem, err := OpenSQLite("", 0)
	mustOK(t, err)
	file, err := OpenSQLite(t.TempDir(), 0)
	mustOK(t, err)
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}})
	mustOK(t, err)
	t.Cleanup(func() { mem.Close(); file.Close(); r.Close() })
	return map[string]Accounts{"sqlite-memory": mem, "sqlite-file": file, "redis": r}
}

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func TestAccountsPeople(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mom := Person{ID: "mom", Name: "Mom", Role: RoleOwner, Created: t0}
			mustOK(t, a.CreatePerson(ctx, mom))
			mustOK(t, a.CreatePerson(ctx, Person{ID: "dad", Name: "Dad", Role: RoleMember, Created: t0.Add(time.Second)}))
			if err := a.CreatePerson(ctx, Person{ID: "mom", Name: "Other", Role: RoleMember}); !errors.Is(err, ErrExists) {
				t.Fatalf("a second mom: %v, want ErrExists", err)
			}
			got, err := a.Person(ctx, "mom")
			mustOK(t, err)
			if got != mom {
				t.Fatalf("person %+v, want %+v", got, mom)
			}
			if _, err := a.Person(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("nobody: %v", err)
			}
			mom.Name, mom.CanInvite, mom.Disabled = "Mum", true, true
			mustOK(t, a.UpdatePerson(ctx, mom))
			if got, _ := a.Person(ctx, "mom"); got != mom {
				t.Fatalf("after update %+v", got)
			}
			if err := a.UpdatePerson(ctx, Person{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("update nobody: %v", err)
			}
			ps, err := a.People(ctx)
			mustOK(t, err)
			if len(ps) != 2 || ps[0].ID != "mom" || ps[1].ID != "dad" {
				t.Fatalf("people %+v", ps)
			}
		})
	}
}

// TestAccountsInvites: an invite's uses are taken one at a time, and never
// more than it has, even by many at once; an expired one is refused.
func TestAccountsInvites(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			inv := Invite{Hash: "h1", By: "mom", For: "Grandpa", Role: RoleMember, Uses: 3, Expires: t0.Add(7 * 24 * time.Hour), Created: t0}
			mustOK(t, a.CreateInvite(ctx, inv))
			if err := a.CreateInvite(ctx, inv); !errors.Is(err, ErrExists) {
				t.Fatalf("again: %v", err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won, usedUp int
			for range 8 {
				wg.Go(func() {
					_, err := a.RedeemInvite(ctx, "h1", t0.Add(time.Hour))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won++
					case errors.Is(err, ErrUsedUp):
						usedUp++
					default:
						t.Errorf("redeem: %v", err)
					}
				})
			}
			wg.Wait()
			if won != 3 || usedUp != 5 {
				t.Fatalf("%d redeemed and %d refused, want 3 and 5", won, usedUp)
			}
			got, err := a.Invite(ctx, "h1")
			mustOK(t, err)
			if got.Used != 3 || got.For != "Grandpa" || got.By != "mom" {
				t.Fatalf("invite %+v", got)
			}
			mustOK(t, a.CreateInvite(ctx, Invite{Hash: "h2", Role: RoleMember, Uses: 1, Expires: t0.Add(time.Hour), Created: t0.Add(time.Minute)}))
			if _, err := a.RedeemInvite(ctx, "h2", t0.Add(time.Hour)); !errors.Is(err, ErrExpired) {
				t.Fatalf("expired: %v", err)
			}
			if _, err := a.RedeemInvite(ctx, "forged", t0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("forged: %v", err)
			}
			list, err := a.Invites(ctx, t0.Add(30*time.Minute))
			mustOK(t, err)
			if len(list) != 2 || list[0].Hash != "h2" {
				t.Fatalf("invites %+v", list)
			}
			mustOK(t, a.RevokeInvite(ctx, "h2"))
			if err := a.RevokeInvite(ctx, "h2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("revoke twice: %v", err)
			}
		})
	}
}

func TestAccountsDevices(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			phone := Device{User: "mom", ID: "d1", Name: "Phone", CredentialHash: "c1", Created: t0, LastUsed: t0}
			mustOK(t, a.AddDevice(ctx, phone))
			mustOK(t, a.AddDevice(ctx, Device{User: "mom", ID: "d2", Name: "Laptop", CredentialHash: "c2", Created: t0.Add(time.Second)}))
			if err := a.AddDevice(ctx, Device{User: "mom", ID: "d1", CredentialHash: "c3"}); !errors.Is(err, ErrExists) {
				t.Fatalf("same id: %v", err)
			}
			got, err := a.DeviceByCredential(ctx, "c1")
			mustOK(t, err)
			if got != phone {
				t.Fatalf("device %+v", got)
			}
			mustOK(t, a.TouchDevice(ctx, "mom", "d1", t0.Add(time.Hour)))
			mustOK(t, a.TouchDevice(ctx, "mom", "d1", t0.Add(time.Minute))) // late: never moves back
			ds, err := a.Devices(ctx, "mom")
			mustOK(t, err)
			if len(ds) != 2 || ds[0].ID != "d1" || !ds[0].LastUsed.Equal(t0.Add(time.Hour)) {
				t.Fatalf("devices %+v", ds)
			}
			mustOK(t, a.RemoveDevice(ctx, "mom", "d1"))
			if _, err := a.DeviceByCredential(ctx, "c1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("removed device's credential: %v", err)
			}
			if err := a.RemoveDevice(ctx, "mom", "d1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("remove twice: %v", err)
			}
		})
	}
}

func TestAccountsPasskeys(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			k := Passkey{ID: []byte{1, 2, 3}, User: "mom", Data: []byte(`{"n":1}`), Created: t0}
			mustOK(t, a.AddPasskey(ctx, k))
			if err := a.AddPasskey(ctx, Passkey{ID: []byte{1, 2, 3}, User: "dad", Data: []byte("x")}); !errors.Is(err, ErrExists) {
				t.Fatalf("another's credential id: %v", err)
			}
			mustOK(t, a.UpdatePasskey(ctx, k.ID, []byte(`{"n":2}`), t0.Add(time.Hour)))
			got, err := a.Passkey(ctx, []byte{1, 2, 3})
			mustOK(t, err)
			if got.User != "mom" || !bytes.Equal(got.Data, []byte(`{"n":2}`)) || !got.LastUsed.Equal(t0.Add(time.Hour)) {
				t.Fatalf("passkey %+v", got)
			}
			if _, err := a.Passkey(ctx, []byte{9}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown: %v", err)
			}
			ks, err := a.Passkeys(ctx, "mom")
			mustOK(t, err)
			if len(ks) != 1 {
				t.Fatalf("passkeys %+v", ks)
			}
		})
	}
}

// TestAccountsPairing: a pairing is approved once, finished once, and
// gone once it expires.
func TestAccountsPairing(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			now := time.Now()
			mustOK(t, a.CreatePairing(ctx, Pairing{ID: "p1", SecretHash: "s1", Expires: now.Add(5 * time.Minute)}))
			if _, err := a.FinishPairing(ctx, "p1", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("finish before approval: %v", err)
			}
			mustOK(t, a.ApprovePairing(ctx, "p1", "mom", "Tablet", now))
			if err := a.ApprovePairing(ctx, "p1", "mallory", "Evil", now); !errors.Is(err, ErrUsedUp) {
				t.Fatalf("second approval: %v", err)
			}
			p, err := a.FinishPairing(ctx, "p1", now)
			mustOK(t, err)
			if p.User != "mom" || p.DeviceName != "Tablet" || p.SecretHash != "s1" {
				t.Fatalf("pairing %+v", p)
			}
			if _, err := a.FinishPairing(ctx, "p1", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("finish twice: %v", err)
			}
			mustOK(t, a.CreatePairing(ctx, Pairing{ID: "p2", SecretHash: "s2", Expires: now.Add(time.Minute)}))
			if err := a.ApprovePairing(ctx, "p2", "mom", "Tablet", now.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("approve expired: %v", err)
			}
		})
	}
}

func TestAccountsContactsAndErasure(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mustOK(t, a.CreatePerson(ctx, Person{ID: "mom", Name: "Mom", Role: RoleOwner, Created: t0}))
			mustOK(t, a.AddContact(ctx, "mom", "kid", t0))
			mustOK(t, a.AddContact(ctx, "mom", "kid", t0.Add(time.Hour))) // again: unchanged
			mustOK(t, a.AddContact(ctx, "gran", "mom", t0.Add(time.Minute)))
			mustOK(t, a.AddContact(ctx, "mom", "mom", t0))
			users := func(user string) []string {
				cs, err := a.Contacts(ctx, user)
				mustOK(t, err)
				var out []string
				for _, c := range cs {
					out = append(out, c.User)
				}
				return out
			}
			if got := users("mom"); !slices.Equal(got, []string{"kid", "gran"}) {
				t.Fatalf("mom's contacts %q", got)
			}
			if got := users("kid"); !slices.Equal(got, []string{"mom"}) {
				t.Fatalf("kid's contacts %q", got)
			}
			mustOK(t, a.RemoveContact(ctx, "kid", "mom"))
			if got := users("mom"); !slices.Equal(got, []string{"gran"}) {
				t.Fatalf("after removal %q", got)
			}
			mustOK(t, a.AddDevice(ctx, Device{User: "mom", ID: "d1", CredentialHash: "c1", Created: t0}))
			mustOK(t, a.AddPasskey(ctx, Passkey{ID: []byte("k"), User: "mom", Data: []byte("x"), Created: t0}))
			mustOK(t, a.CreateInvite(ctx, Invite{Hash: "i", By: "mom", Role: RoleMember, Uses: 1, Expires: t0.Add(time.Hour)}))
			mustOK(t, a.EraseAccount(ctx, "mom"))
			if _, err := a.Person(ctx, "mom"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("erased person: %v", err)
			}
			if _, err := a.DeviceByCredential(ctx, "c1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("erased device: %v", err)
			}
			if _, err := a.Passkey(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("erased passkey: %v", err)
			}
			if _, err := a.Invite(ctx, "i"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("erased person's invite: %v", err)
			}
			if got := users("gran"); len(got) != 0 {
				t.Fatalf("gran still has %q", got)
			}
		})
	}
}

// TestSQLiteKeepsAccountsAcrossRestarts: the file database is reopened
// with what was written, and a database from a newer Tandem is refused.
func TestSQLiteKeepsAccountsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSQLite(dir, 0)
	mustOK(t, err)
	ctx := dirCtx(t)
	mustOK(t, s.CreatePerson(ctx, Person{ID: "mom", Name: "Mom", Role: RoleOwner, Created: t0}))
	mustOK(t, s.Close())
	s, err = OpenSQLite(dir, 0)
	mustOK(t, err)
	if p, err := s.Person(ctx, "mom"); err != nil || p.Name != "Mom" {
		t.Fatalf("after reopening: %+v, %v", p, err)
	}
	_, err = s.db.Exec("PRAGMA user_version = 99")
	mustOK(t, err)
	mustOK(t, s.Close())
	if _, err := OpenSQLite(dir, 0); err == nil {
		t.Fatal("a database from a newer schema opened")
	}
}

// TestAccountsCeremonies: a ceremony is taken once; an expired one is
// gone.
func TestAccountsCeremonies(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			now := time.Now()
			mustOK(t, a.PutCeremony(ctx, "c1", []byte("challenge"), now.Add(time.Minute)))
			if err := a.PutCeremony(ctx, "c1", []byte("other"), now.Add(time.Minute)); !errors.Is(err, ErrExists) {
				t.Fatalf("again: %v", err)
			}
			b, err := a.TakeCeremony(ctx, "c1", now)
			mustOK(t, err)
			if string(b) != "challenge" {
				t.Fatalf("took %q", b)
			}
			if _, err := a.TakeCeremony(ctx, "c1", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("replayed: %v", err)
			}
			mustOK(t, a.PutCeremony(ctx, "c2", []byte("x"), now.Add(time.Second)))
			if _, err := a.TakeCeremony(ctx, "c2", now.Add(2*time.Second)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired: %v", err)
			}
		})
	}
}

// TestAccountsContactRequests: a request is kept once, listed for whom it
// asks, removed once, and goes with the erasure of either side.
func TestAccountsContactRequests(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mustOK(t, a.RequestContact(ctx, "ann", "mom", t0))
			mustOK(t, a.RequestContact(ctx, "ann", "mom", t0.Add(time.Hour))) // again: unchanged
			mustOK(t, a.RequestContact(ctx, "ben", "mom", t0.Add(time.Minute)))
			mustOK(t, a.RequestContact(ctx, "mom", "cat", t0))
			rs, err := a.ContactRequests(ctx, "mom")
			mustOK(t, err)
			if len(rs) != 2 || rs[0].User != "ann" || !rs[0].Since.Equal(t0) || rs[1].User != "ben" {
				t.Fatalf("requests to mom %+v", rs)
			}
			mustOK(t, a.RemoveContactRequest(ctx, "ann", "mom"))
			if err := a.RemoveContactRequest(ctx, "ann", "mom"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("removed twice: %v", err)
			}
			mustOK(t, a.EraseAccount(ctx, "mom"))
			for _, u := range []string{"mom", "cat"} {
				if rs, _ := a.ContactRequests(ctx, u); len(rs) != 0 {
					t.Fatalf("requests to %s after mom's erasure: %+v", u, rs)
				}
			}
		})
	}
}

// TestAccountsSubjects: an identity provider's subject signs in as one
// person, and the link goes with their erasure.
func TestAccountsSubjects(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mustOK(t, a.LinkSubject(ctx, "https://sso.example", "u-1", "mom"))
			if err := a.LinkSubject(ctx, "https://sso.example", "u-1", "mallory"); !errors.Is(err, ErrExists) {
				t.Fatalf("a subject linked twice: %v", err)
			}
			mustOK(t, a.LinkSubject(ctx, "https://other.example", "u-1", "dad")) // another provider's u-1
			if u, err := a.SubjectUser(ctx, "https://sso.example", "u-1"); err != nil || u != "mom" {
				t.Fatalf("subject user %q, %v", u, err)
			}
			mustOK(t, a.EraseAccount(ctx, "mom"))
			if _, err := a.SubjectUser(ctx, "https://sso.example", "u-1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after erasure: %v", err)
			}
			if u, _ := a.SubjectUser(ctx, "https://other.example", "u-1"); u != "dad" {
				t.Fatalf("the other provider's link: %q", u)
			}
		})
	}
}

// TestAccountsAvatars: a person's picture is kept, replaced, removed, and
// goes with their erasure; nobody has none.
func TestAccountsAvatars(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			if err := a.SetAvatar(ctx, "nobody", []byte("x")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("nobody's picture: %v", err)
			}
			mustOK(t, a.CreatePerson(ctx, Person{ID: "mom", Name: "Mom", Role: RoleOwner, Created: t0}))
			if _, err := a.Avatar(ctx, "mom"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("before any: %v", err)
			}
			mustOK(t, a.SetAvatar(ctx, "mom", []byte("one")))
			mustOK(t, a.SetAvatar(ctx, "mom", []byte("two")))
			if b, err := a.Avatar(ctx, "mom"); err != nil || string(b) != "two" {
				t.Fatalf("picture %q, %v", b, err)
			}
			if has, err := a.HasAvatar(ctx, "mom"); !has || err != nil {
				t.Fatalf("has a picture: %v, %v", has, err)
			}
			mustOK(t, a.SetAvatar(ctx, "mom", nil))
			if _, err := a.Avatar(ctx, "mom"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after removal: %v", err)
			}
			if has, _ := a.HasAvatar(ctx, "mom"); has {
				t.Fatal("has a picture after its removal")
			}
			mustOK(t, a.SetAvatar(ctx, "mom", []byte("three")))
			mustOK(t, a.EraseAccount(ctx, "mom"))
			if _, err := a.Avatar(ctx, "mom"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after erasure: %v", err)
			}
		})
	}
}

// TestAccountsPushes: a device's push subscription is kept, replaced and
// removed, and goes with the device and with its person's erasure.
func TestAccountsPushes(t *testing.T) {
	for name, a := range accountStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			if err := a.SetPush(ctx, "mom", "nope", []byte("x")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("no device: %v", err)
			}
			mustOK(t, a.AddDevice(ctx, Device{User: "mom", ID: "d1", CredentialHash: "c1", Created: t0}))
			mustOK(t, a.AddDevice(ctx, Device{User: "mom", ID: "d2", CredentialHash: "c2", Created: t0}))
			mustOK(t, a.SetPush(ctx, "mom", "d1", []byte(`{"endpoint":"a"}`)))
			mustOK(t, a.SetPush(ctx, "mom", "d2", []byte(`{"endpoint":"b"}`)))
			mustOK(t, a.SetPush(ctx, "mom", "d2", []byte(`{"endpoint":"c"}`)))
			ps, err := a.Pushes(ctx, "mom")
			mustOK(t, err)
			if len(ps) != 2 || string(ps["d2"]) != `{"endpoint":"c"}` {
				t.Fatalf("pushes %q", ps)
			}
			mustOK(t, a.SetPush(ctx, "mom", "d2", nil))
			mustOK(t, a.RemoveDevice(ctx, "mom", "d1"))
			if ps, _ := a.Pushes(ctx, "mom"); len(ps) != 0 {
				t.Fatalf("after removals %q", ps)
			}
			mustOK(t, a.SetPush(ctx, "mom", "d2", []byte(`{"endpoint":"d"}`)))
			mustOK(t, a.EraseAccount(ctx, "mom"))
			if ps, _ := a.Pushes(ctx, "mom"); len(ps) != 0 {
				t.Fatalf("after erasure %q", ps)
			}
		})
	}
}
