package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

var _ RateLimiter = (*Redis)(nil)

// gcraScript is the limiter's step (see gcra) on one key, in Unix
// milliseconds. KEYS[1] holds the key's time; ARGV[1] is now, ARGV[2]
// Every, ARGV[3] Burst. It returns {1, 0} when the event is allowed and
// counted, {0, ms to wait} when not. The key expires when its time has
// passed, so a limiter costs Redis nothing for keys at rest.
const gcraScript = `
local now = tonumber(ARGV[1])
local every = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local nxt = tat + every
local allow_at = nxt - burst * every
if now < allow_at then return {0, allow_at - now} end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', string.format('%d', nxt - now))
return {1, 0}
`

// limitKey is the Redis key of a limiter key: a digest, so that what the
// limiter keeps names no user.
func (r *Redis) limitKey(key string) string {
	sum := sha256.Sum256([]byte("tandem rate limit\x00" + key))
	return r.prefix + "limit:" + hex.EncodeToString(sum[:16])
}

// Allow implements RateLimiter, with one atomic script per call: every
// node counts against the same key. Times are now as the calling node
// sees it, to the millisecond; nodes whose clocks differ by d make a
// limit that much looser or stricter (d × the rate events).
func (r *Redis) Allow(ctx context.Context, key string, rt Rate, now time.Time) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if rt.Off() {
		return Decision{Allowed: true}, nil
	}
	every := max(rt.Every.Milliseconds(), 1)
	res, err := r.gcra.Run(ctx, r.rdb, []string{r.limitKey(key)}, now.UnixMilli(), every, rt.Burst).Int64Slice()
	if err != nil {
		return Decision{}, wrap("rate limit", err)
	}
	if len(res) != 2 {
		return Decision{}, wrap("rate limit", errBadReply)
	}
	if res[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	return Decision{RetryAfter: time.Duration(res[1]) * time.Millisecond}, nil
}

// errBadReply is a script's answer that is not what it returns.
var errBadReply = errors.New("unexpected reply")
