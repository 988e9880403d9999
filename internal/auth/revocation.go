package auth

import "time"

// Revocation says which tokens were taken back: every token of User
// issued at or before Before; with Device set, only that device's; with
// ID set, the tokens with that id (jti), whoever holds them and whenever
// they were issued.
type Revocation struct {
	User   string
	Device string
	ID     string
	Before time.Time
}

// Covers reports whether r revoked the token that gave id.
func (r Revocation) Covers(id Identity) bool {
	if r.ID != "" {
		return id.ID == r.ID
	}
	if id.User != r.User || (r.Device != "" && id.Device != r.Device) {
		return false
	}
	return IssuedBy(id.IssuedAt, r.Before)
}

// IssuedBy reports whether a token issued at iat falls under a
// revocation mark. Tokens carry whole seconds: one issued in the second
// of the mark is covered, and so is one that does not say when it was
// issued. A zero mark covers nothing.
func IssuedBy(iat, mark time.Time) bool {
	return !mark.IsZero() && (iat.IsZero() || iat.Unix() <= mark.Unix())
}
