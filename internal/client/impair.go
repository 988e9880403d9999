package client

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

// Impairment makes a client's link worse on purpose, and can be changed
// while the client runs: a burst of loss and latency on one device's
// link, as a phone walking out of Wi-Fi has. Datagrams of its media are
// lost at random each way with probability Loss, and every datagram and
// every write on its signaling socket leaves Delay late. The kernel here
// has no netem, so the client does it in its sockets. For tests and the
// load tool (Options.Impair).
type Impairment struct {
	mu    sync.Mutex
	loss  float64
	delay time.Duration
}

// Set changes the impairment: loss from 0 to 1, delay from 0.
func (im *Impairment) Set(loss float64, delay time.Duration) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.loss, im.delay = min(max(loss, 0), 1), max(delay, 0)
}

func (im *Impairment) get() (float64, time.Duration) {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.loss, im.delay
}

// drop reports whether this datagram is lost.
func (im *Impairment) drop() bool {
	loss, _ := im.get()
	return lost(loss)
}

func lost(loss float64) bool { return loss > 0 && rand.Float64() < loss }

// impairedNet is a transport.Net whose UDP sockets suffer im.
type impairedNet struct {
	transport.Net
	im *Impairment
}

// impairNet wraps base (nil: the host's network) in im.
func impairNet(base transport.Net, im *Impairment) (transport.Net, error) {
	if base == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		base = n
	}
	return &impairedNet{Net: base, im: im}, nil
}

// ListenUDP implements transport.Net.
func (n *impairedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &impairedUDP{UDPConn: c, im: n.im}, nil
}

// ListenPacket implements transport.Net.
func (n *impairedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &impairedPacket{PacketConn: c, im: n.im}, nil
}

// impairedUDP loses datagrams each way and sends them late.
type impairedUDP struct {
	transport.UDPConn
	im *Impairment
}

func (c *impairedUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	return impairedRead(c.UDPConn.ReadFrom, c.im, b)
}

func (c *impairedUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	return impairedWrite(c.UDPConn.WriteTo, c.im, b, addr)
}

type impairedPacket struct {
	net.PacketConn
	im *Impairment
}

func (c *impairedPacket) ReadFrom(b []byte) (int, net.Addr, error) {
	return impairedRead(c.PacketConn.ReadFrom, c.im, b)
}

func (c *impairedPacket) WriteTo(b []byte, addr net.Addr) (int, error) {
	return impairedWrite(c.PacketConn.WriteTo, c.im, b, addr)
}

func impairedRead(read func([]byte) (int, net.Addr, error), im *Impairment, b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := read(b)
		if err != nil || !im.drop() {
			return n, addr, err
		}
	}
}

// impairedWrite sends b after the delay, on a timer: the writer goes on
// at once, as it would on a link whose far end is further away.
func impairedWrite(write func([]byte, net.Addr) (int, error), im *Impairment, b []byte, addr net.Addr) (int, error) {
	loss, d := im.get() // once per datagram: one lock
	if lost(loss) {
		return len(b), nil
	}
	if d > 0 {
		late := append([]byte(nil), b...)
		time.AfterFunc(d, func() { _, _ = write(late, addr) })
		return len(b), nil
	}
	return write(b, addr)
}

// impairedConn is a signaling socket whose writes leave late (TCP loses
// nothing: its losses are delays).
type impairedConn struct {
	net.Conn
	im *Impairment
}

func (c *impairedConn) Write(b []byte) (int, error) {
	if _, d := c.im.get(); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(b)
}
