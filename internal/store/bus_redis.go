package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// What the nodes of a deployment share besides calls (internal/cluster
// gives it meaning): a pub/sub channel per node and one to all of them,
// the registry of live nodes and the presence of every signed-in device.
//
// Keys and channels, after the prefix:
//
//	nodes            hash: node id → its registry entry (JSON)
//	presence:<user>  hash: device → where it is signed in (JSON)
//	inbox:<node>     channel: messages to one node
//	all              channel: messages to every node

// Channels of the bus. Nodes name them by these, the store prefixes them.
const (
	// ChannelAll reaches every node.
	ChannelAll = "all"
)

// Inbox is the channel of messages to one node.
func Inbox(node string) string { return "inbox:" + node }

// Message is one message read from the bus.
type Message struct {
	Channel string // as the nodes name it, without the prefix
	Payload []byte
}

// Subscription delivers the messages of the channels subscribed to, in
// the order they were published, until Close.
type Subscription struct {
	ps   *redis.PubSub
	c    chan Message
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// Messages is closed when the subscription is.
func (s *Subscription) Messages() <-chan Message { return s.c }

// Close ends the subscription and waits for its reader.
func (s *Subscription) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.ps.Close()
	})
	s.wg.Wait()
	return err
}

// BusItem is one item of a batch Send writes in order: a message to
// publish, or call history to write (History set), which any node then
// reads before it hears a message sent after it.
type BusItem struct {
	Channel string
	Data    []byte
	History []HistoryWrite
}

// HistoryWrite is a call history entry to add (AppendCall), or to group
// with the user's entries of the last Within (GroupCall) when Within > 0.
type HistoryWrite struct {
	User   string
	Entry  CallEntry
	Within time.Duration
}

// busBuffer is how many messages a subscription holds for a slow reader
// before Redis's client drops the connection.
const busBuffer = 8192

// Subscribe subscribes to channels and returns once Redis confirmed it.
func (r *Redis) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	full := make([]string, len(channels))
	for i, c := range channels {
		full[i] = r.prefix + c
	}
	ps := r.rdb.Subscribe(ctx, full...)
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, wrap("subscribe", err)
	}
	s := &Subscription{ps: ps, c: make(chan Message, 64), done: make(chan struct{})}
	in := ps.Channel(redis.WithChannelSize(busBuffer))
	s.wg.Go(func() {
		defer close(s.c)
		for {
			select {
			case m, ok := <-in:
				if !ok {
					return
				}
				msg := Message{Channel: m.Channel[min(len(r.prefix), len(m.Channel)):], Payload: []byte(m.Payload)}
				select {
				case s.c <- msg:
				case <-s.done:
					return
				}
			case <-s.done:
				return
			}
		}
	})
	return s, nil
}

// Publish publishes data on channel now and returns how many subscribers
// received it.
func (r *Redis) Publish(ctx context.Context, channel string, data []byte) (int64, error) {
	n, err := r.rdb.Publish(ctx, r.prefix+channel, data).Result()
	if err != nil {
		return 0, wrap("publish", err)
	}
	return n, nil
}

// Send writes batch in one round trip, in order.
func (r *Redis) Send(ctx context.Context, batch []BusItem) error {
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, o := range batch {
			for _, h := range o.History {
				if h.Within > 0 {
					r.groupCallTo(ctx, p, h.User, h.Entry, h.Within)
				} else {
					r.appendCallTo(ctx, p, h.User, h.Entry)
				}
			}
			if o.Channel != "" {
				p.Publish(ctx, r.prefix+o.Channel, o.Data)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return wrap("send", err)
	}
	return nil
}

// sharded reports whether Redis is a cluster: there PUBSUB NUMSUB counts
// the subscribers of one shard only.
func (r *Redis) sharded() bool {
	_, ok := r.rdb.(*redis.ClusterClient)
	return ok
}

func (r *Redis) nodesKey() string { return r.prefix + "nodes" }

// Beat writes node's registry entry and reports whether it was there
// before (Redis may have restarted empty, or the others taken the node
// for dead and removed it) and whether the node's inbox has a subscriber
// (always true on a Redis Cluster, which cannot count them).
func (r *Redis) Beat(ctx context.Context, node string, entry []byte) (known, listening bool, err error) {
	var (
		prev *redis.StringCmd
		subs *redis.MapStringIntCmd
	)
	inbox := r.prefix + Inbox(node)
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		prev = p.HGet(ctx, r.nodesKey(), node)
		p.HSet(ctx, r.nodesKey(), node, entry)
		if !r.sharded() {
			subs = p.PubSubNumSub(ctx, inbox)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, false, wrap("beat", err)
	}
	return prev.Err() == nil, subs == nil || subs.Val()[inbox] > 0, nil
}

// Nodes reads the registry: node id → entry. With listeners it also
// counts the subscribers of each node's inbox, if Redis can (nil on a
// Redis Cluster, or with fewer than two nodes).
func (r *Redis) Nodes(ctx context.Context, listeners bool) (map[string][]byte, map[string]int64, error) {
	all, err := r.rdb.HGetAll(ctx, r.nodesKey()).Result()
	if err != nil {
		return nil, nil, wrap("nodes", err)
	}
	out := make(map[string][]byte, len(all))
	for id, v := range all {
		out[id] = []byte(v)
	}
	if !listeners || r.sharded() || len(all) < 2 {
		return out, nil, nil
	}
	chans := make([]string, 0, len(all))
	for id := range all {
		chans = append(chans, r.prefix+Inbox(id))
	}
	got, err := r.rdb.PubSubNumSub(ctx, chans...).Result()
	if err != nil {
		return out, nil, wrap("listeners", err)
	}
	subs := make(map[string]int64, len(got))
	for id := range all {
		subs[id] = got[r.prefix+Inbox(id)]
	}
	return out, subs, nil
}

// ForgetNodes removes nodes from the registry.
func (r *Redis) ForgetNodes(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return wrap("forget nodes", r.rdb.HDel(ctx, r.nodesKey(), ids...).Err())
}

// presenceTTL keeps a user's presence while they sign in now and then.
const presenceTTL = 7 * 24 * time.Hour

func (r *Redis) presenceKey(user string) string { return r.prefix + "presence:" + user }

// SetPresence records where the user's device is signed in.
func (r *Redis) SetPresence(ctx context.Context, user, device string, entry []byte) error {
	key := r.presenceKey(user)
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, device, entry)
		p.Expire(ctx, key, presenceTTL)
		return nil
	})
	return wrap("set presence", err)
}

// clearIf deletes a hash field if it still holds the value given.
const clearIf = `if redis.call("HGET", KEYS[1], ARGV[1]) == ARGV[2] then return redis.call("HDEL", KEYS[1], ARGV[1]) end return 0`

// ClearPresence forgets the device's presence if it is still entry: the
// device may have signed in again elsewhere since.
func (r *Redis) ClearPresence(ctx context.Context, user, device string, entry []byte) error {
	return wrap("clear presence", r.clearIf.Run(ctx, r.rdb, []string{r.presenceKey(user)}, device, string(entry)).Err())
}

// Presence returns the user's devices' presence: device → entry.
func (r *Redis) Presence(ctx context.Context, user string) (map[string][]byte, error) {
	all, err := r.rdb.HGetAll(ctx, r.presenceKey(user)).Result()
	if err != nil {
		return nil, wrap("presence", err)
	}
	out := make(map[string][]byte, len(all))
	for d, v := range all {
		out[d] = []byte(v)
	}
	return out, nil
}
