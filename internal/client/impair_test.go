package client

import (
	"net"
	"testing"
	"time"
)

// TestImpairment: over real UDP sockets on loopback, an impaired socket
// loses about the share of datagrams it is set to, each way, and sends
// late by its delay; set back to nothing, it loses and delays nothing.
func TestImpairment(t *testing.T) {
	im := &Impairment{}
	n, err := impairNet(nil, im)
	if err != nil {
		t.Fatal(err)
	}
	a, err := n.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// drain counts what arrives at r until nothing has for 300 ms.
	drain := func(r interface {
		ReadFrom([]byte) (int, net.Addr, error)
		SetReadDeadline(time.Time) error
	}) chan int {
		got := make(chan int, 1)
		go func() {
			n := 0
			buf := make([]byte, 16)
			for {
				_ = r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if _, _, err := r.ReadFrom(buf); err != nil {
					got <- n
					return
				}
				n++
			}
		}()
		return got
	}
	// send sends k datagrams with write, paced so that no socket buffer
	// overflows.
	send := func(k int, write func() error) {
		for i := range k {
			if err := write(); err != nil {
				t.Fatal(err)
			}
			if i%50 == 49 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	// count sends k datagrams from a to b and counts what arrives.
	count := func(k int) int {
		got := drain(b)
		send(k, func() error { _, err := a.WriteTo([]byte("x"), b.LocalAddr()); return err })
		return <-got
	}
	if got := count(500); got != 500 {
		t.Fatalf("unimpaired: %d of 500 arrived", got)
	}
	im.Set(0.3, 0)
	if got := count(2000); got < 1250 || got > 1550 {
		t.Errorf("30%% loss: %d of 2000 arrived, want about 1400", got)
	}
	// Into the impaired socket: lost as it is read.
	got := drain(a)
	send(2000, func() error { _, err := b.WriteTo([]byte("y"), a.LocalAddr()); return err })
	recv := <-got
	if recv < 1250 || recv > 1550 {
		t.Errorf("30%% loss inbound: %d of 2000 read, want about 1400", recv)
	}
	im.Set(0, 150*time.Millisecond)
	start := time.Now()
	if _, err := a.WriteTo([]byte("z"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := b.ReadFrom(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("a datagram delayed 150 ms arrived after %v", d)
	}
	im.Set(0, 0)
	if got := count(500); got != 500 {
		t.Fatalf("impairment lifted: %d of 500 arrived", got)
	}
}
