// Package passkey is a software WebAuthn authenticator for Go tests: it
// answers a relying party's creation and request options the way a
// browser and a platform authenticator do ("none" attestation, ES256
// keys, discoverable credentials), so that sign-in is tested end to end
// without a browser, including answers a real one would never give
// (replays, another site's origin, a signature counter going back).
package passkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator keeps passkeys for pages at Origin.
type Authenticator struct {
	// Origin is the page's origin the browser reports (http://localhost:1234).
	Origin string
	creds  []*Credential
}

// Credential is one passkey the authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
	Count      uint32
}

// New returns an authenticator with no passkeys.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin} }

// Credentials are the passkeys held, oldest first.
func (a *Authenticator) Credentials() []*Credential { return a.creds }

var b64 = base64.RawURLEncoding

// creationOptions is what a relying party's creation options hold that
// an authenticator needs.
type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
	} `json:"publicKey"`
}

// Create makes a passkey for the creation options (the JSON a relying
// party hands the browser) and returns the browser's answer, as JSON.
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("passkey: user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	c := &Credential{ID: id, RPID: o.PublicKey.RP.ID, UserHandle: user, Key: key}
	a.creds = append(a.creds, c)

	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pad32(key.X.Bytes()), -3: pad32(key.Y.Bytes())})
	if err != nil {
		return nil, err
	}
	auth := authData(c.RPID, 0x45, 0) // user present and verified, attested data
	auth = append(auth, make([]byte, 16)...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(id)))
	auth = append(auth, id...)
	auth = append(auth, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	})
}

// Get answers request options with the newest passkey for their relying
// party, and returns the browser's answer, as JSON.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	for i := len(a.creds) - 1; i >= 0; i-- {
		if a.creds[i].RPID == o.PublicKey.RPID {
			return a.Assert(a.creds[i], o.PublicKey.Challenge)
		}
	}
	return nil, errors.New("passkey: none for this site")
}

// Assert signs challenge with c, as Get does, counting the use.
func (a *Authenticator) Assert(c *Credential, challenge string) ([]byte, error) {
	c.Count++
	auth := authData(c.RPID, 0x05, c.Count)
	cd := a.clientData("webauthn.get", challenge)
	sum := sha256.Sum256(cd)
	signed := sha256.Sum256(append(auth, sum[:]...)) // ES256 signs the SHA-256 of authData ‖ hash(clientData)
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, signed[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// authData is the authenticator data's fixed part: the relying party's
// hash, flags and counter.
func authData(rpID string, flags byte, count uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, count)
}

func pad32(b []byte) []byte {
	if len(b) >= 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}
