package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	_ History   = (*Redis)(nil)
	_ Users     = (*Redis)(nil)
	_ AssistLog = (*Redis)(nil)
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
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	limit  int64
}

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
	})
	return &Redis{rdb: rdb, prefix: c.KeyPrefix, limit: int64(c.Limit)}, nil
}

var quietOnce sync.Once

// quiet drops go-redis's own log lines (a failed dial per retry while
// Redis is away); Tandem logs what an operator needs: Redis unreachable,
// and back.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Client returns the Redis client, for the parts of a node that share
// live state (presence, rooms, nodes) through the same connection.
func (r *Redis) Client() redis.UniversalClient { return r.rdb }

// Prefix returns the key prefix.
func (r *Redis) Prefix() string { return r.prefix }

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

// pushBounded adds v to the front of the list at key, keeping the newest
// r.limit entries.
func (r *Redis) pushBounded(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, b)
		p.LTrim(ctx, key, 0, r.limit-1)
		return nil
	})
	return wrap("push", err)
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

// AppendCallTo queues AppendCall's commands on p, for a caller that
// orders them with others of its own.
func (r *Redis) AppendCallTo(ctx context.Context, p redis.Pipeliner, user string, e CallEntry) {
	b, _ := json.Marshal(e)
	key := r.prefix + "calls:" + user
	p.LPush(ctx, key, b)
	p.LTrim(ctx, key, 0, r.limit-1)
}

// AppendCall implements History.
func (r *Redis) AppendCall(ctx context.Context, user string, e CallEntry) error {
	return r.pushBounded(ctx, r.prefix+"calls:"+user, e)
}

// Calls implements History.
func (r *Redis) Calls(ctx context.Context, user string, limit int) ([]CallEntry, error) {
	return newest[CallEntry](ctx, r, r.prefix+"calls:"+user, limit)
}

// AppendAssist implements AssistLog.
func (r *Redis) AppendAssist(ctx context.Context, user string, e AssistEntry) error {
	return r.pushBounded(ctx, r.prefix+"assist:"+user, e)
}

// AssistEntries implements AssistLog.
func (r *Redis) AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error) {
	return newest[AssistEntry](ctx, r, r.prefix+"assist:"+user, limit)
}

// TouchUser implements Users.
func (r *Redis) TouchUser(ctx context.Context, user string) error {
	return wrap("touch user", r.rdb.Set(ctx, r.prefix+"user:"+user, 1, 0).Err())
}

// KnownUser implements Users.
func (r *Redis) KnownUser(ctx context.Context, user string) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.prefix+"user:"+user).Result()
	if err != nil {
		return false, wrap("known user", err)
	}
	return n == 1, nil
}
