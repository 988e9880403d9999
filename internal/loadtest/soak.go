package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A soak is a busy month of a family server in minutes: simulated people,
// each with several devices spread over the nodes, call each other all the
// time as people do — calls rung on every device and answered on one,
// declined, missed, cancelled, rooms that fill and empty, sockets that drop
// and come back mid-call — bounded in count and time. It checks what a
// person would notice, and what an operator who sleeps through the night
// needs: every call ends, everywhere, for a documented reason; no device is
// left ringing; every answered call is in each member's history exactly
// once; and the servers' goroutines and open files come back to where they
// were once the load stops.

// SoakConfig sets up a soak.
type SoakConfig struct {
	URLs   []string    // signaling URLs (ws://…/ws) of the nodes, on loopback; devices spread over them
	Tokens TokenSource // tokens for the load's devices
	// People and the devices each has online (each device on the next
	// node); defaults 12 and 2.
	People, Devices int
	// Duration bounds the run, Actions the scenarios started (0: no
	// bound but Duration); Rate is scenarios started per second.
	Duration time.Duration
	Actions  int
	Rate     float64
	// Hold is how long an answered call lasts, on average; RingTimeout is
	// the nodes' calls.ring_timeout, after which an unanswered call is
	// missed.
	Hold        time.Duration
	RingTimeout time.Duration
	// Chaos, when set, runs beside the load and breaks things (stops
	// Redis, kills a node) as it likes until ctx ends, saying what it did
	// with c.Note. Requests refused meanwhile as unavailable are retried,
	// as a client does, and counted; the invariants must hold all the
	// same.
	Chaos func(ctx context.Context, c ChaosControl)
	// Progress gets a line every ProgressEvery (nil: none).
	Progress      io.Writer
	ProgressEvery time.Duration
	Seed          uint64
	// EndWait is how long every device may take to hear of a call's end
	// (default 10 s). Under chaos that cuts nodes off from each other
	// (Redis away), make it longer than an outage: what could not reach
	// a device on another node meanwhile reaches it once Redis is back.
	EndWait time.Duration
	// LinkBursts, when set, impairs one device's link at a time, in
	// turn, at random: for a second to four, every LinkBursts, up to
	// 30 % of its media's datagrams are lost each way, and its datagrams
	// and signaling leave up to 300 ms late (client.Impairment). Like
	// Chaos, it may disturb a scenario, which must still end cleanly.
	LinkBursts time.Duration
	// MaxRSSSlope, when set, is the most a node's RSS may grow while
	// loaded, in MiB an hour (SoakResult.RSSSlope); checked on runs of 10
	// minutes or more.
	MaxRSSSlope float64
}

// Scenario kinds of a soak.
const (
	SoakAnswered  = "answered"
	SoakDeclined  = "declined"
	SoakCancelled = "cancelled"
	SoakMissed    = "missed"
	SoakRoom      = "room"
	SoakResumed   = "resumed"  // answered, and a socket drops and comes back mid-call
	SoakAssisted  = "assisted" // answered, and the caller helps the callee: asks to see, is let see and act, and it ends
	SoakTalk      = "talk"     // a push-to-talk room: two ask for the floor at once, one talks, then the other
	SoakHandoff   = "handoff"  // answered, audio both ways, and the callee's other device pulls the call
	SoakListen    = "listen"   // answered, audio both ways, and the callee's other device listens along
	SoakSignOut   = "signout"  // answered, and the answering device signs out mid-call, then in again
	SoakGroup     = "group"    // answered, the caller invites a third person, who answers; the callee leaves, the other two go on
	// SoakBroadcast: one publishes audio into a room over WHIP, two play
	// it over WHEP, and all leave; only with RoomTokens.
	SoakBroadcast = "broadcast"
)

// soakWeights is how often each scenario is picked.
var soakWeights = []struct {
	kind   string
	weight int
}{{SoakAnswered, 35}, {SoakDeclined, 15}, {SoakCancelled, 15}, {SoakMissed, 5}, {SoakRoom, 15}, {SoakResumed, 10}, {SoakAssisted, 10}, {SoakTalk, 8}, {SoakHandoff, 6}, {SoakListen, 6}, {SoakBroadcast, 5}, {SoakSignOut, 5}, {SoakGroup, 6}}

// ChaosControl is what a soak's Chaos tells it.
type ChaosControl struct{ s *soak }

// Note records what the chaos did.
func (c ChaosControl) Note(format string, args ...any) { c.s.note(format, args...) }

// Wiped says the deployment's shared state is gone (Redis came back
// empty): the histories of calls that ended before are lost, by design
// (a production Redis persists what it holds), and are no longer
// expected; any call after must be recorded as ever.
func (c ChaosControl) Wiped() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.finished {
		s.wiped[id] = s.answered[id]
		delete(s.answered, id)
	}
	clear(s.finished)
}

// SoakResult is what a soak saw.
type SoakResult struct {
	Nodes     int
	Took      time.Duration
	Started   int
	Completed map[string]int // scenarios that ran to their end, by kind
	Ends      map[string]int // call ends seen by devices, by reason
	Latency   map[string]Percentiles
	Refused   map[string]int // requests refused as unavailable (and retried), by step
	Disturbed int            // scenarios that could not go their way under chaos, yet ended cleanly
	SignIns   int            // devices that signed in again after their socket dropped (a node killed)
	// MediaCalls are the calls of the media scenarios, MediaPackets the
	// audio packets their devices received, and MediaLoss each call's
	// loss: the share of the packets sent its devices that never came.
	MediaCalls   int
	MediaPackets uint64
	MediaLoss    []float64
	Bursts       int      // link bursts (SoakConfig.LinkBursts)
	Wiped        int      // answered calls whose history Redis lost, coming back empty (not expected)
	Chaos        []string // what the chaos did, when
	// RSSSlope is how fast the fastest-growing node's RSS grew while
	// loaded, in MiB an hour (a least-squares line through the samples
	// after the first fifth of the run, when pools and caches have
	// filled); 0 with too few samples.
	RSSSlope float64
	// Samples are the nodes' resources over the run, Baseline and After
	// before the load and once it stopped.
	Samples   []ResourceSample
	Baseline  []Resources
	After     []Resources
	Violation []string // invariants broken, each saying how
}

// Percentiles of a latency.
type Percentiles struct {
	N             int
	P50, P99, Max time.Duration
}

// Resources are a node's, read from its /metrics.
type Resources struct {
	Goroutines int
	HeapBytes  int64
	RSSBytes   int64
	OpenFDs    int
	// Calls are the calls and rooms the node holds, ringing or answered,
	// and Rooms its SFU rooms: none once the load has stopped.
	Calls, Rooms int
}

// ResourceSample is every node's resources at a moment of the run.
type ResourceSample struct {
	At    time.Duration
	Nodes []Resources
}

// OK reports whether every invariant held.
func (r SoakResult) OK() bool { return len(r.Violation) == 0 }

func (r SoakResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d scenarios started on %d node(s) in %v\n", r.Started, r.Nodes, r.Took.Round(time.Second))
	fmt.Fprintf(&b, "completed: %s\n", countsLine(r.Completed))
	fmt.Fprintf(&b, "call ends seen by devices: %s\n", countsLine(r.Ends))
	for _, c := range r.Chaos {
		fmt.Fprintf(&b, "chaos: %s\n", c)
	}
	if r.Bursts > 0 {
		fmt.Fprintf(&b, "link bursts: %d (one device's link at a time: up to 30%% loss, up to 300 ms late, for 1–4 s)\n", r.Bursts)
	}
	if len(r.Refused) > 0 || r.Disturbed > 0 || r.SignIns > 0 {
		fmt.Fprintf(&b, "refused as unavailable and retried: %s; scenarios disturbed, yet ended cleanly: %d; devices signed in again after their socket dropped: %d\n",
			countsLine(r.Refused), r.Disturbed, r.SignIns)
	}
	if r.Wiped > 0 {
		fmt.Fprintf(&b, "answered calls whose history Redis lost, coming back empty (not expected since): %d\n", r.Wiped)
	}
	if r.MediaCalls > 0 {
		p50, p99, most := lossPercentiles(r.MediaLoss)
		fmt.Fprintf(&b, "media: %d calls and broadcasts with audio, %d packets received; loss per call p50 %.2f%%, p99 %.2f%%, max %.2f%%\n",
			r.MediaCalls, r.MediaPackets, 100*p50, 100*p99, 100*most)
	}
	var kinds []string
	for k := range r.Latency {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		p := r.Latency[k]
		fmt.Fprintf(&b, "%-32s n=%-6d p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", k, p.N, ms(p.P50), ms(p.P99), ms(p.Max))
	}
	for i := range r.Baseline {
		fmt.Fprintf(&b, "node %d: goroutines %d → %d, heap %.1f → %.1f MiB, RSS %.1f → %.1f MiB, open files %d → %d\n", i+1,
			r.Baseline[i].Goroutines, at(r.After, i).Goroutines,
			mib(r.Baseline[i].HeapBytes), mib(at(r.After, i).HeapBytes),
			mib(r.Baseline[i].RSSBytes), mib(at(r.After, i).RSSBytes),
			r.Baseline[i].OpenFDs, at(r.After, i).OpenFDs)
	}
	if len(r.Samples) > 0 {
		peak := Resources{}
		for _, s := range r.Samples {
			for _, n := range s.Nodes {
				peak.Goroutines = max(peak.Goroutines, n.Goroutines)
				peak.RSSBytes = max(peak.RSSBytes, n.RSSBytes)
				peak.OpenFDs = max(peak.OpenFDs, n.OpenFDs)
			}
		}
		fmt.Fprintf(&b, "peak of any node while loaded: goroutines %d, RSS %.1f MiB, open files %d (%d samples); RSS slope %+.1f MiB an hour\n",
			peak.Goroutines, mib(peak.RSSBytes), peak.OpenFDs, len(r.Samples), r.RSSSlope)
	}
	if r.OK() {
		b.WriteString("invariants: all held\n")
	} else {
		fmt.Fprintf(&b, "invariants: %d broken\n", len(r.Violation))
		for _, v := range r.Violation[:min(len(r.Violation), 20)] {
			fmt.Fprintf(&b, "  - %s\n", v)
		}
	}
	return b.String()
}

func at(rs []Resources, i int) Resources {
	if i < len(rs) {
		return rs[i]
	}
	return Resources{}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func countsLine(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// soak is one run's state.
type soak struct {
	cfg    SoakConfig
	people []*person
	start  time.Time

	mu        sync.Mutex
	cond      *sync.Cond
	free      []int // people in no scenario
	calls     map[string]*soakCall
	answered  map[string][]string // answered call → its members
	finished  map[string]bool     // answered calls whose scenario is over
	wiped     map[string][]string // answered calls whose history a wipe took (ChaosControl.Wiped) → members
	completed map[string]int
	ends      map[string]int
	lat       map[string][]time.Duration
	violation []string
	inFlight  int
	started   int
	refused   map[string]int
	disturbed int
	chaos     []string
	signIns   int // devices that signed in again after their socket dropped

	mediaCalls   int
	mediaPackets uint64
	mediaLoss    []float64
	bursts       int       // link bursts
	mediaDevs    []*device // devices whose media runs now
}

// person is one simulated person and their devices.
type person struct {
	user    string
	devices []*device
}

// device is one of a person's devices: a signaling client on a node,
// replaced when its socket drops and it signs in again.
type device struct {
	s      *soak
	user   string
	name   string
	url    string
	urls   []string // where it signs in again: its node first, then the others
	token  string
	c      atomic.Pointer[client.Client]
	reader sync.WaitGroup
	// redial: sign in again when the socket drops (a node killed or
	// gone); off while a scenario drops it on purpose, and at the end.
	redial atomic.Bool
	// im is its link's impairment (SoakConfig.LinkBursts), nil for none.
	im *client.Impairment
}

// soakCall is what the devices saw of one call.
type soakCall struct {
	ringing  map[*device]time.Time // devices ringing, since when
	ended    map[*device]string    // devices told it ended, and why
	accepted map[*device]bool      // devices told it was answered
	resumed  map[*device]bool
	// lost: devices whose session dropped (a node killed) before they
	// heard the call end. A new session is told nothing of a call that
	// ended meanwhile; the app takes a call not resumed at once as ended
	// while it was offline.
	lost map[*device]bool
	// assist is the last assistance state each device heard, floor the
	// last floor state.
	assist map[*device]*protocol.AssistState
	floor  map[*device]*protocol.FloorState
	// handoff is the last handoff message each device heard.
	handoff map[*device]*protocol.Handoff
}

// Soak runs a soak and checks its invariants; the error is for a soak
// that could not run, a broken invariant is in the result.
func Soak(ctx context.Context, cfg SoakConfig) (SoakResult, error) {
	cfg.People = cmpOr(cfg.People, 12)
	cfg.Devices = cmpOr(cfg.Devices, 2)
	cfg.Rate = cmpOrF(cfg.Rate, 5)
	cfg.Hold = cmpOr(cfg.Hold, time.Second)
	cfg.RingTimeout = cmpOr(cfg.RingTimeout, 45*time.Second)
	cfg.ProgressEvery = cmpOr(cfg.ProgressEvery, 5*time.Second)
	cfg.EndWait = cmpOr(cfg.EndWait, 10*time.Second)
	res := SoakResult{Nodes: len(cfg.URLs), Completed: map[string]int{}, Ends: map[string]int{}, Latency: map[string]Percentiles{}, Refused: map[string]int{}}
	if len(cfg.URLs) == 0 || cfg.Tokens == nil || cfg.Duration <= 0 {
		return res, errors.New("loadtest soak: needs node URLs, tokens and a duration")
	}
	if cfg.People < 3 || cfg.People > 10_000 || cfg.Devices > 8 {
		return res, errors.New("loadtest soak: 3 to 10000 people, with at most 8 devices each")
	}
	for _, u := range cfg.URLs {
		if err := checkLoopbackURL(u); err != nil {
			return res, err
		}
	}
	s := &soak{cfg: cfg, calls: map[string]*soakCall{}, answered: map[string][]string{}, finished: map[string]bool{}, wiped: map[string][]string{},
		completed: res.Completed, ends: res.Ends,
		lat: map[string][]time.Duration{}, refused: res.Refused}
	s.cond = sync.NewCond(&s.mu)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))

	var err error
	if res.Baseline, err = s.resources(ctx); err != nil {
		return res, err
	}
	run := fmt.Sprintf("%x", rng.Uint32())
	n := 0
	for i := range cfg.People {
		p := &person{user: fmt.Sprintf("soak-%s-%d", run, i)}
		for d := range cfg.Devices {
			dev := &device{s: s, user: p.user, name: fmt.Sprintf("dev%d", d), url: cfg.URLs[n%len(cfg.URLs)]}
			if cfg.LinkBursts > 0 {
				dev.im = &client.Impairment{}
			}
			for i := range cfg.URLs {
				dev.urls = append(dev.urls, cfg.URLs[(n+i)%len(cfg.URLs)])
			}
			n++
			if dev.token, err = cfg.Tokens.Token(ctx, dev.user, dev.name); err != nil {
				s.closeAll()
				return res, fmt.Errorf("loadtest soak: token: %w", err)
			}
			if err := dev.dial(ctx); err != nil {
				s.closeAll()
				return res, fmt.Errorf("loadtest soak: %w", err)
			}
			p.devices = append(p.devices, dev)
		}
		s.people = append(s.people, p)
		s.free = append(s.free, i)
	}

	s.start = time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		s.sample(runCtx, &res)
	}()
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		if cfg.Chaos != nil {
			cfg.Chaos(runCtx, ChaosControl{s})
		}
	}()
	burstsDone := make(chan struct{})
	go func() {
		defer close(burstsDone)
		if cfg.LinkBursts > 0 {
			s.linkBursts(runCtx, rand.New(rand.NewPCG(cfg.Seed, 0xb0257)))
		}
	}()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
loop:
	for cfg.Actions == 0 || s.startedCount() < cfg.Actions {
		select {
		case <-runCtx.Done():
			break loop
		case <-tick.C:
		}
		// Each kind once first, so that even a short soak has every
		// kind; then at random, by weight.
		kind := pick(rng)
		if n := s.startedCount(); n < len(soakWeights) {
			kind = soakWeights[n].kind
		}
		if _, ok := cfg.Tokens.(RoomTokens); kind == SoakBroadcast && !ok {
			kind = SoakRoom
		}
		need := 2
		if kind == SoakRoom || kind == SoakTalk || kind == SoakBroadcast || kind == SoakGroup {
			need = 3
		}
		ps := s.take(need, rng)
		if ps == nil {
			continue // everyone busy: skip a beat
		}
		seed := rng.Uint64()
		wg.Go(func() {
			defer s.release(ps)
			// A scenario runs to its end even past Duration, bounded by
			// its own timeouts.
			s.run(context.WithoutCancel(ctx), kind, ps, rand.New(rand.NewPCG(seed, seed)))
		})
	}
	tick.Stop()
	cancel()
	<-chaosDone // its damage undone before the stragglers finish
	<-burstsDone
	wg.Wait()
	<-sampleDone
	res.Took = time.Since(s.start)
	res.Started = s.startedCount()

	s.checkCalls()
	s.closeAll()
	res.After = s.settle(ctx, res.Baseline)
	s.checkHistory(ctx)
	for i, b := range res.Baseline {
		a := at(res.After, i)
		if !s.settled(a, b) {
			s.violate("node %d: %d goroutines, %d open files, %.1f MiB of heap, %d calls and %d SFU rooms after the load, against %d goroutines, %d files and %.1f MiB before",
				i+1, a.Goroutines, a.OpenFDs, mib(a.HeapBytes), a.Calls, a.Rooms, b.Goroutines, b.OpenFDs, mib(b.HeapBytes))
		}
	}
	for k, v := range s.lat {
		res.Latency[k] = percentiles(v)
	}
	res.RSSSlope = rssSlope(res.Samples, res.Took)
	if cfg.MaxRSSSlope > 0 && res.Took >= 10*time.Minute && res.RSSSlope > cfg.MaxRSSSlope {
		s.violate("a node's RSS grew %.1f MiB an hour while loaded, over the %.1f allowed", res.RSSSlope, cfg.MaxRSSSlope)
	}
	res.Violation = s.violation
	res.Disturbed = s.disturbed
	res.MediaCalls, res.MediaPackets, res.MediaLoss = s.mediaCalls, s.mediaPackets, s.mediaLoss
	res.Bursts = s.bursts
	res.SignIns = s.signIns
	res.Wiped = len(s.wiped)
	res.Chaos = s.chaos
	return res, nil
}

// rssSlope fits a line through each node's RSS samples after the first
// fifth of the run and returns the steepest, in MiB an hour.
func rssSlope(samples []ResourceSample, took time.Duration) float64 {
	var late []ResourceSample
	for _, sm := range samples {
		if sm.At >= took/5 {
			late = append(late, sm)
		}
	}
	if len(late) < 3 {
		return 0
	}
	steepest := math.Inf(-1)
	for node := range late[0].Nodes {
		var n, sx, sy, sxx, sxy float64
		for _, sm := range late {
			if node >= len(sm.Nodes) {
				continue
			}
			x, y := sm.At.Hours(), mib(sm.Nodes[node].RSSBytes)
			n++
			sx += x
			sy += y
			sxx += x * x
			sxy += x * y
		}
		if d := n*sxx - sx*sx; n >= 3 && d > 0 {
			steepest = max(steepest, (n*sxy-sx*sy)/d)
		}
	}
	if math.IsInf(steepest, -1) {
		return 0
	}
	return steepest
}

// note records what the chaos did.
func (s *soak) note(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs ", time.Since(s.start).Seconds()) + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.chaos = append(s.chaos, line)
	s.mu.Unlock()
	if s.cfg.Progress != nil {
		fmt.Fprintln(s.cfg.Progress, "chaos: "+line)
	}
}

// soakRetry bounds retrying a request refused as unavailable.
const soakRetry = 90 * time.Second

// retry makes a request, and makes it again while a node refuses it as
// unavailable (Redis away, a node going), as a client does, counting the
// refusals.
func (s *soak) retry(ctx context.Context, step string, req func(ctx context.Context) error) error {
	deadline := time.Now().Add(soakRetry)
	for {
		// Each try waits for its reply a while, as an app does.
		tctx, cancel := context.WithTimeout(ctx, soakStep)
		err := req(tctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		why := s.refusal(err)
		if why == "" {
			return err
		}
		s.mu.Lock()
		s.refused[step+why]++
		s.mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	}
}

// refusal says whether err is one a client tries again after: "" for no;
// " (unavailable)" for a node that refused for want of Redis or as it
// drains; " (socket lost)", under chaos, for a socket whose node went
// (the device signs in again by itself, and the request goes on the new
// socket).
func (s *soak) refusal(err error) string {
	switch {
	case err == nil:
		return ""
	case client.IsCode(err, protocol.CodeUnavailable), client.IsCode(err, protocol.CodeShuttingDown):
		return " (unavailable)"
	case s.chaotic() && (errors.Is(err, client.ErrDisconnected) || errors.Is(err, client.ErrClosed)):
		return " (socket lost)"
	case s.chaotic() && errors.Is(err, context.DeadlineExceeded):
		// No reply: under chaos a message can be lost (one a node sent
		// another the moment Redis came back, before the other listened
		// again). An app asks again.
		return " (no reply)"
	case s.chaotic() && client.IsCode(err, protocol.CodeBusy):
		// A call of this person's that a killed node held is still
		// going on elsewhere (taken over, its device not back yet),
		// until the reconnect grace ends it.
		return " (busy)"
	}
	return ""
}

// broke handles a scenario step that failed: without chaos a broken
// invariant; under chaos (a node killed mid-step, say) a disturbed
// scenario, which must still end cleanly: the caller hangs up, and no
// device the call reached may go on ringing for it.
func (s *soak) broke(ctx context.Context, id string, from *device, reached []*device, format string, args ...any) {
	if !s.chaotic() {
		s.violate(format, args...)
		return
	}
	s.disturb()
	err := s.retry(ctx, "hangup", func(ctx context.Context) error { return from.c.Load().Hangup(ctx, id) })
	gone := client.IsCode(err, protocol.CodeNotFound) || client.IsCode(err, protocol.CodeNotInCall)
	if err != nil && !gone {
		s.violate("%s, and under chaos hanging it up failed: %v", fmt.Sprintf(format, args...), err)
		return
	}
	if !s.await(s.cfg.EndWait, func() bool {
		sc := s.call(id)
		for _, d := range reached {
			if _, ringing := sc.ringing[d]; ringing {
				return false
			}
		}
		return true
	}) {
		s.violate("%s, and under chaos a device it reached went on ringing after it was hung up", fmt.Sprintf(format, args...))
	}
}

// chaotic reports whether something breaks things on purpose: Chaos, or
// link bursts.
func (s *soak) chaotic() bool { return s.cfg.Chaos != nil || s.cfg.LinkBursts > 0 }

// linkBursts impairs one device's link at a time, at random, until ctx
// ends (SoakConfig.LinkBursts).
func (s *soak) linkBursts(ctx context.Context, rng *rand.Rand) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.LinkBursts):
		}
		// Half the time a device whose media runs, when one does: the
		// loss shows in its call's figures.
		p := s.people[rng.IntN(len(s.people))]
		d := p.devices[rng.IntN(len(p.devices))]
		s.mu.Lock()
		if len(s.mediaDevs) > 0 && rng.IntN(2) == 0 {
			d = s.mediaDevs[rng.IntN(len(s.mediaDevs))]
		}
		s.mu.Unlock()
		loss := 0.05 + 0.25*rng.Float64()
		delay := time.Duration(50+rng.IntN(250)) * time.Millisecond
		long := time.Second + time.Duration(rng.IntN(3000))*time.Millisecond
		d.im.Set(loss, delay)
		s.mu.Lock()
		s.bursts++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(long):
		}
		d.im.Set(0, 0)
	}
}

// disturb counts a scenario that chaos kept from going its way.
func (s *soak) disturb() {
	s.mu.Lock()
	s.disturbed++
	s.mu.Unlock()
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func cmpOrF(v, def float64) float64 {
	if v <= 0 {
		return def
	}
	return v
}

func pick(rng *rand.Rand) string {
	total := 0
	for _, w := range soakWeights {
		total += w.weight
	}
	n := rng.IntN(total)
	for _, w := range soakWeights {
		if n < w.weight {
			return w.kind
		}
		n -= w.weight
	}
	return SoakAnswered
}

func percentiles(v []time.Duration) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	return Percentiles{N: len(v), P50: quantile(v, 0.5), P99: quantile(v, 0.99), Max: v[len(v)-1]}
}

// quantile is the f quantile of sorted, which is not empty.
func quantile[T any](sorted []T, f float64) T {
	return sorted[min(len(sorted)-1, int(f*float64(len(sorted))))]
}

func (s *soak) startedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// take reserves n free people at random, or returns nil.
func (s *soak) take(n int, rng *rand.Rand) []*person {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) < n {
		return nil
	}
	rng.Shuffle(len(s.free), func(i, j int) { s.free[i], s.free[j] = s.free[j], s.free[i] })
	idx := s.free[:n]
	s.free = slices.Clone(s.free[n:])
	ps := make([]*person, n)
	for i, k := range idx {
		ps[i] = s.people[k]
	}
	s.started++
	s.inFlight++
	return ps
}

func (s *soak) release(ps []*person) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		s.free = append(s.free, slices.IndexFunc(s.people, func(q *person) bool { return q == p }))
	}
	s.inFlight--
}

func (s *soak) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violation = append(s.violation, fmt.Sprintf(format, args...))
}

func (s *soak) latency(kind string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[kind] = append(s.lat[kind], d)
}

// dial signs the device in on its node (or, while that is down, the
// next) and starts reading its messages.
func (d *device) dial(ctx context.Context) error {
	var c *client.Client
	var err error
	for _, u := range d.urls {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err = client.Dial(dctx, client.Options{URL: u, Token: d.token, LoopbackOnly: true, Impair: d.im})
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s/%s: %w", d.user, d.name, err)
	}
	d.c.Store(c)
	d.redial.Store(true)
	d.reader.Go(func() {
		for c != nil {
			d.read(c)
			c = d.signInAgain()
		}
	})
	return nil
}

// signInAgain signs the device in again after its socket dropped, on its
// node or, while that is down, another, as an app does; nil when it is
// not to (redial off) or cannot within soakRetry (a broken invariant).
func (d *device) signInAgain() *client.Client {
	s := d.s
	deadline := time.Now().Add(soakRetry)
	for i := 0; d.redial.Load(); i++ {
		if time.Now().After(deadline) {
			s.violate("%s/%s could not sign in again within %v", d.user, d.name, soakRetry)
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := client.Dial(ctx, client.Options{URL: d.urls[i%len(d.urls)], Token: d.token, LoopbackOnly: true, Impair: d.im})
		cancel()
		if err != nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		d.c.Store(c)
		if !d.redial.Load() {
			_ = c.Close() // the run ended meanwhile: closeAll may have missed it
		}
		// A new session knows only what the server tells it now: a call
		// still ringing rings again.
		s.mu.Lock()
		for _, sc := range s.calls {
			delete(sc.ringing, d)
			if _, ok := sc.ended[d]; !ok {
				sc.lost[d] = true
			}
		}
		s.signIns++
		s.mu.Unlock()
		return c
	}
	return nil
}

// read records what the server tells c about calls, until c closes.
func (d *device) read(c *client.Client) {
	s := d.s
	for {
		m, err := c.Next(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		s.mu.Lock()
		switch m := m.(type) {
		case *protocol.Incoming:
			// A device that signed in again and is rung anew for a call
			// (ringLate) is in it again: it must hear it end.
			sc := s.call(m.CallID)
			sc.ringing[d] = now
			delete(sc.lost, d)
		case *protocol.Accepted:
			s.call(m.CallID).accepted[d] = true
		case *protocol.Ended:
			sc := s.call(m.CallID)
			delete(sc.ringing, d)
			sc.ended[d] = m.Reason
			s.ends[m.Reason]++
		case *protocol.Resumed:
			sc := s.call(m.CallID)
			sc.resumed[d] = true
			delete(sc.lost, d)
		case *protocol.AssistState:
			s.call(m.CallID).assist[d] = m
		case *protocol.FloorState:
			s.call(m.CallID).floor[d] = m
		case *protocol.Handoff:
			s.call(m.CallID).handoff[d] = m
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// call is what was seen of callID; s.mu is held.
func (s *soak) call(callID string) *soakCall {
	sc := s.calls[callID]
	if sc == nil {
		sc = &soakCall{ringing: map[*device]time.Time{}, ended: map[*device]string{}, accepted: map[*device]bool{}, resumed: map[*device]bool{}, lost: map[*device]bool{},
			assist: map[*device]*protocol.AssistState{}, floor: map[*device]*protocol.FloorState{}, handoff: map[*device]*protocol.Handoff{}}
		s.calls[callID] = sc
	}
	return sc
}

// allRing is, for await, whether every device in ds rings for call id.
func (s *soak) allRing(id string, ds []*device) func() bool {
	return func() bool {
		sc := s.call(id)
		for _, d := range ds {
			if _, ok := sc.ringing[d]; !ok {
				return false
			}
		}
		return true
	}
}

// answeredElsewhere is, for await, whether every device in ds heard call
// id answered on another device (or lost its session meanwhile).
func (s *soak) answeredElsewhere(id string, ds []*device) func() bool {
	return func() bool {
		sc := s.call(id)
		for _, d := range ds {
			if sc.ended[d] != protocol.ReasonAnsweredElsewhere && !sc.lost[d] {
				return false
			}
		}
		return true
	}
}

// await waits until ok holds (checked under s.mu) or d passes.
func (s *soak) await(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		s.cond.Wait()
	}
	return true
}

// Limits of a scenario's steps.
const (
	soakStep = 10 * time.Second // a reply or event
)

// run runs one scenario between ps.
func (s *soak) run(ctx context.Context, kind string, ps []*person, rng *rand.Rand) {
	caller, callee := ps[0], ps[1]
	from := caller.devices[rng.IntN(len(caller.devices))]
	if kind == SoakRoom || kind == SoakTalk {
		s.room(ctx, kind, ps, rng)
		return
	}
	if kind == SoakBroadcast {
		s.broadcast(ctx, ps, s.cfg.Tokens.(RoomTokens), rng)
		return
	}
	sent := time.Now()
	ictx, cancel := context.WithTimeout(ctx, soakStep)
	id, err := from.c.Load().Invite(ictx, callee.user, false)
	cancel()
	if why := s.refusal(err); why != "" {
		// Refused at once (or the socket went with its node): no call
		// began, or one nobody answers rings out. A person tries again
		// later.
		s.mu.Lock()
		s.refused["invite"+why]++
		s.mu.Unlock()
		s.disturb()
		return
	}
	if err != nil {
		s.violate("%s: invite %s → %s: %v", kind, caller.user, callee.user, err)
		return
	}
	s.latency("invite → ack", time.Since(sent))
	defer s.retire(id)
	everyone := append([]*device{from}, callee.devices...) // the devices the call reaches
	// Every device of the callee rings.
	if !s.await(soakStep, s.allRing(id, callee.devices)) {
		s.broke(ctx, id, from, everyone, "%s %s: not every device of %s rang", kind, id, callee.user)
		return
	}
	s.mu.Lock()
	for _, t := range s.call(id).ringing {
		s.lat["invite → ringing"] = append(s.lat["invite → ringing"], t.Sub(sent))
	}
	s.mu.Unlock()
	answerer := callee.devices[rng.IntN(len(callee.devices))]
	switch kind {
	case SoakDeclined:
		if err := s.retry(ctx, "decline", func(ctx context.Context) error { return answerer.c.Load().Decline(ctx, id) }); err != nil {
			s.broke(ctx, id, from, everyone, "%s %s: decline: %v", kind, id, err)
			return
		}
		s.ended(kind, id, everyone, protocol.ReasonDeclined)
	case SoakCancelled:
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if err := s.retry(ctx, "cancel", func(ctx context.Context) error { return from.c.Load().Hangup(ctx, id) }); err != nil {
			s.broke(ctx, id, from, everyone, "%s %s: cancel: %v", kind, id, err)
			return
		}
		s.ended(kind, id, everyone, protocol.ReasonCancelled)
	case SoakMissed:
		if !s.await(s.cfg.RingTimeout+s.cfg.EndWait, func() bool { return len(s.call(id).ended) >= len(everyone) }) {
			s.broke(ctx, id, from, everyone, "%s %s: not ended %v after the ring timeout", kind, id, s.cfg.RingTimeout+s.cfg.EndWait)
			return
		}
		s.ended(kind, id, everyone, protocol.ReasonNoAnswer)
	case SoakAnswered, SoakResumed, SoakAssisted, SoakHandoff, SoakListen, SoakSignOut, SoakGroup:
		sent := time.Now()
		if err := s.retry(ctx, "accept", func(ctx context.Context) error { return answerer.c.Load().Accept(ctx, id, false) }); err != nil {
			s.broke(ctx, id, from, everyone, "%s %s: accept: %v", kind, id, err)
			return
		}
		if !s.await(soakStep, func() bool { return s.call(id).accepted[from] }) {
			s.broke(ctx, id, from, everyone, "%s %s: the caller never heard the answer", kind, id)
			return
		}
		s.latency("accept → accepted", time.Since(sent))
		s.mu.Lock()
		s.answered[id] = []string{caller.user, callee.user}
		delete(s.call(id).ringing, answerer) // answered: it rings no more
		s.mu.Unlock()
		// The callee's other devices stop ringing.
		var others []*device
		for _, d := range callee.devices {
			if d != answerer {
				others = append(others, d)
			}
		}
		if !s.await(s.cfg.EndWait, s.answeredElsewhere(id, others)) {
			s.violate("%s %s: a device of %s kept ringing after the answer", kind, id, callee.user)
		}
		if kind == SoakAssisted && !s.assist(ctx, id, from, answerer, callee.user, everyone, rng) {
			return
		}
		legs := []*device{from, answerer}
		if kind == SoakGroup && len(ps) > 2 {
			leg, ok := s.group(ctx, id, from, answerer, ps[2], everyone, rng)
			if !ok {
				return
			}
			answerer, legs = leg, []*device{from, leg}
		}
		if (kind == SoakHandoff || kind == SoakListen) && len(others) > 0 {
			mc := &mediaCall{s: s, id: id}
			defer mc.close() // once the call ended everywhere
			leg, ls, ok := s.media(ctx, kind, id, from, answerer, others[0], everyone, mc)
			if !ok {
				return
			}
			answerer, legs = leg, ls
		}
		hold := time.Duration(float64(s.cfg.Hold) * (0.5 + rng.Float64()))
		if kind == SoakSignOut {
			// The answering device signs out mid-call (its socket closes
			// cleanly): the call ends for the caller at once, and the
			// device signs in again later.
			time.Sleep(hold / 2)
			answerer.redial.Store(false)
			_ = answerer.c.Load().Close()
			answerer.reader.Wait()
			s.mu.Lock()
			s.call(id).lost[answerer] = true // it hears nothing more of the call
			s.mu.Unlock()
			s.ended(kind, id, []*device{from}, protocol.ReasonConnectionLost)
			if err := s.retry(ctx, "sign-in", func(ctx context.Context) error { return answerer.dial(ctx) }); err != nil {
				s.violate("%s %s: signing in again: %v", kind, id, err)
			}
			return
		}
		if kind == SoakResumed {
			// The answering device's socket drops mid-call; it signs in
			// again and takes its call back.
			time.Sleep(hold / 2)
			answerer.redial.Store(false)
			answerer.c.Load().Drop()
			answerer.reader.Wait()
			if err := s.retry(ctx, "sign-in", func(ctx context.Context) error { return answerer.dial(ctx) }); err != nil {
				s.violate("%s %s: signing in again: %v", kind, id, err)
				return
			}
			if !s.await(soakStep, func() bool { return s.call(id).resumed[answerer] }) {
				s.mu.Lock()
				gone := len(s.call(id).ended) > 0 // a node killed meanwhile, say
				s.mu.Unlock()
				if gone {
					s.broke(ctx, id, from, everyone, "%s %s: the call ended before it could resume", kind, id)
					return
				}
				s.violate("%s %s: the call did not resume on the new socket", kind, id)
				return
			}
			hold /= 2
		}
		time.Sleep(hold)
		by, other := from, answerer
		if rng.IntN(2) == 0 {
			by, other = answerer, from
		}
		sent = time.Now()
		if err := s.retry(ctx, "hangup", func(ctx context.Context) error { return by.c.Load().Hangup(ctx, id) }); err != nil {
			s.broke(ctx, id, from, everyone, "%s %s: hangup: %v", kind, id, err)
			return
		}
		if s.await(s.cfg.EndWait, func() bool { _, ok := s.call(id).ended[other]; return ok }) {
			s.latency("hangup → ended", time.Since(sent))
		}
		s.ended(kind, id, legs, protocol.ReasonCompleted)
		if kind == SoakAssisted {
			s.assistOver(id, legs)
		}
	}
}

// group grows call id, answered on answerer, into a group call: from
// invites third, whose devices all ring and who answers on one; then the
// callee leaves, hearing it end (completed), and the caller and third go
// on. It returns third's device in the call, and whether it goes on.
func (s *soak) group(ctx context.Context, id string, from, answerer *device, third *person, reached []*device, rng *rand.Rand) (*device, bool) {
	reached = append(slices.Clone(reached), third.devices...)
	brk := func(format string, args ...any) (*device, bool) {
		s.broke(ctx, id, from, reached, "group %s: "+format, append([]any{id}, args...)...)
		return nil, false
	}
	sent := time.Now()
	ictx, cancel := context.WithTimeout(ctx, soakStep)
	_, err := from.c.Load().Request(ictx, protocol.TypeInvite, &protocol.Invite{To: third.user, CallID: id})
	cancel()
	if err != nil {
		return brk("inviting %s: %v", third.user, err)
	}
	if !s.await(soakStep, s.allRing(id, third.devices)) {
		return brk("not every device of %s rang", third.user)
	}
	s.latency("group invite → ringing", time.Since(sent))
	joiner := third.devices[rng.IntN(len(third.devices))]
	if err := s.retry(ctx, "accept", func(ctx context.Context) error { return joiner.c.Load().Accept(ctx, id, false) }); err != nil {
		return brk("%s accepting: %v", third.user, err)
	}
	s.mu.Lock()
	s.answered[id] = append(s.answered[id], third.user)
	delete(s.call(id).ringing, joiner)
	s.mu.Unlock()
	others := slices.DeleteFunc(slices.Clone(third.devices), func(d *device) bool { return d == joiner })
	if !s.await(s.cfg.EndWait, s.answeredElsewhere(id, others)) {
		s.violate("group %s: a device of %s kept ringing after the answer", id, third.user)
	}
	time.Sleep(time.Duration(float64(s.cfg.Hold) * rng.Float64() / 2))
	// The callee leaves; the call goes on between the other two.
	if err := s.retry(ctx, "hangup", func(ctx context.Context) error { return answerer.c.Load().Hangup(ctx, id) }); err != nil {
		return brk("the callee leaving: %v", err)
	}
	if !s.await(s.cfg.EndWait, func() bool { _, ok := s.call(id).ended[answerer]; return ok }) {
		return brk("the callee never heard it leave")
	}
	s.mu.Lock()
	_, over := s.call(id).ended[from]
	s.mu.Unlock()
	if over {
		if s.chaotic() {
			s.disturb() // ended by the chaos meanwhile, say its node gone for good
			return nil, false
		}
		s.violate("group %s: the call ended for the caller when one of three left", id)
		return nil, false
	}
	return joiner, true
}

// assist has helper, the caller's device, help the callee on helped: it
// asks to see, the callee lets it see and act, and then the callee takes
// the grants back, or the helper ends the assistance, or neither and the
// call's end must end it. It reports whether the call goes on.
func (s *soak) assist(ctx context.Context, id string, helper, helped *device, helpedUser string, reached []*device, rng *rand.Rand) bool {
	heard := func(d *device, ok func(a *protocol.AssistState) bool) func() bool {
		return func() bool { a := s.call(id).assist[d]; return a != nil && ok(a) }
	}
	sent := time.Now()
	if err := s.retry(ctx, "assist", func(ctx context.Context) error {
		return helper.c.Load().Assist(ctx, id, helpedUser, protocol.AssistView)
	}); err != nil {
		s.broke(ctx, id, helper, reached, "assisted %s: asking to help: %v", id, err)
		return false
	}
	if !s.await(soakStep, heard(helped, func(a *protocol.AssistState) bool {
		return a.Active && slices.Contains(a.Requested, protocol.AssistView)
	})) {
		s.broke(ctx, id, helper, reached, "assisted %s: the helped device was never asked", id)
		return false
	}
	s.latency("assist → asked", time.Since(sent))
	sent = time.Now()
	if err := s.retry(ctx, "assist_grant", func(ctx context.Context) error {
		return helped.c.Load().AssistGrant(ctx, id, protocol.AssistView, protocol.AssistControl)
	}); err != nil {
		s.broke(ctx, id, helper, reached, "assisted %s: granting: %v", id, err)
		return false
	}
	if !s.await(soakStep, heard(helper, func(a *protocol.AssistState) bool {
		return a.Active && slices.Contains(a.Granted, protocol.AssistControl)
	})) {
		s.broke(ctx, id, helper, reached, "assisted %s: the helper never heard the grants", id)
		return false
	}
	s.latency("grant → granted", time.Since(sent))
	switch rng.IntN(3) {
	case 0: // taken back
		if err := s.retry(ctx, "assist_grant", func(ctx context.Context) error { return helped.c.Load().AssistGrant(ctx, id) }); err != nil {
			s.broke(ctx, id, helper, reached, "assisted %s: taking the grants back: %v", id, err)
			return false
		}
		if !s.await(soakStep, heard(helper, func(a *protocol.AssistState) bool { return len(a.Granted) == 0 })) {
			s.broke(ctx, id, helper, reached, "assisted %s: the helper kept its grants after they were taken back", id)
			return false
		}
	case 1: // ended by the helper
		if err := s.retry(ctx, "assist_end", func(ctx context.Context) error { return helper.c.Load().AssistEnd(ctx, id) }); err != nil {
			s.broke(ctx, id, helper, reached, "assisted %s: ending the assistance: %v", id, err)
			return false
		}
		if !s.await(soakStep, heard(helped, func(a *protocol.AssistState) bool { return !a.Active })) {
			s.broke(ctx, id, helper, reached, "assisted %s: the helped device never heard the assistance end", id)
			return false
		}
	}
	return true
}

// assistOver checks, once an assisted call has ended, that no leg last
// heard its assistance running: no grant outlives its call.
func (s *soak) assistOver(id string, legs []*device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.call(id)
	for _, d := range legs {
		if a := sc.assist[d]; a != nil && a.Active && !sc.lost[d] {
			s.violation = append(s.violation, fmt.Sprintf("assisted %s: %s/%s last heard the assistance running (granted %v) after the call ended", id, d.user, d.name, a.Granted))
		}
	}
}

// ended waits until every device in ds heard call id end and checks the
// reason the legs and ringing devices heard; then the scenario counts as
// completed.
func (s *soak) ended(kind, id string, ds []*device, want string) {
	if !s.await(s.cfg.EndWait, func() bool {
		sc := s.call(id)
		for _, d := range ds {
			if _, ok := sc.ended[d]; !ok && !sc.lost[d] {
				return false
			}
		}
		return true
	}) {
		s.mu.Lock()
		sc := s.call(id)
		var missing []string
		for _, d := range ds {
			if _, ok := sc.ended[d]; !ok && !sc.lost[d] {
				missing = append(missing, d.user+"/"+d.name)
			}
		}
		s.mu.Unlock()
		s.violate("%s %s: %v never heard it end", kind, id, missing)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.call(id)
	for _, d := range ds {
		got, heard := sc.ended[d]
		if !heard {
			continue // lost its session meanwhile (chaos)
		}
		ok := got == want || want == protocol.ReasonDeclined && got == protocol.ReasonDeclinedElsewhere ||
			// A device aside in a call taken over from a node that went
			// (listening along) hears its part end as failed.
			s.chaotic() && got == protocol.ReasonFailed
		if !ok {
			s.violation = append(s.violation, fmt.Sprintf("%s %s: %s/%s heard it end with %q, want %q", kind, id, d.user, d.name, got, want))
		}
	}
	s.completed[kind]++
}

// room has ps join a room one after another, on one device each, and
// leave it again; each hears the others come and go. A push-to-talk room
// (kind SoakTalk) passes the floor around meanwhile (talk).
func (s *soak) room(ctx context.Context, kind string, ps []*person, rng *rand.Rand) {
	name := fmt.Sprintf("room-%x", rng.Uint32())
	mode := ""
	if kind == SoakTalk {
		mode = protocol.ModePTT
	}
	var id string
	var in []*device
	for _, p := range ps {
		d := p.devices[rng.IntN(len(p.devices))]
		sent := time.Now()
		var ack *protocol.Ack
		err := s.retry(ctx, "join", func(ctx context.Context) error {
			var err error
			ack, err = d.c.Load().Request(ctx, protocol.TypeJoin, &protocol.Join{Room: name, Mode: mode})
			return err
		})
		if err != nil {
			s.violate("room %s: %s joining: %v", name, p.user, err)
			break
		}
		s.latency("join → ack", time.Since(sent))
		id = ack.CallID
		in = append(in, d)
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
	}
	if kind == SoakTalk && len(in) == len(ps) {
		s.talk(ctx, id, in)
	} else {
		time.Sleep(time.Duration(float64(s.cfg.Hold) * rng.Float64()))
	}
	for _, d := range in {
		err := s.retry(ctx, "leave", func(ctx context.Context) error { return d.c.Load().Hangup(ctx, id) })
		if s.chaotic() && (client.IsCode(err, protocol.CodeNotInCall) || client.IsCode(err, protocol.CodeNotFound)) {
			// Out already: a leave whose reply went with a killed node's
			// socket, asked again, or a place the grace window ended.
			s.disturb()
			continue
		}
		if err != nil {
			s.violate("room %s: %s leaving: %v", name, d.user, err)
		}
	}
	if id != "" && len(in) == len(ps) {
		s.ended(kind, id, in, protocol.ReasonCompleted)
	}
	if id != "" {
		s.retire(id)
	}
}

// talk passes a push-to-talk room's floor: the first two members ask for
// it at once; every member hears the first hold it with the second
// queued, then, when the first lets go, the second hold it, and then
// nobody. Under chaos a step that fails leaves the room to its leaving.
func (s *soak) talk(ctx context.Context, id string, in []*device) {
	everyone := func(ok func(f *protocol.FloorState) bool) func() bool {
		return func() bool {
			sc := s.call(id)
			for _, d := range in {
				if f := sc.floor[d]; !sc.lost[d] && (f == nil || !ok(f)) {
					return false
				}
			}
			return true
		}
	}
	first, second := in[0], in[1]
	sent := time.Now()
	for _, d := range []*device{first, second} {
		if err := s.retry(ctx, "floor", func(ctx context.Context) error {
			_, err := d.c.Load().Request(ctx, protocol.TypeFloor, &protocol.Floor{CallID: id, Action: protocol.FloorRequest})
			return err
		}); err != nil {
			s.talkBroke(id, "%s asking for the floor: %v", d.user, err)
			return
		}
	}
	if !s.await(soakStep, everyone(func(f *protocol.FloorState) bool {
		return f.Holder == first.user && slices.Equal(f.Queue, []string{second.user})
	})) {
		s.talkBroke(id, "not every member heard %s hold the floor with %s waiting", first.user, second.user)
		return
	}
	s.latency("floor request → everyone told", time.Since(sent))
	time.Sleep(s.cfg.Hold / 2)
	for i, d := range []*device{first, second} {
		sent = time.Now()
		if err := s.retry(ctx, "floor", func(ctx context.Context) error {
			_, err := d.c.Load().Request(ctx, protocol.TypeFloor, &protocol.Floor{CallID: id, Action: protocol.FloorRelease})
			return err
		}); err != nil {
			s.talkBroke(id, "%s letting go of the floor: %v", d.user, err)
			return
		}
		next := ""
		if i == 0 {
			next = second.user
		}
		if !s.await(soakStep, everyone(func(f *protocol.FloorState) bool { return f.Holder == next && len(f.Queue) == 0 })) {
			s.talkBroke(id, "when %s let go, not every member heard the floor pass to %q", d.user, next)
			return
		}
		s.latency("floor release → everyone told", time.Since(sent))
	}
}

// talkBroke is a push-to-talk step that failed: a broken invariant,
// unless chaos disturbed it.
func (s *soak) talkBroke(id, format string, args ...any) {
	if s.chaotic() {
		s.disturb()
		return
	}
	s.violate("talk %s: "+format, append([]any{id}, args...)...)
}

// retire checks, once a scenario is over, that no device still rings for
// its call, and forgets the call: a long soak keeps only what its final
// checks need.
func (s *soak) retire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.answered[id]; ok {
		s.finished[id] = true
	}
	if sc := s.calls[id]; sc != nil && len(sc.ended) > 0 {
		for d := range sc.ringing {
			s.violation = append(s.violation, fmt.Sprintf("call %s ended, but %s/%s is still ringing", id, d.user, d.name))
		}
	}
	delete(s.calls, id)
}

// checkCalls finds devices still ringing for calls that ended, or never
// told a call ended.
func (s *soak) checkCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sc := range s.calls {
		if len(sc.ended) == 0 {
			continue // a call no scenario saw end failed its scenario already
		}
		for d := range sc.ringing {
			s.violation = append(s.violation, fmt.Sprintf("call %s ended, but %s/%s is still ringing", id, d.user, d.name))
		}
	}
}

// checkHistory reads every person's history: each answered call is in
// each member's exactly once.
func (s *soak) checkHistory(ctx context.Context) {
	s.mu.Lock()
	answered := maps.Clone(s.answered)
	wiped := maps.Clone(s.wiped)
	s.mu.Unlock()
	// A write Redis refused during an outage arrives once it is back, a
	// few seconds late: the histories are read again for a while before
	// an entry counts as lost.
	var wrong []string
	for deadline := time.Now().Add(historySettle); ; time.Sleep(time.Second) {
		wrong = wrong[:0]
		for _, p := range s.people {
			entries, err := s.history(ctx, p)
			if err != nil {
				wrong = append(wrong, fmt.Sprintf("history of %s: %v", p.user, err))
				continue
			}
			count := map[string]int{}
			for _, e := range entries {
				count[e]++
			}
			for id, members := range answered {
				if slices.Contains(members, p.user) && count[id] != 1 {
					wrong = append(wrong, fmt.Sprintf("answered call %s is in %s's history %d times, want once", id, p.user, count[id]))
				}
			}
			for id, members := range wiped {
				if slices.Contains(members, p.user) && count[id] > 1 {
					wrong = append(wrong, fmt.Sprintf("answered call %s (before Redis came back empty) is in %s's history %d times", id, p.user, count[id]))
				}
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range wrong {
		s.violate("%s (after %v)", w, historySettle)
	}
}

// historySettle is how long the histories may take to show every
// answered call once the load stopped.
const historySettle = 30 * time.Second

// history lists the call ids in p's history, over the HTTP API of the
// node p's first device is on.
func (s *soak) history(ctx context.Context, p *person) ([]string, error) {
	d := p.devices[0]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpBase(d.url)+"/api/v1/calls?limit=1000", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var out struct {
		Calls []struct {
			CallID string `json:"call_id"`
		} `json:"calls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	ids := make([]string, len(out.Calls))
	for i, c := range out.Calls {
		ids[i] = c.CallID
	}
	return ids, nil
}

// soakHTTP reads history and metrics on a connection per request: a
// connection kept open would be counted among the node's open files.
var soakHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// httpBase turns a node's ws://host/ws into http://host.
func httpBase(wsURL string) string {
	u := strings.TrimSuffix(wsURL, "/ws")
	u = strings.Replace(u, "wss://", "https://", 1)
	return strings.Replace(u, "ws://", "http://", 1)
}

func (s *soak) closeAll() {
	for _, p := range s.people {
		for _, d := range p.devices {
			d.redial.Store(false)
			if c := d.c.Load(); c != nil {
				_ = c.Close()
			}
			d.reader.Wait()
		}
	}
}

// sample reads the nodes' resources every ProgressEvery until ctx ends,
// writing a progress line each time.
func (s *soak) sample(ctx context.Context, res *SoakResult) {
	t := time.NewTicker(s.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rs, err := s.resources(ctx)
		if err != nil {
			continue
		}
		at := time.Since(s.start)
		res.Samples = append(res.Samples, ResourceSample{At: at, Nodes: rs})
		if s.cfg.Progress != nil {
			s.mu.Lock()
			line := fmt.Sprintf("%6.0fs  started %d, in flight %d, completed %s", at.Seconds(), s.started, s.inFlight, countsLine(s.completed))
			broken := len(s.violation)
			s.mu.Unlock()
			for i, r := range rs {
				line += fmt.Sprintf(" | node %d: %d goroutines, %.0f MiB RSS, %d files", i+1, r.Goroutines, mib(r.RSSBytes), r.OpenFDs)
			}
			if broken > 0 {
				line += fmt.Sprintf(" | %d invariants broken", broken)
			}
			fmt.Fprintln(s.cfg.Progress, line)
		}
	}
}

// settle waits, up to 15 s, for the nodes' goroutines and open files to
// come back near base once the load stopped, and returns what they are.
// settleWait is how long the nodes may take to come back to their
// baseline once the load stops: a busy machine (the race detector, other
// tests beside) closes the load's last media sockets late.
const settleWait = 30 * time.Second

func (s *soak) settle(ctx context.Context, base []Resources) []Resources {
	var rs []Resources
	for deadline := time.Now().Add(settleWait); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var err error
		if rs, err = s.resources(ctx); err != nil {
			continue
		}
		back := true
		for i, b := range base {
			if !s.settled(at(rs, i), b) {
				back = false
			}
		}
		if back {
			break
		}
	}
	return rs
}

// settled reports whether a node's resources r after the load are back
// near b, before it: goroutines within a tenth and 20, open files within
// 10 and, for a deployment on Redis, the 4 idle connections to Redis each
// node may keep (a cold node had not opened them yet), and the heap in
// use within twice its size and 32 MiB (garbage not yet collected counts
// until the next GC, which nothing forces). Nodes in one process (a
// test's) all report the whole process.
func (s *soak) settled(r, b Resources) bool {
	fds := 10
	if len(s.cfg.URLs) > 1 {
		fds += 4 * len(s.cfg.URLs)
	}
	return r.Goroutines <= b.Goroutines+b.Goroutines/10+20 && r.OpenFDs <= b.OpenFDs+fds && r.Calls == 0 && r.Rooms == 0 &&
		r.HeapBytes <= 2*b.HeapBytes+32<<20
}

// resources reads every node's /metrics.
func (s *soak) resources(ctx context.Context) ([]Resources, error) {
	var rs []Resources
	for _, u := range s.cfg.URLs {
		r, err := readResources(ctx, httpBase(u)+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("loadtest soak: metrics of %s: %w", u, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// readResources reads the Go and process collectors' figures from a
// Prometheus text page.
func readResources(ctx context.Context, url string) (Resources, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Resources{}, err
	}
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return Resources{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Resources{}, fmt.Errorf("status %s", resp.Status)
	}
	var r Resources
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			r.Goroutines = int(v)
		case "go_memstats_heap_inuse_bytes":
			r.HeapBytes = int64(v)
		case "process_resident_memory_bytes":
			r.RSSBytes = int64(v)
		case "process_open_fds":
			r.OpenFDs = int(v)
		case "tandem_signaling_calls":
			r.Calls = int(v)
		case "tandem_sfu_rooms":
			r.Rooms = int(v)
		}
	}
	return r, sc.Err()
}
