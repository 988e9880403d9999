// Package accounts is Tandem's built-in sign-in: people invited by link
// who register a passkey, devices that each hold their own long-lived
// credential and trade it for short-lived access tokens (the tokens
// signaling and WHIP take today), devices added by approving a code, and
// contacts. Tandem keeps no passwords: every secret it hands out is kept
// only as its hash.
package accounts

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/store"
)

// Store is what the accounts keep, and the limiter of their open doors.
type Store interface {
	store.Accounts
	store.RateLimiter
	store.Users
}

// Minter mints access tokens.
type Minter interface {
	Mint(user, device string, grants []string, ttl time.Duration, opts ...auth.MintOption) (string, time.Time, error)
}

// Revoker signs a device out everywhere at once: its tokens are refused
// and its sessions on every node close.
type Revoker interface {
	Revoke(ctx context.Context, r auth.Revocation) (auth.Revocation, error)
}

// Config holds the accounts' settings.
type Config struct {
	// PublicURL is the server's address as people open it
	// (https://call.example.org); links are made with it, and passkeys
	// are bound to its host. Empty: the host each request came to.
	PublicURL string
	// TokenTTL is how long an access token lasts; a device gets a new
	// one with its credential. Default 1 h.
	TokenTTL time.Duration
	// InviteTTL is how long an invite link holds unless said; default 7
	// days.
	InviteTTL time.Duration
	// PairingTTL is how long a code to add a device holds; default 5
	// minutes.
	PairingTTL time.Duration
	// Name is the server's name as passkey prompts show it; default
	// "Tandem".
	Name string
	// FamilyCircle makes everyone with an account everyone's contact.
	FamilyCircle bool
	// OIDC is an identity provider people may sign in with; none when
	// its Issuer is empty.
	OIDC OIDCConfig
}

// Service runs the accounts.
type Service struct {
	cfg     Config
	store   Store
	mint    Minter
	revoke  Revoker
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	// onContact is told when two people become contacts (OnContact).
	onContact func(a, b string)
	oidc      oidcClient
	// push rings devices without a connection (push.go); nil when off.
	push *pusher
	// onDecline declines a call for a device its push rang (OnDecline).
	onDecline func(user, device, callID string) error
}

// OnDecline sets who declines a call when a device's notification is
// declined (the hub).
func (s *Service) OnDecline(f func(user, device, callID string) error) { s.onDecline = f }

// DeclineByCredential is a ringing notification's Decline: the service
// worker has no session, only the device's credential.
func (s *Service) DeclineByCredential(ctx context.Context, credential, callID string) error {
	d, err := s.store.DeviceByCredential(ctx, hash(credential))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotSignedIn
	}
	if err != nil {
		return err
	}
	if _, err := s.active(ctx, d.User); err != nil {
		return err
	}
	if s.onDecline == nil {
		return ErrNoPush
	}
	return s.onDecline(d.User, d.ID, callID)
}

// New returns the service.
func New(cfg Config, st Store, m Minter, r Revoker, log *slog.Logger) *Service {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.InviteTTL <= 0 {
		cfg.InviteTTL = 7 * 24 * time.Hour
	}
	if cfg.PairingTTL <= 0 {
		cfg.PairingTTL = 5 * time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = "Tandem"
	}
	if cfg.OIDC.Name == "" {
		cfg.OIDC.Name = "single sign-on"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Service{cfg: cfg, store: st, mint: m, revoke: r, log: log, now: time.Now, metrics: newMetrics()}
}

// Errors a person is told about; the HTTP layer gives each its status.
var (
	ErrInviteInvalid  = errors.New("this invite link is not valid: ask for a new one")
	ErrInviteExpired  = errors.New("this invite link has expired: ask for a new one")
	ErrInviteUsedUp   = errors.New("this invite link has been used: ask for a new one")
	ErrNotSignedIn    = errors.New("this device is not signed in, or was removed: sign in again")
	ErrDisabled       = errors.New("this account is disabled: ask the server's owner")
	ErrForbidden      = errors.New("you may not do this")
	ErrBadName        = errors.New("a name is 1 to 64 characters")
	ErrBadRole        = errors.New("a role is owner, admin or member")
	ErrPairingUnknown = errors.New("no device is waiting with that code: check it, or start again on the new device")
)

// secret returns a fresh secret of n random bytes, base64url.
func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hash is how a secret is kept: its SHA-256, hex.
func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// cleanName checks a display name: trimmed, 1 to 64 characters, no
// control characters.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len([]rune(s)) > 64 || strings.ContainsFunc(s, unicode.IsControl) {
		return "", ErrBadName
	}
	return s, nil
}

// slug is a user id made from a display name: lower-case letters and
// digits, the rest as dashes.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 24 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "person"
	}
	return s
}

// newDeviceID names a device.
func newDeviceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "d-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// InviteOptions shape a new invite.
type InviteOptions struct {
	For   string        // who it is meant for, shown to them; optional
	Uses  int           // how many accounts it may make; default 1
	TTL   time.Duration // default Config.InviteTTL
	Owner bool          // the account it makes is an owner's
}

// CreateInvite makes an invite link by person by ("" for the first-run
// setup and the command line, which may make owners). base is the
// server's address when no PublicURL is set.
func (s *Service) CreateInvite(ctx context.Context, by string, o InviteOptions, base string) (link string, inv store.Invite, err error) {
	if by != "" {
		p, err := s.active(ctx, by)
		if err != nil {
			return "", store.Invite{}, err
		}
		if p.Role == store.RoleMember && !p.CanInvite || o.Owner && p.Role != store.RoleOwner {
			return "", store.Invite{}, ErrForbidden
		}
	}
	if o.For != "" {
		if o.For, err = cleanName(o.For); err != nil {
			return "", store.Invite{}, err
		}
	}
	uses := o.Uses
	if uses <= 0 {
		uses = 1
	}
	if uses > 100 {
		return "", store.Invite{}, errors.New("an invite link makes at most 100 accounts")
	}
	ttl := o.TTL
	if ttl <= 0 {
		ttl = s.cfg.InviteTTL
	}
	if ttl > 90*24*time.Hour {
		return "", store.Invite{}, errors.New("an invite link holds for at most 90 days")
	}
	role := store.RoleMember
	if o.Owner {
		role = store.RoleOwner
	}
	sec := secret(24)
	now := s.now()
	inv = store.Invite{Hash: hash(sec), By: by, For: o.For, Role: role, Uses: uses, Expires: now.Add(ttl), Created: now}
	if err := s.store.CreateInvite(ctx, inv); err != nil {
		return "", store.Invite{}, err
	}
	return s.link(base, "invite", sec), inv, nil
}

// link is the address of the web client with fragment key=value: a
// fragment, so the secret is never sent in a request line or a Referer.
func (s *Service) link(base, key, value string) string {
	return strings.TrimRight(cmp.Or(s.cfg.PublicURL, base), "/") + "/#" + key + "=" + value
}

// SetupLink returns a link that makes the first person the owner, if the
// server has nobody yet; "" once it has someone. Each start without an
// owner makes a new link (the secret of an older one is not kept); an
// older link still works until it expires.
func (s *Service) SetupLink(ctx context.Context, base string) (string, error) {
	people, err := s.store.People(ctx)
	if err != nil {
		return "", err
	}
	if len(people) > 0 {
		return "", nil
	}
	link, _, err := s.CreateInvite(ctx, "", InviteOptions{Owner: true, TTL: 7 * 24 * time.Hour}, base)
	return link, err
}

// active returns the person with id if they may act.
func (s *Service) active(ctx context.Context, id string) (store.Person, error) {
	p, err := s.store.Person(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Person{}, ErrNotSignedIn
	}
	if err != nil {
		return store.Person{}, err
	}
	if p.Disabled {
		return store.Person{}, ErrDisabled
	}
	return p, nil
}

// checkInvite finds the invite of a link's secret, not yet used up.
func (s *Service) checkInvite(ctx context.Context, sec string) (store.Invite, error) {
	inv, err := s.store.Invite(ctx, hash(sec))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Invite{}, ErrInviteInvalid
	case err != nil:
		return store.Invite{}, err
	case !inv.Expires.After(s.now()):
		return store.Invite{}, ErrInviteExpired
	case inv.Used >= inv.Uses:
		return store.Invite{}, ErrInviteUsedUp
	}
	return inv, nil
}

// SignedIn is what a device gets when it signs in: who it is, its
// credential (kept by the device, shown never again) and a first access
// token.
type SignedIn struct {
	User       string    `json:"user"`
	Name       string    `json:"name"`
	Device     string    `json:"device"`
	DeviceName string    `json:"device_name"`
	Credential string    `json:"credential"`
	Token      string    `json:"token"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// newDevice gives user a device named name, with a fresh credential, and
// its first token.
func (s *Service) newDevice(ctx context.Context, p store.Person, name string) (SignedIn, error) {
	name, err := cleanName(cmp.Or(name, "Device"))
	if err != nil {
		return SignedIn{}, err
	}
	cred := secret(32)
	now := s.now()
	d := store.Device{User: p.ID, ID: newDeviceID(), Name: name, CredentialHash: hash(cred), Created: now, LastUsed: now}
	if err := s.store.AddDevice(ctx, d); err != nil {
		return SignedIn{}, err
	}
	tok, exp, err := s.mint.Mint(p.ID, d.ID, nil, s.cfg.TokenTTL)
	if err != nil {
		return SignedIn{}, err
	}
	return SignedIn{User: p.ID, Name: p.Name, Device: d.ID, DeviceName: d.Name, Credential: cred, Token: tok, ExpiresAt: exp}, nil
}

// Token trades a device's credential for a fresh access token.
func (s *Service) Token(ctx context.Context, credential string) (SignedIn, error) {
	d, err := s.store.DeviceByCredential(ctx, hash(credential))
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.signIn("credential", "unknown")
		return SignedIn{}, ErrNotSignedIn
	}
	if err != nil {
		return SignedIn{}, err
	}
	p, err := s.active(ctx, d.User)
	if err != nil {
		s.metrics.signIn("credential", "disabled")
		return SignedIn{}, err
	}
	tok, exp, err := s.mint.Mint(d.User, d.ID, nil, s.cfg.TokenTTL)
	if err != nil {
		return SignedIn{}, err
	}
	if err := s.store.TouchDevice(ctx, d.User, d.ID, s.now()); err != nil {
		s.log.Warn("device use not noted", "err", err)
	}
	s.metrics.signIn("credential", "ok")
	return SignedIn{User: d.User, Name: p.Name, Device: d.ID, DeviceName: d.Name, Token: tok, ExpiresAt: exp}, nil
}

// Devices lists user's devices.
func (s *Service) Devices(ctx context.Context, user string) ([]store.Device, error) {
	return s.store.Devices(ctx, user)
}

// RemoveDevice removes device of user, by actor (the user, or an admin):
// its credential is refused from now on, and it is signed out everywhere
// at once.
func (s *Service) RemoveDevice(ctx context.Context, actor, user, device string) error {
	a, err := s.active(ctx, actor)
	if err != nil {
		return err
	}
	if actor != user && a.Role == store.RoleMember {
		return ErrForbidden
	}
	return s.removeDevice(ctx, user, device, actor)
}

func (s *Service) removeDevice(ctx context.Context, user, device, by string) error {
	if err := s.store.RemoveDevice(ctx, user, device); err != nil {
		return err
	}
	if _, err := s.revoke.Revoke(ctx, auth.Revocation{User: user, Device: device}); err != nil {
		return fmt.Errorf("the device was removed, but its sign-in could not be ended everywhere: %w", err)
	}
	s.log.Info("device removed", "user", user, "device", device, "by", by)
	return nil
}

// UpdatePerson changes what is given of a person: disabling one signs
// every device of theirs out at once (their credentials are refused while
// disabled).
func (s *Service) UpdatePerson(ctx context.Context, user string, disabled *bool, role *string, canInvite *bool) (store.Person, error) {
	p, err := s.store.Person(ctx, user)
	if err != nil {
		return store.Person{}, err
	}
	if role != nil {
		switch *role {
		case store.RoleOwner, store.RoleAdmin, store.RoleMember:
			p.Role = *role
		default:
			return store.Person{}, ErrBadRole
		}
	}
	if canInvite != nil {
		p.CanInvite = *canInvite
	}
	if disabled != nil {
		p.Disabled = *disabled
	}
	if err := s.store.UpdatePerson(ctx, p); err != nil {
		return store.Person{}, err
	}
	if p.Disabled {
		if _, err := s.revoke.Revoke(ctx, auth.Revocation{User: user}); err != nil {
			return p, err
		}
	}
	return p, nil
}

// ContactView is a contact as a person's client shows them.
type ContactView struct {
	User  string    `json:"user"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
	// Avatar: they have a picture (GET /api/v1/account/avatar/{user}).
	Avatar bool `json:"avatar,omitempty"`
}

// Contacts lists user's contacts with their names.
func (s *Service) Contacts(ctx context.Context, user string) ([]ContactView, error) {
	cs, err := s.store.Contacts(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]ContactView, 0, len(cs))
	for _, c := range cs {
		v := ContactView{User: c.User, Name: c.User, Since: c.Since}
		if p, err := s.store.Person(ctx, c.User); err == nil {
			v.Name = p.Name
		}
		v.Avatar, _ = s.store.HasAvatar(ctx, c.User)
		out = append(out, v)
	}
	return out, nil
}

// ContactIDs lists user's contacts' user ids (signaling's ContactBook).
func (s *Service) ContactIDs(ctx context.Context, user string) ([]string, error) {
	cs, err := s.store.Contacts(ctx, user)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.User)
	}
	return ids, nil
}

// LastSeen is when any of user's devices was last in use.
func (s *Service) LastSeen(ctx context.Context, user string) (time.Time, error) {
	ds, err := s.store.Devices(ctx, user)
	var last time.Time
	for _, d := range ds {
		if d.LastUsed.After(last) {
			last = d.LastUsed
		}
	}
	return last, err
}

// Seen notes a device's use at t (its session ended); a device signed
// in with a token from elsewhere has no record, and is let be.
func (s *Service) Seen(ctx context.Context, user, device string, t time.Time) {
	if err := s.store.TouchDevice(ctx, user, device, t); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("device use not noted", "err", err)
	}
}

// OnContact sets who is told when two people become contacts (the hub,
// so that they see each other's presence at once).
func (s *Service) OnContact(f func(a, b string)) { s.onContact = f }

// contactAdded makes a and b contacts and tells whoever listens.
func (s *Service) contactAdded(ctx context.Context, a, b string) error {
	if err := s.store.AddContact(ctx, a, b, s.now()); err != nil {
		return err
	}
	if s.onContact != nil {
		s.onContact(a, b)
	}
	return nil
}

// ExportAccount is user's account for their data archive; nil if they
// have none.
func (s *Service) ExportAccount(ctx context.Context, user string) (*adminapi.AccountExport, error) {
	p, err := s.store.Person(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	x := &adminapi.AccountExport{Name: p.Name, Role: p.Role, Created: p.Created,
		Devices: []adminapi.DeviceView{}, Passkeys: []adminapi.PasskeyView{}, Contacts: []adminapi.ContactExport{}}
	ds, err := s.store.Devices(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		x.Devices = append(x.Devices, adminapi.DeviceView{ID: d.ID, Name: d.Name, Created: d.Created, LastUsed: d.LastUsed})
	}
	ks, err := s.store.Passkeys(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		x.Passkeys = append(x.Passkeys, adminapi.PasskeyView{ID: base64.RawURLEncoding.EncodeToString(k.ID), Created: k.Created, LastUsed: k.LastUsed})
	}
	cs, err := s.Contacts(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		x.Contacts = append(x.Contacts, adminapi.ContactExport{User: c.User, Name: c.Name, Since: c.Since})
	}
	return x, nil
}

// EraseAccount removes user's account, devices, passkeys, contacts and
// the invites they made (part of erasing their data).
func (s *Service) EraseAccount(ctx context.Context, user string) error {
	return s.store.EraseAccount(ctx, user)
}

// Relation says whether callee has an account, and whether caller is
// among their contacts (signaling's ContactBook).
func (s *Service) Relation(ctx context.Context, caller, callee string) (account, contact bool, err error) {
	if _, err := s.store.Person(ctx, callee); errors.Is(err, store.ErrNotFound) {
		return false, false, nil
	} else if err != nil {
		return false, false, err
	}
	cs, err := s.store.Contacts(ctx, callee)
	if err != nil {
		return true, false, err
	}
	for _, c := range cs {
		if c.User == caller {
			return true, true, nil
		}
	}
	return true, false, nil
}
