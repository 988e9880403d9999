package test

import (
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tunLink makes a shaped point-to-point link of two TUN devices, a and
// b, in the test's namespace (the caller moves one away): what enters one
// leaves the other after shape.Delay, unless dropped (shape.LossPct).
// The devices go when the test ends.
func tunLink(t *testing.T, a, b string, shape linkShape) {
	t.Helper()
	mustBePrivateNetns(t)
	fa, fb := openTUN(t, a), openTUN(t, b)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = fa.Close()
		_ = fb.Close()
		wg.Wait()
	})
	wg.Go(func() { carry(fa, fb, shape) })
	wg.Go(func() { carry(fb, fa, shape) })
}

// openTUN creates a TUN device (IP packets, no header) named name.
func openTUN(t *testing.T, name string) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/net/tun: %v", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		_ = unix.Close(fd)
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		_ = unix.Close(fd)
		t.Fatalf("create TUN device %s: %v", name, err)
	}
	return os.NewFile(uintptr(fd), name)
}

// carry moves packets from src to dst, each after shape.Delay, in order,
// and no faster than shape.RateKbps: a packet leaves the link's queue
// when the one before it has been sent (the queue holds 4096 packets, as
// a home router's buffer does, and drops at its tail).
func carry(src, dst *os.File, shape linkShape) {
	type packet struct {
		b   []byte
		due time.Time
	}
	q := make(chan packet, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range q {
			time.Sleep(time.Until(p.due))
			if _, err := dst.Write(p.b); err != nil && !isTemporary(err) {
				for range q {
				}
				return
			}
		}
	}()
	buf := make([]byte, 65536)
	var free time.Time // when the link has sent what it took so far
	for {
		n, err := src.Read(buf)
		if err != nil {
			close(q)
			<-done
			return
		}
		if shape.LossPct > 0 && rand.Float64()*100 < shape.LossPct {
			continue
		}
		now := time.Now()
		due := now
		if shape.RateKbps > 0 {
			if free.Before(now) {
				free = now
			}
			free = free.Add(time.Duration(n*8) * time.Second / time.Duration(shape.RateKbps*1000))
			due = free
		}
		select {
		case q <- packet{b: append([]byte(nil), buf[:n]...), due: due.Add(shape.Delay)}:
		default: // the link's queue is full: dropped, as a router would
		}
	}
}

// isTemporary: a write to a TUN device whose link is down yet fails, and
// the packet is lost, as on a real link.
func isTemporary(err error) bool {
	return err != nil && !os.IsNotExist(err) && err != os.ErrClosed
}
