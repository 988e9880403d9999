package store

import (
	"context"
	"errors"
	"time"
)

// Accounts are the people who sign in with Tandem's own accounts: who they
// are, the devices each signed in on (each with its own long-lived
// credential), their passkeys, the invite links that bring new people in,
// the codes that add a device by QR, and who is whose contact. Tandem
// keeps no passwords: a secret handed to a device (a device credential,
// an invite link, a pairing code) is kept only as its SHA-256 hash.
//
// The single-node store keeps them in its embedded database (SQL); a
// deployment of several nodes keeps them in Redis.
type Accounts interface {
	// CreatePerson adds p; ErrExists if a person with p.ID exists.
	CreatePerson(ctx context.Context, p Person) error
	// Person returns the person with id, or ErrNotFound.
	Person(ctx context.Context, id string) (Person, error)
	// People lists everyone, oldest first.
	People(ctx context.Context) ([]Person, error)
	// UpdatePerson replaces the name, role and flags of the person with
	// p.ID; ErrNotFound if there is none.
	UpdatePerson(ctx context.Context, p Person) error

	// SetAvatar keeps user's picture (a PNG the accounts made), or
	// removes it for nil; ErrNotFound if there is no such person.
	SetAvatar(ctx context.Context, user string, png []byte) error
	// Avatar is user's picture, or ErrNotFound if they have none.
	Avatar(ctx context.Context, user string) ([]byte, error)
	// HasAvatar reports whether user has a picture, without reading it.
	HasAvatar(ctx context.Context, user string) (bool, error)

	// CreateInvite keeps inv (by the hash of its secret).
	CreateInvite(ctx context.Context, inv Invite) error
	// RedeemInvite takes one use of the invite whose secret hashes to
	// hash, at now: ErrNotFound for none, ErrExpired past its expiry,
	// ErrUsedUp once every use is taken. Two redeeming the last use at
	// once: one wins.
	RedeemInvite(ctx context.Context, hash string, now time.Time) (Invite, error)
	// Invite returns the invite whose secret hashes to hash, used or not.
	Invite(ctx context.Context, hash string) (Invite, error)
	// Invites lists the invites not yet expired, newest first.
	Invites(ctx context.Context, now time.Time) ([]Invite, error)
	// RevokeInvite removes an invite; ErrNotFound if there is none.
	RevokeInvite(ctx context.Context, hash string) error

	// AddDevice records d with the hash of its credential; ErrExists if
	// the user has a device with d.ID.
	AddDevice(ctx context.Context, d Device) error
	// DeviceByCredential returns the device whose credential hashes to
	// hash, or ErrNotFound (also for a device removed).
	DeviceByCredential(ctx context.Context, hash string) (Device, error)
	// TouchDevice notes the device was used at t.
	TouchDevice(ctx context.Context, user, id string, t time.Time) error
	// Devices lists user's devices, oldest first.
	Devices(ctx context.Context, user string) ([]Device, error)
	// RemoveDevice forgets a device, its credential and its push
	// subscription; ErrNotFound if there is none.
	RemoveDevice(ctx context.Context, user, id string) error

	// SetPush keeps the push subscription (JSON, opaque here) of user's
	// device; nil removes it. ErrNotFound if there is no such device.
	SetPush(ctx context.Context, user, device string, sub []byte) error
	// Pushes lists user's devices' push subscriptions, by device.
	Pushes(ctx context.Context, user string) (map[string][]byte, error)

	// AddPasskey keeps a passkey of a user; ErrExists for a credential
	// id already registered (to anyone).
	AddPasskey(ctx context.Context, k Passkey) error
	// Passkey returns the passkey with credential id, or ErrNotFound.
	Passkey(ctx context.Context, id []byte) (Passkey, error)
	// Passkeys lists user's passkeys.
	Passkeys(ctx context.Context, user string) ([]Passkey, error)
	// UpdatePasskey replaces a passkey's data (its signature counter and
	// flags) and notes its use at t.
	UpdatePasskey(ctx context.Context, id []byte, data []byte, t time.Time) error

	// CreatePairing keeps a device pairing (adding a device by QR code).
	CreatePairing(ctx context.Context, p Pairing) error
	// Pairing returns the pairing with id, or ErrNotFound (also once it
	// expired).
	Pairing(ctx context.Context, id string, now time.Time) (Pairing, error)
	// ApprovePairing marks the pairing with id approved by user, naming
	// the new device; ErrNotFound if it is gone or expired, ErrUsedUp if
	// it was approved already.
	ApprovePairing(ctx context.Context, id, user, deviceName string, now time.Time) error
	// FinishPairing removes an approved pairing and returns it; the new
	// device takes its credential once.
	FinishPairing(ctx context.Context, id string, now time.Time) (Pairing, error)

	// AddContact makes a and b each other's contacts (again: no change).
	AddContact(ctx context.Context, a, b string, t time.Time) error
	// Contacts lists user's contacts, by when they were added.
	Contacts(ctx context.Context, user string) ([]Contact, error)
	// RemoveContact ends a and b being each other's contacts.
	RemoveContact(ctx context.Context, a, b string) error
	// RequestContact keeps from's request to become to's contact (again:
	// no change).
	RequestContact(ctx context.Context, from, to string, t time.Time) error
	// ContactRequests lists the requests to user, oldest first (User is
	// who asked).
	ContactRequests(ctx context.Context, user string) ([]Contact, error)
	// RemoveContactRequest forgets from's request to to; ErrNotFound if
	// there was none.
	RemoveContactRequest(ctx context.Context, from, to string) error

	// LinkSubject makes the identity provider issuer's subject sign in as
	// user (OIDC); ErrExists if that subject is someone's already.
	LinkSubject(ctx context.Context, issuer, subject, user string) error
	// SubjectUser is whom issuer's subject signs in as, or ErrNotFound.
	SubjectUser(ctx context.Context, issuer, subject string) (string, error)

	// PutCeremony keeps the state of a sign-in ceremony (WebAuthn's
	// challenge) under id until expires.
	PutCeremony(ctx context.Context, id string, data []byte, expires time.Time) error
	// TakeCeremony returns the ceremony's state and forgets it, so that
	// one ceremony finishes once: ErrNotFound if it is gone or expired.
	TakeCeremony(ctx context.Context, id string, now time.Time) ([]byte, error)

	// EraseAccount removes everything the accounts keep about user: the
	// person, devices, passkeys, contacts and contact requests both ways,
	// their identity provider links, their invites and pairings.
	EraseAccount(ctx context.Context, user string) error
}

// Errors of Accounts.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrExpired  = errors.New("store: expired")
	ErrUsedUp   = errors.New("store: used up")
)

// Roles of a person.
const (
	RoleOwner  = "owner"  // runs the server: everything an admin can, and makes admins
	RoleAdmin  = "admin"  // manages people and devices
	RoleMember = "member" // calls their contacts
)

// Person is someone with an account.
type Person struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled,omitempty"`
	// CanInvite lets a member create invite links (owners and admins
	// always can).
	CanInvite bool      `json:"can_invite,omitempty"`
	Created   time.Time `json:"created"`
}

// Invite is an invite link: whoever opens it may create an account, as
// many times as it has uses, until it expires.
type Invite struct {
	// Hash is the SHA-256 of the link's secret, hex: the key it is kept
	// by. The secret itself is never kept.
	Hash string `json:"hash"`
	// By is who created it ("" for the first-run setup link and the
	// command line).
	By string `json:"by,omitempty"`
	// For names who it is meant for, as the inviter wrote it; shown to
	// the invitee as the name to start from.
	For     string    `json:"for,omitempty"`
	Role    string    `json:"role"`
	Uses    int       `json:"uses"` // how many accounts it may create
	Used    int       `json:"used"` // how many it has
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created"`
}

// Device is one device a person signed in on, with its own credential.
type Device struct {
	User string `json:"user"`
	ID   string `json:"id"`
	Name string `json:"name"`
	// CredentialHash is the SHA-256 of the device's credential, hex.
	CredentialHash string    `json:"credential_hash"`
	Created        time.Time `json:"created"`
	LastUsed       time.Time `json:"last_used"`
}

// Passkey is a WebAuthn credential of a person.
type Passkey struct {
	ID   []byte `json:"id"`
	User string `json:"user"`
	// Data is the credential as the WebAuthn library keeps it (public
	// key, signature counter, flags), opaque to the store.
	Data     []byte    `json:"data"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

// Pairing is a new device asking to be signed in by an approving one (a
// QR code, or a short code typed in).
type Pairing struct {
	ID string `json:"id"` // from the short code: what the approver names
	// SecretHash is the SHA-256 of the secret only the new device holds,
	// hex: it finishes the pairing with it.
	SecretHash string    `json:"secret_hash"`
	Expires    time.Time `json:"expires"`
	// Approved: by User, naming the device DeviceName.
	User       string `json:"user,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
}

// Approved reports whether someone approved the pairing.
func (p Pairing) Approved() bool { return p.User != "" }

// Contact is someone in a person's contacts.
type Contact struct {
	User  string    `json:"user"`
	Since time.Time `json:"since"`
}
