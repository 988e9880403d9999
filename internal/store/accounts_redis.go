package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Accounts = (*Redis)(nil)

// The accounts' keys, after the prefix:
//
//	acct:person:<id>          string: the person, JSON
//	acct:people               sorted set: person ids by creation, µs
//	acct:invite:<hash>        hash: inv (the invite, JSON), uses, used,
//	                          expires (µs); expires a day after the invite
//	acct:invites              sorted set: invite hashes by creation
//	acct:device:<user>:<id>   hash: d (the device, JSON), last_used (µs)
//	acct:devices:<user>       sorted set: device ids by creation
//	acct:cred:<hash>          string: "<user>\x00<device>" of a credential
//	acct:passkey:<id hex>     string: the passkey, JSON
//	acct:passkeys:<user>      set: the user's passkey ids, hex
//	acct:pairing:<id>         string: the pairing, JSON; expires with it
//	acct:contacts:<user>      hash: contact → since (µs)
//	acct:ceremony:<id>        string: a sign-in ceremony; expires with it
//	acct:requests:<user>      hash: who asked to be user's contact → since (µs)
//	acct:asked:<user>         set: whom user asked
//	acct:oidc:<digest>        string: the user an identity provider's
//	                          subject signs in as (digest of issuer, subject)
//	acct:oidcof:<user>        set: the user's acct:oidc digests
//	acct:avatar:<user>        string: the user's picture, PNG
//	acct:push:<user>          hash: device → its push subscription
//
// Every script runs on one key, so that the keys may live in different
// slots of a cluster. A pairing is not erased with its approver's
// account: it lasts minutes, and finishing it makes a device of an
// account that no longer exists, which signs in to nothing.

func (r *Redis) acctKey(parts ...string) string {
	k := r.prefix + "acct"
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

// redeemScript takes one use of the invite at KEYS[1] at ARGV[1] (µs):
// {1, used} when taken, {0, 0} for no such invite, {0, 1} expired, {0, 2}
// used up.
const redeemScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local v = redis.call('HMGET', KEYS[1], 'uses', 'used', 'expires')
if tonumber(v[3]) <= tonumber(ARGV[1]) then return {0, 1} end
if tonumber(v[2]) >= tonumber(v[1]) then return {0, 2} end
return {1, redis.call('HINCRBY', KEYS[1], 'used', 1)}
`

// touchScript sets field last_used of the hash at KEYS[1] to ARGV[1]
// unless it is later already; 0 if there is no such hash.
const touchScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (tonumber(redis.call('HGET', KEYS[1], 'last_used')) or 0) < tonumber(ARGV[1]) then
	redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
end
return 1
`

// approveScript approves the pairing at KEYS[1] with ARGV[1], the
// pairing approved: 0 none, 1 done, 2 approved already.
const approveScript = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v).user ~= nil and cjson.decode(v).user ~= '' then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return 1
`

// finishScript removes the pairing at KEYS[1] if it is approved and
// returns it; nil otherwise.
const finishScript = `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local p = cjson.decode(v)
if p.user == nil or p.user == '' then return false end
redis.call('DEL', KEYS[1])
return v
`

var (
	redeemInvite = redis.NewScript(redeemScript)
	touchDevice  = redis.NewScript(touchScript)
	approvePair  = redis.NewScript(approveScript)
	finishPair   = redis.NewScript(finishScript)
)

func (r *Redis) CreatePerson(ctx context.Context, p Person) error {
	b, _ := json.Marshal(p)
	ok, err := r.rdb.SetNX(ctx, r.acctKey("person", p.ID), b, 0).Result()
	if err != nil {
		return wrap("create person", err)
	}
	if !ok {
		return ErrExists
	}
	return wrap("create person", r.rdb.ZAdd(ctx, r.acctKey("people"), redis.Z{Score: float64(micros(p.Created)), Member: p.ID}).Err())
}

func (r *Redis) Person(ctx context.Context, id string) (Person, error) {
	var p Person
	return p, r.getJSON(ctx, r.acctKey("person", id), &p, "person")
}

// getJSON reads the JSON at key into v: ErrNotFound if there is none.
func (r *Redis) getJSON(ctx context.Context, key string, v any, what string) error {
	b, err := r.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return wrap(what, err)
	}
	return json.Unmarshal(b, v)
}

func (r *Redis) People(ctx context.Context) ([]Person, error) {
	ids, err := r.rdb.ZRange(ctx, r.acctKey("people"), 0, -1).Result()
	if err != nil {
		return nil, wrap("people", err)
	}
	var out []Person
	for _, id := range ids {
		p, err := r.Person(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // erased meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (r *Redis) UpdatePerson(ctx context.Context, p Person) error {
	old, err := r.Person(ctx, p.ID)
	if err != nil {
		return err
	}
	old.Name, old.Role, old.Disabled, old.CanInvite = p.Name, p.Role, p.Disabled, p.CanInvite
	b, _ := json.Marshal(old)
	ok, err := r.rdb.SetXX(ctx, r.acctKey("person", p.ID), b, redis.KeepTTL).Result()
	if err != nil {
		return wrap("update person", err)
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

func (r *Redis) CreateInvite(ctx context.Context, inv Invite) error {
	key := r.acctKey("invite", inv.Hash)
	b, _ := json.Marshal(inv)
	ok, err := r.rdb.HSetNX(ctx, key, "inv", b).Result()
	if err != nil {
		return wrap("create invite", err)
	}
	if !ok {
		return ErrExists
	}
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, key, "uses", inv.Uses, "used", inv.Used, "expires", micros(inv.Expires))
	pipe.ExpireAt(ctx, key, inv.Expires.Add(24*time.Hour))
	pipe.ZAdd(ctx, r.acctKey("invites"), redis.Z{Score: float64(micros(inv.Created)), Member: inv.Hash})
	_, err = pipe.Exec(ctx)
	return wrap("create invite", err)
}

func (r *Redis) Invite(ctx context.Context, hash string) (Invite, error) {
	v, err := r.rdb.HMGet(ctx, r.acctKey("invite", hash), "inv", "used").Result()
	if err != nil {
		return Invite{}, wrap("invite", err)
	}
	s, ok := v[0].(string)
	if !ok {
		return Invite{}, ErrNotFound
	}
	var inv Invite
	if err := json.Unmarshal([]byte(s), &inv); err != nil {
		return Invite{}, err
	}
	if u, ok := v[1].(string); ok {
		inv.Used, _ = strconv.Atoi(u)
	}
	return inv, nil
}

func (r *Redis) RedeemInvite(ctx context.Context, hash string, now time.Time) (Invite, error) {
	res, err := redeemInvite.Run(ctx, r.rdb, []string{r.acctKey("invite", hash)}, micros(now)).Int64Slice()
	if err != nil {
		return Invite{}, wrap("redeem invite", err)
	}
	if len(res) != 2 {
		return Invite{}, wrap("redeem invite", errBadReply)
	}
	if res[0] == 0 {
		return Invite{}, [...]error{ErrNotFound, ErrExpired, ErrUsedUp}[min(res[1], 2)]
	}
	inv, err := r.Invite(ctx, hash)
	inv.Used = int(res[1])
	return inv, err
}

func (r *Redis) Invites(ctx context.Context, now time.Time) ([]Invite, error) {
	hashes, err := r.rdb.ZRevRange(ctx, r.acctKey("invites"), 0, -1).Result()
	if err != nil {
		return nil, wrap("invites", err)
	}
	var out []Invite
	for _, h := range hashes {
		inv, err := r.Invite(ctx, h)
		if errors.Is(err, ErrNotFound) {
			_ = r.rdb.ZRem(ctx, r.acctKey("invites"), h).Err() // expired from Redis
			continue
		}
		if err != nil {
			return nil, err
		}
		if inv.Expires.After(now) {
			out = append(out, inv)
		}
	}
	return out, nil
}

func (r *Redis) RevokeInvite(ctx context.Context, hash string) error {
	n, err := r.rdb.Del(ctx, r.acctKey("invite", hash)).Result()
	if err != nil {
		return wrap("revoke invite", err)
	}
	_ = r.rdb.ZRem(ctx, r.acctKey("invites"), hash).Err()
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (r *Redis) AddDevice(ctx context.Context, d Device) error {
	key := r.acctKey("device", d.User, d.ID)
	b, _ := json.Marshal(d)
	ok, err := r.rdb.HSetNX(ctx, key, "d", b).Result()
	if err != nil {
		return wrap("add device", err)
	}
	if !ok {
		return ErrExists
	}
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, key, "last_used", micros(d.LastUsed))
	pipe.Set(ctx, r.acctKey("cred", d.CredentialHash), d.User+"\x00"+d.ID, 0)
	pipe.ZAdd(ctx, r.acctKey("devices", d.User), redis.Z{Score: float64(micros(d.Created)), Member: d.ID})
	_, err = pipe.Exec(ctx)
	return wrap("add device", err)
}

func (r *Redis) device(ctx context.Context, user, id string) (Device, error) {
	v, err := r.rdb.HMGet(ctx, r.acctKey("device", user, id), "d", "last_used").Result()
	if err != nil {
		return Device{}, wrap("device", err)
	}
	s, ok := v[0].(string)
	if !ok {
		return Device{}, ErrNotFound
	}
	var d Device
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return Device{}, err
	}
	if u, ok := v[1].(string); ok {
		us, _ := strconv.ParseInt(u, 10, 64)
		d.LastUsed = fromMicros(us)
	}
	return d, nil
}

func (r *Redis) DeviceByCredential(ctx context.Context, hash string) (Device, error) {
	ref, err := r.rdb.Get(ctx, r.acctKey("cred", hash)).Result()
	if errors.Is(err, redis.Nil) {
		return Device{}, ErrNotFound
	}
	if err != nil {
		return Device{}, wrap("device by credential", err)
	}
	user, id, _ := cutNul(ref)
	d, err := r.device(ctx, user, id)
	if err == nil && d.CredentialHash != hash {
		return Device{}, ErrNotFound // the device was replaced
	}
	return d, err
}

// sortContacts orders contacts by when they were added.
func sortContacts(cs []Contact) {
	slices.SortFunc(cs, func(a, b Contact) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.User, b.User))
	})
}

func cutNul(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func (r *Redis) TouchDevice(ctx context.Context, user, id string, t time.Time) error {
	n, err := touchDevice.Run(ctx, r.rdb, []string{r.acctKey("device", user, id)}, micros(t)).Int64()
	if err != nil {
		return wrap("touch device", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (r *Redis) Devices(ctx context.Context, user string) ([]Device, error) {
	ids, err := r.rdb.ZRange(ctx, r.acctKey("devices", user), 0, -1).Result()
	if err != nil {
		return nil, wrap("devices", err)
	}
	var out []Device
	for _, id := range ids {
		d, err := r.device(ctx, user, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (r *Redis) RemoveDevice(ctx context.Context, user, id string) error {
	d, err := r.device(ctx, user, id)
	if err != nil {
		return err
	}
	pipe := r.rdb.Pipeline()
	pipe.Del(ctx, r.acctKey("device", user, id))
	pipe.Del(ctx, r.acctKey("cred", d.CredentialHash))
	pipe.ZRem(ctx, r.acctKey("devices", user), id)
	pipe.HDel(ctx, r.acctKey("push", user), id)
	_, err = pipe.Exec(ctx)
	return wrap("remove device", err)
}

func (r *Redis) AddPasskey(ctx context.Context, k Passkey) error {
	id := hex.EncodeToString(k.ID)
	b, _ := json.Marshal(k)
	ok, err := r.rdb.SetNX(ctx, r.acctKey("passkey", id), b, 0).Result()
	if err != nil {
		return wrap("add passkey", err)
	}
	if !ok {
		return ErrExists
	}
	return wrap("add passkey", r.rdb.SAdd(ctx, r.acctKey("passkeys", k.User), id).Err())
}

func (r *Redis) Passkey(ctx context.Context, id []byte) (Passkey, error) {
	var k Passkey
	return k, r.getJSON(ctx, r.acctKey("passkey", hex.EncodeToString(id)), &k, "passkey")
}

func (r *Redis) Passkeys(ctx context.Context, user string) ([]Passkey, error) {
	ids, err := r.rdb.SMembers(ctx, r.acctKey("passkeys", user)).Result()
	if err != nil {
		return nil, wrap("passkeys", err)
	}
	var out []Passkey
	for _, id := range ids {
		var k Passkey
		err := r.getJSON(ctx, r.acctKey("passkey", id), &k, "passkey")
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func (r *Redis) UpdatePasskey(ctx context.Context, id []byte, data []byte, t time.Time) error {
	// A passkey is used by one sign-in at a time; the last write of its
	// counter stands, as the authenticator's own counter does.
	k, err := r.Passkey(ctx, id)
	if err != nil {
		return err
	}
	k.Data = data
	if t.After(k.LastUsed) {
		k.LastUsed = t
	}
	b, _ := json.Marshal(k)
	ok, err := r.rdb.SetXX(ctx, r.acctKey("passkey", hex.EncodeToString(id)), b, redis.KeepTTL).Result()
	if err != nil {
		return wrap("update passkey", err)
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

func (r *Redis) CreatePairing(ctx context.Context, p Pairing) error {
	b, _ := json.Marshal(p)
	ok, err := r.rdb.SetNX(ctx, r.acctKey("pairing", p.ID), b, time.Until(p.Expires)).Result()
	if err != nil {
		return wrap("create pairing", err)
	}
	if !ok {
		return ErrExists
	}
	return nil
}

func (r *Redis) Pairing(ctx context.Context, id string, now time.Time) (Pairing, error) {
	var p Pairing
	if err := r.getJSON(ctx, r.acctKey("pairing", id), &p, "pairing"); err != nil {
		return Pairing{}, err
	}
	if !p.Expires.After(now) {
		return Pairing{}, ErrNotFound
	}
	return p, nil
}

func (r *Redis) ApprovePairing(ctx context.Context, id, user, deviceName string, now time.Time) error {
	p, err := r.Pairing(ctx, id, now)
	if err != nil {
		return err
	}
	if p.Approved() {
		return ErrUsedUp
	}
	p.User, p.DeviceName = user, deviceName
	b, _ := json.Marshal(p)
	n, err := approvePair.Run(ctx, r.rdb, []string{r.acctKey("pairing", id)}, b).Int64()
	if err != nil {
		return wrap("approve pairing", err)
	}
	return [...]error{ErrNotFound, nil, ErrUsedUp}[min(n, 2)]
}

func (r *Redis) FinishPairing(ctx context.Context, id string, now time.Time) (Pairing, error) {
	s, err := finishPair.Run(ctx, r.rdb, []string{r.acctKey("pairing", id)}).Text()
	if errors.Is(err, redis.Nil) {
		return Pairing{}, ErrNotFound
	}
	if err != nil {
		return Pairing{}, wrap("finish pairing", err)
	}
	var p Pairing
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Pairing{}, err
	}
	if !p.Expires.After(now) {
		return Pairing{}, ErrNotFound
	}
	return p, nil
}

func (r *Redis) AddContact(ctx context.Context, a, b string, t time.Time) error {
	if a == b {
		return nil
	}
	pipe := r.rdb.Pipeline()
	pipe.HSetNX(ctx, r.acctKey("contacts", a), b, micros(t))
	pipe.HSetNX(ctx, r.acctKey("contacts", b), a, micros(t))
	_, err := pipe.Exec(ctx)
	return wrap("add contact", err)
}

func (r *Redis) Contacts(ctx context.Context, user string) ([]Contact, error) {
	return r.contactHash(ctx, r.acctKey("contacts", user), "contacts")
}

// contactHash reads a hash of user → since (µs) as contacts, by since.
func (r *Redis) contactHash(ctx context.Context, key, what string) ([]Contact, error) {
	m, err := r.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, wrap(what, err)
	}
	out := make([]Contact, 0, len(m))
	for u, since := range m {
		us, _ := strconv.ParseInt(since, 10, 64)
		out = append(out, Contact{User: u, Since: fromMicros(us)})
	}
	sortContacts(out)
	return out, nil
}

func (r *Redis) RemoveContact(ctx context.Context, a, b string) error {
	pipe := r.rdb.Pipeline()
	pipe.HDel(ctx, r.acctKey("contacts", a), b)
	pipe.HDel(ctx, r.acctKey("contacts", b), a)
	_, err := pipe.Exec(ctx)
	return wrap("remove contact", err)
}

func (r *Redis) EraseAccount(ctx context.Context, user string) error {
	cs, err := r.Contacts(ctx, user)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := r.RemoveContact(ctx, user, c.User); err != nil {
			return err
		}
	}
	ds, err := r.Devices(ctx, user)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := r.RemoveDevice(ctx, user, d.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	ks, err := r.rdb.SMembers(ctx, r.acctKey("passkeys", user)).Result()
	if err != nil {
		return wrap("erase account", err)
	}
	for _, k := range ks {
		if err := r.rdb.Del(ctx, r.acctKey("passkey", k)).Err(); err != nil {
			return wrap("erase account", err)
		}
	}
	invs, err := r.Invites(ctx, time.Time{})
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.By == user {
			if err := r.RevokeInvite(ctx, inv.Hash); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	reqs, err := r.ContactRequests(ctx, user)
	if err != nil {
		return err
	}
	asked, err := r.rdb.SMembers(ctx, r.acctKey("asked", user)).Result()
	if err != nil {
		return wrap("erase account", err)
	}
	pipe := r.rdb.Pipeline()
	for _, c := range reqs {
		pipe.SRem(ctx, r.acctKey("asked", c.User), user)
	}
	for _, to := range asked {
		pipe.HDel(ctx, r.acctKey("requests", to), user)
	}
	pipe.Del(ctx, r.acctKey("requests", user), r.acctKey("asked", user))
	links, err := r.rdb.SMembers(ctx, r.acctKey("oidcof", user)).Result()
	if err != nil {
		return wrap("erase account", err)
	}
	for _, d := range links {
		pipe.Del(ctx, r.acctKey("oidc", d))
	}
	pipe.Del(ctx, r.acctKey("oidcof", user))
	pipe.Del(ctx, r.acctKey("passkeys", user), r.acctKey("devices", user), r.acctKey("contacts", user))
	pipe.Del(ctx, r.acctKey("person", user), r.acctKey("avatar", user), r.acctKey("push", user))
	pipe.ZRem(ctx, r.acctKey("people"), user)
	_, err = pipe.Exec(ctx)
	return wrap("erase account", err)
}

func (r *Redis) PutCeremony(ctx context.Context, id string, data []byte, expires time.Time) error {
	// The expiry goes with the data: Redis drops the key in time, and a
	// node whose clock says it is past the expiry refuses it too.
	v := strconv.FormatInt(micros(expires), 10) + "\n" + string(data)
	ok, err := r.rdb.SetNX(ctx, r.acctKey("ceremony", id), v, time.Until(expires)).Result()
	if err != nil {
		return wrap("put ceremony", err)
	}
	if !ok {
		return ErrExists
	}
	return nil
}

func (r *Redis) TakeCeremony(ctx context.Context, id string, now time.Time) ([]byte, error) {
	v, err := r.rdb.GetDel(ctx, r.acctKey("ceremony", id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, wrap("take ceremony", err)
	}
	exp, data, _ := strings.Cut(v, "\n")
	if us, _ := strconv.ParseInt(exp, 10, 64); us <= micros(now) {
		return nil, ErrNotFound
	}
	return []byte(data), nil
}

func (r *Redis) RequestContact(ctx context.Context, from, to string, t time.Time) error {
	pipe := r.rdb.Pipeline()
	pipe.HSetNX(ctx, r.acctKey("requests", to), from, micros(t))
	pipe.SAdd(ctx, r.acctKey("asked", from), to)
	_, err := pipe.Exec(ctx)
	return wrap("request contact", err)
}

func (r *Redis) ContactRequests(ctx context.Context, user string) ([]Contact, error) {
	return r.contactHash(ctx, r.acctKey("requests", user), "contact requests")
}

func (r *Redis) RemoveContactRequest(ctx context.Context, from, to string) error {
	n, err := r.rdb.HDel(ctx, r.acctKey("requests", to), from).Result()
	if err != nil {
		return wrap("remove contact request", err)
	}
	_ = r.rdb.SRem(ctx, r.acctKey("asked", from), to).Err()
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// subjectDigest names an identity provider's subject in a key.
func subjectDigest(issuer, subject string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return hex.EncodeToString(sum[:16])
}

func (r *Redis) LinkSubject(ctx context.Context, issuer, subject, user string) error {
	d := subjectDigest(issuer, subject)
	ok, err := r.rdb.SetNX(ctx, r.acctKey("oidc", d), user, 0).Result()
	if err != nil {
		return wrap("link subject", err)
	}
	if !ok {
		return ErrExists
	}
	return wrap("link subject", r.rdb.SAdd(ctx, r.acctKey("oidcof", user), d).Err())
}

func (r *Redis) SubjectUser(ctx context.Context, issuer, subject string) (string, error) {
	u, err := r.rdb.Get(ctx, r.acctKey("oidc", subjectDigest(issuer, subject))).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	return u, wrap("subject user", err)
}

func (r *Redis) SetAvatar(ctx context.Context, user string, png []byte) error {
	if _, err := r.Person(ctx, user); err != nil {
		return err
	}
	if png == nil {
		return wrap("set avatar", r.rdb.Del(ctx, r.acctKey("avatar", user)).Err())
	}
	return wrap("set avatar", r.rdb.Set(ctx, r.acctKey("avatar", user), png, 0).Err())
}

func (r *Redis) Avatar(ctx context.Context, user string) ([]byte, error) {
	b, err := r.rdb.Get(ctx, r.acctKey("avatar", user)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, wrap("avatar", err)
}

func (r *Redis) SetPush(ctx context.Context, user, device string, sub []byte) error {
	if _, err := r.device(ctx, user, device); err != nil {
		return err
	}
	if sub == nil {
		return wrap("set push", r.rdb.HDel(ctx, r.acctKey("push", user), device).Err())
	}
	return wrap("set push", r.rdb.HSet(ctx, r.acctKey("push", user), device, sub).Err())
}

func (r *Redis) Pushes(ctx context.Context, user string) (map[string][]byte, error) {
	m, err := r.rdb.HGetAll(ctx, r.acctKey("push", user)).Result()
	if err != nil {
		return nil, wrap("pushes", err)
	}
	out := make(map[string][]byte, len(m))
	for d, s := range m {
		out[d] = []byte(s)
	}
	return out, nil
}

func (r *Redis) HasAvatar(ctx context.Context, user string) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.acctKey("avatar", user)).Result()
	return n > 0, wrap("has avatar", err)
}
