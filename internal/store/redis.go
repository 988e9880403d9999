package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	_ History   = (*Redis)(nil)
	_ Users     = (*Redis)(nil)
	_ AssistLog = (*Redis)(nil)
	_ Owner     = (*Redis)(nil)
)

// RedisConfig says how to reach Redis: one server, Sentinel (MasterName
// set) or Cluster (several Addrs, no MasterName), as go-redis's
// UniversalClient decides.
type RedisConfig struct {
	Addrs      []string
	MasterName string
	Username   string
	Password   string
	DB         int
	// KeyPrefix starts every key Tandem writes ("tandem:" by default),
	// so that one Redis can serve other things too.
	KeyPrefix string
	// Timeout bounds dialling and each read and write (default 1 s), on
	// top of the deadline of the context every call takes.
	Timeout time.Duration
	// Limit is how many history and audit entries are kept per user.
	Limit int
}

// Redis is the store of a multi-node deployment: every node reads and
// writes the same history, users and audit logs.
//
// Its keys, after the prefix:
//
//	calls:<user>   list: user's call history, newest first
//	assist:<user>  list: user's assistance audit log, newest first
//	user:<user>    string: user has signed in
//	users:calls    set: the users who may have a calls:<user> list
//	users:assist   set: the users who may have an assist:<user> list
//	users:indexed  string: the two sets hold every list (see ensureIndexed)
//	revoked        hash: revocationID(user) and deviceRevocationID(user,
//	               device) → revocation mark, Unix µs
//	revoked:id:<d> string: the token id of digest d is revoked; expires
//	               when every token with that id has
//
// Nothing runs on the keys of two users at once in a transaction or a
// script: in a cluster they are in different slots.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	limit  int64

	revoke   *redis.Script // see revokeScript
	drop     *redis.Script // see dropScript
	gcra     *redis.Script // see gcraScript
	group    *redis.Script // see groupScript
	revokeID *redis.Script // see revokeIDScript
	clearIf  *redis.Script // see clearIf (bus_redis.go)
}

// The kinds of per-user lists.
const (
	kindCalls  = "calls"
	kindAssist = "assist"
)

// listKey is the key of user's list of kind.
func (r *Redis) listKey(kind, user string) string { return r.prefix + kind + ":" + user }

// indexKey is the key of the set of users who have a list of kind.
func (r *Redis) indexKey(kind string) string { return r.prefix + "users:" + kind }

func (r *Redis) indexedKey() string         { return r.prefix + "users:indexed" }
func (r *Redis) userKey(user string) string { return r.prefix + "user:" + user }
func (r *Redis) revokedKey() string         { return r.prefix + "revoked" }

// ErrUnavailable wraps errors from a store that cannot be reached.
var ErrUnavailable = errors.New("store: unavailable")

// OpenRedis connects to Redis. It does not wait for Redis to answer:
// calls fail with ErrUnavailable until it does.
func OpenRedis(c RedisConfig) (*Redis, error) {
	if len(c.Addrs) == 0 {
		return nil, errors.New("store: redis: no addresses")
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "tandem:"
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.Limit <= 0 {
		c.Limit = 1000
	}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password, DB: c.DB,
		DialTimeout: c.Timeout, ReadTimeout: c.Timeout, WriteTimeout: c.Timeout,
		// Fail fast when Redis is away, rather than queue callers.
		PoolTimeout: c.Timeout, MaxRetries: 1,
		// Keep few idle: the connections a burst opened (callers retrying
		// after an outage) are closed as they come back, not held open.
		MaxIdleConns: 4,
	})
	return &Redis{rdb: rdb, prefix: c.KeyPrefix, limit: int64(c.Limit),
		revoke: redis.NewScript(revokeScript), drop: redis.NewScript(dropScript),
		gcra: redis.NewScript(gcraScript), group: redis.NewScript(groupScript),
		revokeID: redis.NewScript(revokeIDScript), clearIf: redis.NewScript(clearIf)}, nil
}

var quietOnce sync.Once

// quiet drops go-redis's own log lines (a failed dial per retry while
// Redis is away); Tandem logs what an operator needs: Redis unreachable,
// and back.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	return nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.rdb.Close() }

// wrap marks Redis errors as ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// pushBounded adds v to the front of user's list of kind ("calls" or
// "assist"), keeping the newest r.limit entries, and then indexes user as
// having such a list (see unindex).
func (r *Redis) pushBounded(ctx context.Context, kind, user string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	key := r.listKey(kind, user)
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, b)
		p.LTrim(ctx, key, 0, r.limit-1)
		return nil
	})
	if err != nil {
		return wrap("push", err)
	}
	// After the push, not with it: the index is another key (another slot
	// in a cluster), and adding after the list exists is what unindex
	// counts on.
	return wrap("index", r.rdb.SAdd(ctx, r.indexKey(kind), user).Err())
}

// newest reads up to limit entries of the list at key, newest first.
func newest[T any](ctx context.Context, r *Redis, key string, limit int) ([]T, error) {
	if limit <= 0 || int64(limit) > r.limit {
		limit = int(r.limit)
	}
	raw, err := r.rdb.LRange(ctx, key, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, wrap("read", err)
	}
	out := make([]T, 0, len(raw))
	for _, s := range raw {
		var e T
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			continue // a damaged entry costs itself, not the list
		}
		out = append(out, e)
	}
	return out, nil
}

// appendCallTo queues AppendCall's commands on p, for a caller that
// orders them with others of its own. In a cluster p must not be a
// transaction: the index is another key, in another slot. There the index
// may also be added to before the push lands; should a prune that empties
// the same user's list run exactly then, the list goes unindexed (and
// unpruned) until the user's next call is recorded.
func (r *Redis) appendCallTo(ctx context.Context, p redis.Pipeliner, user string, e CallEntry) {
	b, _ := json.Marshal(e)
	key := r.listKey(kindCalls, user)
	p.LPush(ctx, key, b)
	p.LTrim(ctx, key, 0, r.limit-1)
	p.SAdd(ctx, r.indexKey(kindCalls), user)
}

// AppendCall implements History.
func (r *Redis) AppendCall(ctx context.Context, user string, e CallEntry) error {
	return r.pushBounded(ctx, kindCalls, user, e)
}

// Calls implements History. An entry written twice (a node sent a batch
// again that Redis had partly applied before the connection failed) is
// listed once: a call has one entry per user.
func (r *Redis) Calls(ctx context.Context, user string, limit int) ([]CallEntry, error) {
	calls, err := newest[CallEntry](ctx, r, r.listKey(kindCalls, user), limit)
	seen := make(map[string]bool, len(calls))
	return slices.DeleteFunc(calls, func(e CallEntry) bool {
		dup := e.CallID != "" && seen[e.CallID]
		seen[e.CallID] = true
		return dup
	}), err
}

// AppendAssist implements AssistLog.
func (r *Redis) AppendAssist(ctx context.Context, user string, e AssistEntry) error {
	return r.pushBounded(ctx, kindAssist, user, e)
}

// AssistEntries implements AssistLog.
func (r *Redis) AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error) {
	return newest[AssistEntry](ctx, r, r.listKey(kindAssist, user), limit)
}

// TouchUser implements Users.
func (r *Redis) TouchUser(ctx context.Context, user string) error {
	return wrap("touch user", r.rdb.Set(ctx, r.userKey(user), 1, 0).Err())
}

// KnownUser implements Users.
func (r *Redis) KnownUser(ctx context.Context, user string) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.userKey(user)).Result()
	if err != nil {
		return false, wrap("known user", err)
	}
	return n == 1, nil
}
