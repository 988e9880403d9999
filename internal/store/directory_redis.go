package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ CallDirectory = (*Redis)(nil)

// The directory's keys, after the prefix:
//
//	usercall:<user>   "<node> <call>": the call the user is in, and its home
//	room:<name>       "<node> <call>", or "<node> pending" while created
//	call:<id>         the call's snapshot (JSON CallSnapshot)
//	nodecalls:<node>  set: the ids of the takeable calls a node holds
//	claim:<id>        the node taking call id over

func (r *Redis) userCallKey(user string) string { return r.prefix + "usercall:" + user }
func (r *Redis) roomKey(name string) string     { return r.prefix + "room:" + name }
func (r *Redis) snapKey(id string) string       { return r.prefix + "call:" + id }
func (r *Redis) nodeCallsKey(node string) string {
	return r.prefix + "nodecalls:" + node
}
func (r *Redis) claimKey(id string) string { return r.prefix + "claim:" + id }

// pendingRoom stands for the call of a room being created.
const pendingRoom = "pending"

func homeValue(node, call string) string {
	if call == "" {
		call = pendingRoom
	}
	return node + " " + call
}

func parseHome(v string) Home {
	node, call, _ := strings.Cut(v, " ")
	if call == pendingRoom {
		call = ""
	}
	return Home{Node: node, Call: call}
}

// delIf deletes a key if it still holds the value given. It is sent whole
// (EVAL): in a pipeline a cached script's NOSCRIPT cannot fall back.
const delIf = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// WriteCalls implements CallDirectory, in one pipeline (not a
// transaction: in a cluster the keys are in different slots).
func (r *Redis) WriteCalls(ctx context.Context, node string, c CallChanges) error {
	if c.Empty() {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		home := func(key string, h HomeChange) {
			v := homeValue(node, h.Call)
			if h.Clear {
				p.Eval(ctx, delIf, []string{key}, v)
			} else {
				p.Set(ctx, key, v, DirectoryTTL)
			}
		}
		for _, u := range c.Users {
			home(r.userCallKey(u.Key), u)
		}
		for _, rm := range c.Rooms {
			home(r.roomKey(rm.Key), rm)
		}
		for _, s := range c.Snapshots {
			r.saveSnapshot(ctx, p, node, s)
		}
		for _, id := range c.Ended {
			p.Del(ctx, r.snapKey(id))
			p.SRem(ctx, r.nodeCallsKey(node), id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return wrap("write calls", err)
	}
	return nil
}

func (r *Redis) saveSnapshot(ctx context.Context, p redis.Pipeliner, node string, s CallSnapshot) {
	b, _ := json.Marshal(s)
	p.Set(ctx, r.snapKey(s.ID), b, DirectoryTTL)
	if s.takeable() {
		p.SAdd(ctx, r.nodeCallsKey(node), s.ID)
		p.Expire(ctx, r.nodeCallsKey(node), DirectoryTTL)
	}
}

// UserHomes implements CallDirectory.
func (r *Redis) UserHomes(ctx context.Context, users ...string) ([]Home, error) {
	out := make([]Home, len(users))
	if len(users) == 0 {
		return out, nil
	}
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = r.userCallKey(u)
	}
	// One GET each in a pipeline rather than MGET: in a cluster the keys
	// are in different slots.
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap("user homes", err)
	}
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			out[i] = parseHome(v)
		}
	}
	return out, nil
}

// RoomHome implements CallDirectory.
func (r *Redis) RoomHome(ctx context.Context, name string) (Home, error) {
	v, err := r.rdb.Get(ctx, r.roomKey(name)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return Home{}, nil
	case err != nil:
		return Home{}, wrap("room home", err)
	}
	return parseHome(v), nil
}

// ClaimRoom implements CallDirectory.
func (r *Redis) ClaimRoom(ctx context.Context, name, node string, ttl time.Duration, replace bool) (bool, error) {
	v := homeValue(node, "")
	var ok bool
	var err error
	if replace {
		ok, err = r.rdb.SetXX(ctx, r.roomKey(name), v, ttl).Result()
	} else {
		ok, err = r.rdb.SetNX(ctx, r.roomKey(name), v, ttl).Result()
	}
	if err != nil {
		return false, wrap("claim room", err)
	}
	return ok, nil
}

// CallSnapshot implements CallDirectory.
func (r *Redis) CallSnapshot(ctx context.Context, id string) (CallSnapshot, bool, error) {
	raw, err := r.rdb.Get(ctx, r.snapKey(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return CallSnapshot{}, false, nil
	case err != nil:
		return CallSnapshot{}, false, wrap("call snapshot", err)
	}
	var s CallSnapshot
	if json.Unmarshal(raw, &s) != nil {
		return CallSnapshot{}, false, nil // a damaged snapshot is no snapshot
	}
	return s, true, nil
}

// NodeCalls implements CallDirectory.
func (r *Redis) NodeCalls(ctx context.Context, node string) ([]string, error) {
	ids, err := r.rdb.SMembers(ctx, r.nodeCallsKey(node)).Result()
	if err != nil {
		return nil, wrap("node calls", err)
	}
	return ids, nil
}

// ClaimCall implements CallDirectory.
func (r *Redis) ClaimCall(ctx context.Context, id, node string, ttl time.Duration) (bool, error) {
	ok, err := r.rdb.SetNX(ctx, r.claimKey(id), node, ttl).Result()
	if err != nil {
		return false, wrap("claim call", err)
	}
	return ok, nil
}

// ForgetNodeCall implements CallDirectory.
func (r *Redis) ForgetNodeCall(ctx context.Context, node, id string) error {
	return wrap("forget node call", r.rdb.SRem(ctx, r.nodeCallsKey(node), id).Err())
}
