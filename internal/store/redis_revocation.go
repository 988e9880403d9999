package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Revocations = (*Redis)(nil)

// revokeIDScript marks a token id revoked for ARGV[1] milliseconds, or
// leaves it if it already is for at least that long. KEYS[1] is the id's
// key.
const revokeIDScript = `
local left = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[1])
if left >= want then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', want)
return 1
`

func (r *Redis) revokedIDKey(id string) string {
	return r.prefix + "revoked:id:" + tokenRevocationID(id)
}

// RevokeDevice implements Revocations. The mark sits beside the users'
// in the revoked hash, so that one HMGET reads both.
func (r *Redis) RevokeDevice(ctx context.Context, user, device string, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.IsZero() {
		return nil
	}
	err := r.revoke.Run(ctx, r.rdb, []string{r.revokedKey()}, deviceRevocationID(user, device), markMicros(t)).Err()
	return wrap("revoke device", err)
}

// RevokeTokenID implements Revocations: a key that Redis expires at until.
func (r *Redis) RevokeTokenID(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return errors.New("store: revoke token id: empty id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ms := time.Until(until).Milliseconds() + 1 // rounded up
	if ms <= 1 {
		return nil // every token with that id has expired
	}
	err := r.revokeID.Run(ctx, r.rdb, []string{r.revokedIDKey(id)}, ms).Err()
	return wrap("revoke token id", err)
}

// Revoked implements Revocations, in one round trip (two commands: in a
// cluster the id's key is in another slot than the hash).
func (r *Redis) Revoked(ctx context.Context, user, device, id string) (Marks, error) {
	if err := ctx.Err(); err != nil {
		return Marks{}, err
	}
	var marks *redis.SliceCmd
	var exists *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		marks = p.HMGet(ctx, r.revokedKey(), revocationID(user), deviceRevocationID(user, device))
		if id != "" {
			exists = p.Exists(ctx, r.revokedIDKey(id))
		}
		return nil
	})
	if err != nil {
		return Marks{}, wrap("revoked", err)
	}
	var m Marks
	vals := marks.Val()
	for i, at := range []*time.Time{&m.User, &m.Device} {
		if i >= len(vals) || vals[i] == nil {
			continue
		}
		s, _ := vals[i].(string)
		us, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			// Not zero: a damaged mark must not let revoked tokens back in.
			return Marks{}, fmt.Errorf("store: damaged revocation mark: %w", err)
		}
		*at = time.UnixMicro(us)
	}
	m.ID = exists != nil && exists.Val() > 0
	return m, nil
}
