// Package loadtest drives a running Tandem node (or another server speaking
// the same protocols) with many clients and reports what it measured. It
// backs the "tandem loadtest" command.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tandemcall/tandem/internal/turncred"
)

// TURNConfig describes a TURN allocation load.
type TURNConfig struct {
	Server      string        // host:port of the TURN server (UDP)
	ClientIP    net.IP        // source address of the clients; nil = loopback of the server's family
	Secret      []byte        // TURN REST secret
	User        string        // user id in the REST usernames
	Allocations int           // allocations to create and hold
	Workers     int           // allocations in flight at once
	Hold        time.Duration // how long to hold them after the last one
	PID         int           // server process whose memory is measured; 0 = none
	Timeout     time.Duration // per request
}

// TURNResult is what a TURN allocation load measured.
type TURNResult struct {
	Allocated       int
	Failed          int
	FirstError      string
	Elapsed         time.Duration // creating all allocations
	PerSecond       float64
	RSSBefore       int64 // server resident memory before, bytes (PID given)
	RSSAfter        int64 // with every allocation held
	RSSPerAlloc     float64
	FDsAfter        int // server open file descriptors with every allocation held
	ClientFDsNeeded int
}

func (r TURNResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "allocations: %d created, %d failed in %s (%.0f/s)\n",
		r.Allocated, r.Failed, r.Elapsed.Round(time.Millisecond), r.PerSecond)
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first error: %s\n", r.FirstError)
	}
	if r.RSSAfter > 0 {
		fmt.Fprintf(&b, "server RSS: %.1f MiB before, %.1f MiB with %d allocations: %.0f bytes per allocation; %d open fds\n",
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.Allocated, r.RSSPerAlloc, r.FDsAfter)
	}
	return b.String()
}

// TURNAllocations creates cfg.Allocations allocations, each from its own
// UDP socket, holds them for cfg.Hold and releases them.
func TURNAllocations(ctx context.Context, cfg TURNConfig) (TURNResult, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	server, err := net.ResolveUDPAddr("udp", cfg.Server)
	if err != nil {
		return TURNResult{}, fmt.Errorf("loadtest: server %q: %w", cfg.Server, err)
	}
	if !server.IP.IsLoopback() {
		return TURNResult{}, fmt.Errorf("loadtest: server %s is not a loopback address; load tests stay on this machine", server)
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = net.IPv4(127, 0, 0, 1)
		if server.IP.To4() == nil {
			cfg.ClientIP = net.IPv6loopback
		}
	}
	res := TURNResult{ClientFDsNeeded: cfg.Allocations}
	if cfg.PID > 0 {
		if res.RSSBefore, err = rss(cfg.PID); err != nil {
			return res, err
		}
	}
	var (
		mu       sync.Mutex
		conns    []net.PacketConn
		next     atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(cfg.Allocations) {
				c, err := allocate(server, cfg)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Allocated, res.Failed = len(conns), int(failed.Load())
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.PerSecond = float64(res.Allocated) / res.Elapsed.Seconds()
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if cfg.PID > 0 {
		time.Sleep(time.Second) // let the server settle
		if res.RSSAfter, err = rss(cfg.PID); err != nil {
			return res, err
		}
		if res.Allocated > 0 {
			res.RSSPerAlloc = float64(res.RSSAfter-res.RSSBefore) / float64(res.Allocated)
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cfg.PID)); err == nil {
			res.FDsAfter = len(ents)
		}
	}
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	return res, ctx.Err()
}

// allocate performs the two-step Allocate of RFC 8656 (401, then with
// long-term credentials) on a fresh socket and returns the socket.
func allocate(server *net.UDPAddr, cfg TURNConfig) (net.PacketConn, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: cfg.ClientIP})
	if err != nil {
		return nil, err
	}
	username, password, _ := turncred.Mint(cfg.Secret, cfg.User, time.Now(), time.Hour)
	first, err := roundTrip(c, server, cfg.Timeout, stun.TransactionID,
		stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedUDP{})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	var realm stun.Realm
	var nonce stun.Nonce
	if err := realm.GetFrom(first); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("loadtest: first Allocate answer has no realm: %w", err)
	}
	if err := nonce.GetFrom(first); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("loadtest: first Allocate answer has no nonce: %w", err)
	}
	resp, err := roundTrip(c, server, cfg.Timeout, stun.TransactionID,
		stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedUDP{},
		stun.NewUsername(username), realm, nonce,
		stun.NewLongTermIntegrity(username, realm.String(), password), stun.Fingerprint)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if resp.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(resp)
		_ = c.Close()
		return nil, fmt.Errorf("loadtest: Allocate refused: %d %s", code.Code, code.Reason)
	}
	return c, nil
}

// requestedUDP is REQUESTED-TRANSPORT: UDP (RFC 8656 §18.11).
type requestedUDP struct{}

func (requestedUDP) AddTo(m *stun.Message) error {
	m.Add(stun.AttrRequestedTransport, []byte{17, 0, 0, 0})
	return nil
}

func roundTrip(c *net.UDPConn, to *net.UDPAddr, timeout time.Duration, setters ...stun.Setter) (*stun.Message, error) {
	req, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if _, err := c.WriteToUDP(req.Raw, to); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(min(time.Until(deadline), 500*time.Millisecond<<attempt)))
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}
				return nil, err
			}
			resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if resp.Decode() != nil || resp.TransactionID != req.TransactionID {
				continue
			}
			return resp, nil
		}
	}
	return nil, fmt.Errorf("loadtest: no answer from %s within %s", to, timeout)
}

// rss returns the resident memory of process pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: server process: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("loadtest: VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("loadtest: no VmRSS in /proc status")
}
