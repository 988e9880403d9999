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

// Recent remembers the revocations of the last RecentFor (at most
// MaxRecent of them), for a session whose token was checked just before
// a revocation and that registers just after it: without them it would
// slip through, its token having been good when checked. Not safe for
// concurrent use: its owner guards it with its own lock.
type Recent struct {
	list []recentRevocation
}

type recentRevocation struct {
	r  Revocation
	at time.Time
}

const (
	// RecentFor is how long a revocation is remembered: longer than a
	// session takes from its token's check to its registration (a
	// sign-in, or a WHIP offer's negotiation).
	RecentFor = time.Minute
	// MaxRecent bounds the revocations remembered.
	MaxRecent = 4096
)

// Note remembers r, heard of at now, and forgets what is older than
// RecentFor.
func (c *Recent) Note(r Revocation, now time.Time) {
	keep := c.list[:0]
	for _, e := range c.list {
		if now.Sub(e.at) < RecentFor {
			keep = append(keep, e)
		}
	}
	if len(keep) >= MaxRecent {
		keep = keep[len(keep)-MaxRecent+1:]
	}
	c.list = append(keep, recentRevocation{r: r, at: now})
}

// Covers reports whether a revocation remembered covers the token that
// gave id.
func (c *Recent) Covers(id Identity) bool {
	for _, e := range c.list {
		if e.r.Covers(id) {
			return true
		}
	}
	return false
}
