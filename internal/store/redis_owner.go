package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// revokeScript moves a revocation mark forward, never back.
// KEYS[1] is the revocation hash, ARGV[1] the field, ARGV[2] the mark.
// A mark that is not a number is replaced.
const revokeScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local t = tonumber(ARGV[2])
if cur and cur >= t then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

// dropScript takes the entries ARGV out of the list KEYS[1], each every
// time it occurs, keeping the order of the others, and returns {how many
// went, how many are left}. Entries pushed since the caller read the list
// are not in ARGV and stay.
const dropScript = `
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end
local all = redis.call('LRANGE', KEYS[1], 0, -1)
local keep = {}
for i = 1, #all do
  if not drop[all[i]] then keep[#keep + 1] = all[i] end
end
local gone = #all - #keep
if gone > 0 then
  redis.call('DEL', KEYS[1])
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(keep, i, math.min(i + 999, #keep)))
  end
end
return {gone, #keep}
`

// pruneBatch is how many users' lists a prune reads per round trip: at
// most pruneBatch × Limit entries go each way.
const pruneBatch = 32

// EraseUser implements Owner.
func (r *Redis) EraseUser(ctx context.Context, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Revoke first: should the rest fail, the tokens are no good already.
	if err := r.RevokeTokens(ctx, user, time.Now()); err != nil {
		return err
	}
	// One key per command: in a cluster each is in its own slot.
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.listKey(kindCalls, user))
		p.Del(ctx, r.listKey(kindAssist, user))
		p.Del(ctx, r.userKey(user))
		return nil
	})
	if err != nil {
		return wrap("erase user", err)
	}
	for _, kind := range []string{kindCalls, kindAssist} {
		if err := r.unindex(ctx, kind, []string{user}); err != nil {
			return err
		}
	}
	return nil
}

// PruneCalls implements Owner.
func (r *Redis) PruneCalls(ctx context.Context, before time.Time) (int, error) {
	return pruneRedis(ctx, r, kindCalls, func(e CallEntry) bool { return e.EndedAt.Before(before) })
}

// PruneAssist implements Owner.
func (r *Redis) PruneAssist(ctx context.Context, before time.Time) (int, error) {
	return pruneRedis(ctx, r, kindAssist, func(e AssistEntry) bool { return e.At.Before(before) })
}

// RevokeTokens implements Owner. A zero t revokes nothing.
func (r *Redis) RevokeTokens(ctx context.Context, user string, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.IsZero() {
		return nil
	}
	err := r.revoke.Run(ctx, r.rdb, []string{r.revokedKey()}, revocationID(user), markMicros(t)).Err()
	return wrap("revoke tokens", err)
}

// TokensRevoked implements Owner.
func (r *Redis) TokensRevoked(ctx context.Context, user string) (time.Time, error) {
	s, err := r.rdb.HGet(ctx, r.revokedKey(), revocationID(user)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, wrap("tokens revoked", err)
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Not zero: a damaged mark must not let revoked tokens back in.
		return time.Time{}, fmt.Errorf("store: damaged revocation mark: %w", err)
	}
	return time.UnixMicro(us), nil
}

// pruneRedis drops the entries old picks from every indexed list of kind,
// a batch of users at a time, and returns how many went.
func pruneRedis[T any](ctx context.Context, r *Redis, kind string, old func(T) bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := r.ensureIndexed(ctx); err != nil {
		return 0, err
	}
	total := 0
	var cursor uint64
	for {
		// SSCAN may return a user twice; the second time finds nothing
		// left to drop.
		users, next, err := r.rdb.SScan(ctx, r.indexKey(kind), cursor, "", pruneBatch).Result()
		if err != nil {
			return total, wrap("prune", err)
		}
		// COUNT is a hint: a small set comes whole.
		for batch := range slices.Chunk(users, pruneBatch) {
			n, err := pruneUsers(ctx, r, kind, batch, old)
			total += n
			if err != nil {
				return total, err
			}
		}
		if next == 0 {
			return total, nil
		}
		cursor = next
	}
}

// pruneUsers drops the entries old picks from users' lists of kind, and
// takes the users whose list is gone out of the index. An entry that does
// not parse is left alone.
func pruneUsers[T any](ctx context.Context, r *Redis, kind string, users []string, old func(T) bool) (int, error) {
	if len(users) == 0 {
		return 0, nil
	}
	lists := make([]*redis.StringSliceCmd, len(users))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			lists[i] = p.LRange(ctx, r.listKey(kind, u), 0, -1)
		}
		return nil
	})
	if err != nil {
		return 0, wrap("prune", err)
	}
	var gone, dropFrom []string
	var drops [][]any
	for i, u := range users {
		raw := lists[i].Val()
		if len(raw) == 0 {
			gone = append(gone, u)
			continue
		}
		var drop []any
		for _, s := range raw {
			var e T
			if json.Unmarshal([]byte(s), &e) != nil {
				continue
			}
			if old(e) {
				drop = append(drop, s)
			}
		}
		if len(drop) > 0 {
			dropFrom = append(dropFrom, u)
			drops = append(drops, drop)
		}
	}
	n := 0
	if len(dropFrom) > 0 {
		cmds := make([]*redis.Cmd, len(dropFrom))
		_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, u := range dropFrom {
				cmds[i] = r.drop.Eval(ctx, p, []string{r.listKey(kind, u)}, drops[i]...)
			}
			return nil
		})
		// Count what went even if some scripts failed.
		for i, c := range cmds {
			res, cerr := c.Int64Slice()
			if cerr != nil || len(res) != 2 {
				continue
			}
			n += int(res[0])
			if res[1] == 0 {
				gone = append(gone, dropFrom[i])
			}
		}
		if err != nil {
			return n, wrap("prune", err)
		}
	}
	return n, r.unindex(ctx, kind, gone)
}

// unindex takes users, whose lists of kind are gone, out of that index.
// An append pushes to the list first and indexes its user after, so a list
// that exists once its user is out of the index was pushed meanwhile, and
// its user goes back in.
func (r *Redis) unindex(ctx context.Context, kind string, users []string) error {
	if len(users) == 0 {
		return nil
	}
	members := make([]any, len(users))
	for i, u := range users {
		members[i] = u
	}
	if err := r.rdb.SRem(ctx, r.indexKey(kind), members...).Err(); err != nil {
		return wrap("unindex", err)
	}
	exists := make([]*redis.IntCmd, len(users))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			exists[i] = p.Exists(ctx, r.listKey(kind, u))
		}
		return nil
	})
	if err != nil {
		return wrap("unindex", err)
	}
	var back []any
	for i, c := range exists {
		if c.Val() > 0 {
			back = append(back, users[i])
		}
	}
	if len(back) == 0 {
		return nil
	}
	return wrap("unindex", r.rdb.SAdd(ctx, r.indexKey(kind), back...).Err())
}

// ensureIndexed fills the indexes from the lists themselves, once, for
// lists written before the indexes were kept: it SCANs the keyspace (each
// master's, in a cluster), then sets users:indexed so that no later prune
// does it again.
func (r *Redis) ensureIndexed(ctx context.Context) error {
	n, err := r.rdb.Exists(ctx, r.indexedKey()).Result()
	if err != nil {
		return wrap("index", err)
	}
	if n == 1 {
		return nil
	}
	if cc, ok := r.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return r.indexFrom(ctx, c)
		})
	} else {
		err = r.indexFrom(ctx, r.rdb)
	}
	if err != nil {
		return err
	}
	return wrap("index", r.rdb.Set(ctx, r.indexedKey(), 1, 0).Err())
}

// indexFrom adds the users of the lists the server c holds to the
// indexes. The indexes are written through r.rdb: in a cluster, they may
// be on another server.
func (r *Redis) indexFrom(ctx context.Context, c redis.Cmdable) error {
	for _, kind := range []string{kindCalls, kindAssist} {
		start := r.listKey(kind, "")
		it := c.Scan(ctx, 0, globEscape(start)+"*", 500).Iterator()
		var users []any
		flush := func() error {
			if len(users) == 0 {
				return nil
			}
			err := r.rdb.SAdd(ctx, r.indexKey(kind), users...).Err()
			users = users[:0]
			return wrap("index", err)
		}
		for it.Next(ctx) {
			users = append(users, strings.TrimPrefix(it.Val(), start))
			if len(users) == 500 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := it.Err(); err != nil {
			return wrap("index", err)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// globEscape makes s match itself in a Redis glob pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
