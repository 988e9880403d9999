package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A signaling load measures what signaling costs: idle devices held open
// (memory per session), and calls placed and declined as fast as pairs of
// devices can, each caller and callee on different nodes when several are
// given (invites per second, and the time from an invite to the callee's
// device ringing).

// SignalingConfig sets up a signaling load.
type SignalingConfig struct {
	URLs   []string    // signaling URLs (ws://…/ws) of the nodes, on loopback
	Tokens TokenSource // tokens for the load's devices
	// Idle sessions to open and hold; their cost is read from the memory
	// of PID.
	Idle    int
	PID     int
	Hold    time.Duration // how long to hold the idle sessions
	Sources []string      // local addresses to connect from (loopback); more than one beats the port limit
	// Invites to place, by Pairs caller/callee pairs at once, each pair at
	// most 40 a second.
	Invites int
	Pairs   int
	Workers int // idle sessions being opened at once
}

// SignalingResult is what a signaling load measured.
type SignalingResult struct {
	Nodes          int
	Idle           int           // sessions opened and held
	IdleTook       time.Duration // to open them all
	RSSBefore      int64
	RSSAfter       int64
	RSSPerSession  float64
	Invites        int
	InvitesTook    time.Duration
	InvitesPerSec  float64
	RingP50        time.Duration // invite sent → callee's device told
	RingP99        time.Duration
	RingMax        time.Duration
	Failed         int
	FirstFailure   string
	SessionsPerGiB float64
}

func (r SignalingResult) String() string {
	var b strings.Builder
	if r.Idle > 0 {
		fmt.Fprintf(&b, "idle sessions: %d opened in %v", r.Idle, r.IdleTook.Round(time.Millisecond))
		if r.RSSAfter > 0 {
			fmt.Fprintf(&b, "; server RSS %.1f MiB before, %.1f MiB after: %.1f KiB per session, %.0f sessions per GiB",
				float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.RSSPerSession/1024, r.SessionsPerGiB)
		}
		b.WriteString("\n")
	}
	if r.Invites > 0 {
		fmt.Fprintf(&b, "invites: %d on %d node(s) in %v: %.0f/s; invite→ringing p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			r.Invites, r.Nodes, r.InvitesTook.Round(time.Millisecond), r.InvitesPerSec, ms(r.RingP50), ms(r.RingP99), ms(r.RingMax))
	}
	if r.Failed > 0 {
		fmt.Fprintf(&b, "failed: %d (first: %s)\n", r.Failed, r.FirstFailure)
	}
	return b.String()
}

func checkSignalingConfig(cfg *SignalingConfig) error {
	if len(cfg.URLs) == 0 {
		return errors.New("loadtest: signaling: name at least one node URL")
	}
	for _, u := range cfg.URLs {
		if err := checkLoopbackURL(u); err != nil {
			return err
		}
	}
	for _, s := range cfg.Sources {
		if ip := net.ParseIP(s); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("loadtest: source %q is not a loopback address", s)
		}
	}
	switch {
	case cfg.Tokens == nil:
		return errors.New("loadtest: signaling: no token source")
	case cfg.Idle < 0 || cfg.Idle > 200_000:
		return fmt.Errorf("loadtest: --idle %d out of range 0–200000", cfg.Idle)
	case cfg.Invites < 0 || cfg.Invites > 1_000_000:
		return fmt.Errorf("loadtest: --invites %d out of range 0–1000000", cfg.Invites)
	case cfg.Idle == 0 && cfg.Invites == 0:
		return errors.New("loadtest: signaling: ask for --idle sessions, --invites, or both")
	case cfg.Hold > 10*time.Minute:
		return errors.New("loadtest: --hold longer than 10 minutes")
	}
	if cfg.Pairs <= 0 {
		cfg.Pairs = 200
	}
	cfg.Pairs = min(cfg.Pairs, 1000)
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []string{"127.0.0.1"}
	}
	return nil
}

// Signaling runs a signaling load.
func Signaling(ctx context.Context, cfg SignalingConfig) (SignalingResult, error) {
	if err := checkSignalingConfig(&cfg); err != nil {
		return SignalingResult{}, err
	}
	res := SignalingResult{Nodes: len(cfg.URLs)}
	var fails failures
	if cfg.Invites > 0 {
		if err := invites(ctx, cfg, &res, &fails); err != nil {
			return res, err
		}
	}
	if cfg.Idle > 0 {
		if err := idle(ctx, cfg, &res, &fails); err != nil {
			return res, err
		}
	}
	res.Failed, res.FirstFailure = fails.get()
	return res, nil
}

type failures struct {
	n     atomic.Int64
	first atomic.Pointer[string]
}

func (f *failures) add(err error) {
	f.n.Add(1)
	s := err.Error()
	f.first.CompareAndSwap(nil, &s)
}

func (f *failures) get() (int, string) {
	s := ""
	if p := f.first.Load(); p != nil {
		s = *p
	}
	return int(f.n.Load()), s
}

// idle opens cfg.Idle sessions spread over the nodes, holds them, and
// reads the memory they cost the server.
func idle(ctx context.Context, cfg SignalingConfig, res *SignalingResult, fails *failures) error {
	if cfg.PID > 0 {
		var err error
		if res.RSSBefore, err = rss(cfg.PID); err != nil {
			return err
		}
	}
	dialers := make([]*websocket.Dialer, len(cfg.Sources))
	for i, src := range cfg.Sources {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
		dialers[i] = &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second,
			ReadBufferSize: 512, WriteBufferSize: 512}
	}
	conns := make([]*websocket.Conn, cfg.Idle)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Idle || ctx.Err() != nil {
					return
				}
				// Families: four devices per user.
				c, err := openIdle(ctx, dialers[i%len(dialers)], cfg.URLs[i%len(cfg.URLs)], cfg.Tokens,
					fmt.Sprintf("idle%d", i/4), fmt.Sprintf("dev%d", i%4))
				if err != nil {
					fails.add(err)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	res.IdleTook = time.Since(start)
	for _, c := range conns {
		if c != nil {
			res.Idle++
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sleepCtx(ctx, 2*time.Second) // let the server settle
	if cfg.PID > 0 {
		var err error
		if res.RSSAfter, err = rss(cfg.PID); err != nil {
			return err
		}
		if res.Idle > 0 {
			res.RSSPerSession = float64(res.RSSAfter-res.RSSBefore) / float64(res.Idle)
			if res.RSSPerSession > 0 {
				res.SessionsPerGiB = (1 << 30) / res.RSSPerSession
			}
		}
	}
	sleepCtx(ctx, cfg.Hold)
	return nil
}

// openIdle signs one device in and leaves it idle: no reader, so it
// costs this process little.
func openIdle(ctx context.Context, d *websocket.Dialer, url string, tokens TokenSource, user, device string) (*websocket.Conn, error) {
	tok, err := tokens.Token(ctx, user, device)
	if err != nil {
		return nil, err
	}
	c, _, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		return nil, err
	}
	hello, _ := json.Marshal(map[string]any{"type": protocol.TypeHello, "token": tok})
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, hello); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.Contains(string(msg), `"welcome"`) {
		c.Close()
		return nil, fmt.Errorf("loadtest: hello answered with %.200s", msg)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

// invites runs cfg.Pairs caller/callee pairs, the callee on the next node
// after the caller's, until cfg.Invites calls were placed: the callee's
// device declines each as soon as it rings.
func invites(ctx context.Context, cfg SignalingConfig, res *SignalingResult, fails *failures) error {
	type pair struct{ caller, callee *client.Client }
	pairs := make([]pair, cfg.Pairs)
	defer func() {
		for _, p := range pairs {
			if p.caller != nil {
				p.caller.Close()
			}
			if p.callee != nil {
				p.callee.Close()
			}
		}
	}()
	dial := func(node int, user string) (*client.Client, error) {
		tok, err := cfg.Tokens.Token(ctx, user, "phone")
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return client.Dial(dctx, client.Options{URL: cfg.URLs[node%len(cfg.URLs)], Token: tok, LoopbackOnly: true})
	}
	id := runID()
	for i := range pairs {
		var err error
		if pairs[i].callee, err = dial(i+1, fmt.Sprintf("callee%s-%d", id, i)); err != nil {
			return err
		}
		if pairs[i].caller, err = dial(i, fmt.Sprintf("caller%s-%d", id, i)); err != nil {
			return err
		}
	}
	var next atomic.Int64
	lat := make([][]time.Duration, len(pairs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Go(func() {
			// A device may send 50 messages a second (signaling.rate_limit):
			// each pair keeps under it, so load comes from many devices
			// as it does in life.
			pace := time.NewTicker(invitePace)
			defer pace.Stop()
			for next.Add(1) <= int64(cfg.Invites) && ctx.Err() == nil {
				<-pace.C
				d, err := oneInvite(ctx, p.caller, p.callee)
				if err != nil {
					fails.add(err)
					continue
				}
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	res.InvitesTook = time.Since(start)
	all := slices.Concat(lat...)
	res.Invites = len(all)
	if len(all) == 0 {
		return ctx.Err()
	}
	slices.Sort(all)
	res.InvitesPerSec = float64(len(all)) / res.InvitesTook.Seconds()
	res.RingP50 = all[len(all)/2]
	res.RingP99 = all[min(len(all)-1, len(all)*99/100)]
	res.RingMax = all[len(all)-1]
	return nil
}

// invitePace is the least time between two calls of one pair.
const invitePace = 25 * time.Millisecond

// oneInvite places one call, times it to the callee's incoming, has the
// callee decline and waits for the caller to hear it.
func oneInvite(ctx context.Context, caller, callee *client.Client) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	callee.Discard()
	caller.Discard()
	sent := time.Now()
	id, err := caller.Invite(ctx, callee.Welcome().User, false)
	if err != nil {
		return 0, err
	}
	if _, err := client.WaitForType(ctx, callee, func(m *protocol.Incoming) bool { return m.CallID == id }); err != nil {
		return 0, fmt.Errorf("loadtest: the callee never rang: %w", err)
	}
	rang := time.Since(sent)
	if err := callee.Decline(ctx, id); err != nil {
		return 0, err
	}
	if _, err := client.WaitForType(ctx, caller, func(m *protocol.Ended) bool { return m.CallID == id }); err != nil {
		return 0, fmt.Errorf("loadtest: the caller never heard the decline: %w", err)
	}
	return rang, nil
}
