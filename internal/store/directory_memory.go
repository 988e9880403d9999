package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

var _ CallDirectory = (*MemoryDirectory)(nil)

// MemoryDirectory is a CallDirectory in this process's memory: for nodes
// that share a process (tests) and for checking the Redis one against.
type MemoryDirectory struct {
	now func() time.Time

	mu        sync.Mutex
	users     map[string]expiring[Home]
	rooms     map[string]expiring[Home]
	snaps     map[string]expiring[CallSnapshot]
	nodeCalls map[string]expiring[[]string]
	claims    map[string]expiring[string]
}

type expiring[T any] struct {
	v     T
	until time.Time
}

// NewMemoryDirectory returns an empty directory whose entries expire by
// now (nil: time.Now).
func NewMemoryDirectory(now func() time.Time) *MemoryDirectory {
	if now == nil {
		now = time.Now
	}
	return &MemoryDirectory{now: now,
		users: map[string]expiring[Home]{}, rooms: map[string]expiring[Home]{},
		snaps: map[string]expiring[CallSnapshot]{}, nodeCalls: map[string]expiring[[]string]{},
		claims: map[string]expiring[string]{}}
}

// get returns m[k] if it has not expired, and drops it if it has.
func get[T any](m map[string]expiring[T], k string, now time.Time) (T, bool) {
	e, ok := m[k]
	if ok && !now.Before(e.until) {
		delete(m, k)
		var zero T
		return zero, false
	}
	return e.v, ok
}

// canceled is ctx's error: a call made after its context ended fails, as
// with Redis.
func canceled(ctx context.Context) error { return ctx.Err() }

// WriteCalls implements CallDirectory.
func (d *MemoryDirectory) WriteCalls(ctx context.Context, node string, c CallChanges) error {
	if err := canceled(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	until := now.Add(DirectoryTTL)
	home := func(m map[string]expiring[Home], h HomeChange) {
		want := Home{Node: node, Call: h.Call}
		if !h.Clear {
			m[h.Key] = expiring[Home]{want, until}
		} else if cur, ok := get(m, h.Key, now); ok && cur == want {
			delete(m, h.Key)
		}
	}
	for _, u := range c.Users {
		home(d.users, u)
	}
	for _, r := range c.Rooms {
		home(d.rooms, r)
	}
	for _, s := range c.Snapshots {
		s.Members = slices.Clone(s.Members)
		d.snaps[s.ID] = expiring[CallSnapshot]{s, until}
		if s.takeable() {
			ids, _ := get(d.nodeCalls, node, now)
			if !slices.Contains(ids, s.ID) {
				ids = append(slices.Clone(ids), s.ID)
			}
			d.nodeCalls[node] = expiring[[]string]{ids, until}
		}
	}
	for _, id := range c.Ended {
		delete(d.snaps, id)
		d.forgetLocked(node, id, now)
	}
	return nil
}

// UserHomes implements CallDirectory.
func (d *MemoryDirectory) UserHomes(ctx context.Context, users ...string) ([]Home, error) {
	if err := canceled(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Home, len(users))
	for i, u := range users {
		out[i], _ = get(d.users, u, d.now())
	}
	return out, nil
}

// RoomHome implements CallDirectory.
func (d *MemoryDirectory) RoomHome(ctx context.Context, name string) (Home, error) {
	if err := canceled(ctx); err != nil {
		return Home{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, _ := get(d.rooms, name, d.now())
	return h, nil
}

// ClaimRoom implements CallDirectory.
func (d *MemoryDirectory) ClaimRoom(ctx context.Context, name, node string, ttl time.Duration, replace bool) (bool, error) {
	if err := canceled(ctx); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if _, exists := get(d.rooms, name, now); exists != replace {
		return false, nil
	}
	d.rooms[name] = expiring[Home]{Home{Node: node}, now.Add(ttl)}
	return true, nil
}

// CallSnapshot implements CallDirectory.
func (d *MemoryDirectory) CallSnapshot(ctx context.Context, id string) (CallSnapshot, bool, error) {
	if err := canceled(ctx); err != nil {
		return CallSnapshot{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := get(d.snaps, id, d.now())
	s.Members = slices.Clone(s.Members)
	return s, ok, nil
}

// NodeCalls implements CallDirectory.
func (d *MemoryDirectory) NodeCalls(ctx context.Context, node string) ([]string, error) {
	if err := canceled(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ids, _ := get(d.nodeCalls, node, d.now())
	return slices.Clone(ids), nil
}

// ClaimCall implements CallDirectory.
func (d *MemoryDirectory) ClaimCall(ctx context.Context, id, node string, ttl time.Duration) (bool, error) {
	if err := canceled(ctx); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if _, taken := get(d.claims, id, now); taken {
		return false, nil
	}
	d.claims[id] = expiring[string]{node, now.Add(ttl)}
	return true, nil
}

// ForgetNodeCall implements CallDirectory.
func (d *MemoryDirectory) ForgetNodeCall(ctx context.Context, node, id string) error {
	if err := canceled(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked(node, id, d.now())
	return nil
}

func (d *MemoryDirectory) forgetLocked(node, id string, now time.Time) {
	e, ok := d.nodeCalls[node]
	if !ok {
		return
	}
	if ids, live := get(d.nodeCalls, node, now); live {
		e.v = slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
		d.nodeCalls[node] = e
	}
}
