package callcore

import (
	"slices"
	"time"
)

// Floor is the push-to-talk floor of a room: one holder at a time, who
// holds it for at most a longest talk time, and a queue of the others who
// asked, served in order. Its members are users; D is only the device type
// of the effects it returns, so that the caller carries them out with the
// rest of the call's.
type Floor[D comparable] struct {
	holder string // "" = free
	queue  []string
	until  time.Time
	gen    uint64 // counts grants: a timer is for one of them
}

// Holder is who holds the floor; "" when it is free.
func (f *Floor[D]) Holder() string { return f.holder }

// Queue is who waits for the floor, first first.
func (f *Floor[D]) Queue() []string { return slices.Clone(f.queue) }

// Left is how long the holder may still talk at now; 0 when free.
func (f *Floor[D]) Left(now time.Time) time.Duration {
	if f.holder == "" {
		return 0
	}
	return max(f.until.Sub(now), 0)
}

// Request asks for the floor for user at now: granted for maxTalk if
// free, otherwise user queues (once). It reports whether the floor or its
// queue changed, which every member is then told, and the timer effects.
func (f *Floor[D]) Request(user string, now time.Time, maxTalk time.Duration) (bool, []Effect[D]) {
	switch {
	case f.holder == "":
		return true, f.grant(user, now, maxTalk)
	case f.holder != user && !slices.Contains(f.queue, user):
		f.queue = append(f.queue, user)
		return true, nil
	}
	return false, nil
}

// Release takes user off the floor (the first in the queue gets it) or out
// of its queue: they let go, or left the room.
func (f *Floor[D]) Release(user string, now time.Time, maxTalk time.Duration) (bool, []Effect[D]) {
	if f.holder != user || user == "" {
		n := len(f.queue)
		f.queue = slices.DeleteFunc(f.queue, func(u string) bool { return u == user })
		return len(f.queue) != n, nil
	}
	effs := []Effect[D]{{Kind: DisarmTimer, Timer: FloorTimer}}
	f.holder, f.until = "", time.Time{}
	if len(f.queue) > 0 {
		next := f.queue[0]
		f.queue = f.queue[1:]
		effs = append(effs, f.grant(next, now, maxTalk)...)
	}
	return true, effs
}

// Timeout is the timer of grant gen: if that grant still holds the floor,
// its holder has talked for maxTalk and the floor passes on.
func (f *Floor[D]) Timeout(gen uint64, now time.Time, maxTalk time.Duration) (bool, []Effect[D]) {
	if gen != f.gen || f.holder == "" {
		return false, nil
	}
	return f.Release(f.holder, now, maxTalk)
}

func (f *Floor[D]) grant(user string, now time.Time, maxTalk time.Duration) []Effect[D] {
	f.gen++
	f.holder, f.until = user, now.Add(maxTalk)
	return []Effect[D]{{Kind: ArmTimer, Timer: FloorTimer, User: user, After: maxTalk, Gen: f.gen}}
}
