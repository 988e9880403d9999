// Package agent is Tandem's desktop agent (`tandem agent`): a device of
// the person being helped that shares their desktop (X11, or Wayland
// through the XDG desktop portal) with a helper and,
// only while they allow it, applies the helper's pointer and keyboard to
// it. A browser can share a screen but cannot move the real mouse; the
// agent can.
//
// It signs in as one of the user's devices and answers calls: attended,
// the person at the machine is asked (Consent) whether to answer and what
// to allow; unattended, only when the machine's owner enabled it in the
// agent's configuration, calls from the helpers named there are answered
// and given what is configured, and each such access is logged. The
// server enforces the grants as for any device (signaling/assist.go); the
// agent also keeps its own: it captures nothing while view is not granted
// and applies no input while control is not. Local input wins: remote
// input pauses whenever the person at the machine moves the mouse or
// types. A red bar on the screen says what the helper can do.
//
// Remote assistance on Wayland: the desktop's portal asks the person in
// its own dialog before anything is shared (the first consent) and shows
// its own indicator instead of the bar; it cannot tell the person's input
// from the helper's, so there the compositor, not the agent, arbitrates.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemcall/tandem/internal/agent/portal"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Defaults for Config.
const (
	defaultFPS        = 15
	defaultBitrate    = 1500 // kbit/s
	defaultLocalPause = time.Second
)

// Config configures an Agent.
type Config struct {
	// URL is the signaling endpoint, e.g. wss://tandem.example/ws.
	URL string
	// Token is an access token of the helped user for this device.
	Token string
	// Desktop is what to share: DesktopX11 (the default) or
	// DesktopPortal, a Wayland desktop through its XDG desktop portal.
	// ChooseDesktop picks one by the session type.
	Desktop string
	// Display is the X11 display to share ("" = $DISPLAY).
	Display string
	// StateDir keeps what the agent remembers between runs: the portal's
	// restore token ("" = $XDG_STATE_HOME/tandem).
	StateDir string
	// FPS and BitrateKbps bound the shared screen's video.
	FPS         int
	BitrateKbps int
	// LocalPause is how long remote input pauses after local input.
	LocalPause time.Duration
	// Unattended access: off unless the machine's owner turns it on.
	Unattended Unattended
	Logger     *slog.Logger
}

// Unattended is unattended access: with nobody at the machine, calls
// from Helpers are answered and get Grants without asking.
type Unattended struct {
	Enabled bool
	Helpers []string
	Grants  []string
}

// Consent asks the person at the machine. Its methods may block until
// they answer or ctx ends (then: no).
type Consent interface {
	// AnswerCall asks whether to answer a call from a would-be helper.
	AnswerCall(ctx context.Context, from string) bool
	// Grant asks which of requested to allow; it returns the allowed ones.
	Grant(ctx context.Context, helper string, requested []string) []string
}

// Stats counts what the agent did.
type Stats struct {
	Frames      uint64 // screen frames sent
	Applied     uint64 // remote input events applied
	Paused      uint64 // remote input events dropped while local input won
	Dropped     uint64 // remote input events dropped: they came faster than they could be applied
	Rejected    uint64 // remote input events the desktop refused (a key it cannot type, say)
	NotGranted  uint64 // remote input events dropped for want of a grant
	Unattended  uint64 // calls answered without asking
	LocalPauses uint64 // times local input paused remote input
	Annotations uint64 // annotation events shown
	// ClipboardIn counts texts from the helper put on this desktop's
	// clipboard, ClipboardOut texts copied here sent to the helper, and
	// ClipboardTooLarge copies here too large to send.
	ClipboardIn, ClipboardOut, ClipboardTooLarge uint64
	CaptureError                                 uint64
	// BitrateKbps is what the screen is encoded at now: the configured
	// bitrate, or less while the network carries less.
	BitrateKbps uint64
	// EstimateKbps is congestion control's estimate of the path to the
	// server; 0 before the first.
	EstimateKbps uint64
	// Rejoins counts calls whose media connected anew because another
	// node took the call over.
	Rejoins uint64
}

// Agent is one running desktop agent.
type Agent struct {
	cfg     Config
	consent Consent
	log     *slog.Logger

	c       atomic.Pointer[client.Client]
	stopReq chan struct{} // StopHelp asks the run loop
	stats   stats

	mu   sync.Mutex
	sess *session
}

type stats struct {
	frames, applied, paused, notGranted, unattended, localPauses, annotations, captureErr, bitrate, estimate, dropped, rejected atomic.Uint64
	clipIn, clipOut, clipTooLarge, rejoins                                                                                      atomic.Uint64
}

// New returns an agent; Run starts it.
func New(cfg Config, consent Consent) *Agent {
	cfg.FPS = cmp.Or(cfg.FPS, defaultFPS)
	cfg.BitrateKbps = cmp.Or(cfg.BitrateKbps, defaultBitrate)
	cfg.LocalPause = cmp.Or(cfg.LocalPause, defaultLocalPause)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, consent: consent, log: log.With("part", "agent"), stopReq: make(chan struct{}, 1)}
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := &a.stats
	return Stats{
		Frames: s.frames.Load(), Applied: s.applied.Load(), Paused: s.paused.Load(), NotGranted: s.notGranted.Load(),
		Unattended: s.unattended.Load(), LocalPauses: s.localPauses.Load(), Annotations: s.annotations.Load(),
		CaptureError: s.captureErr.Load(), Dropped: s.dropped.Load(), Rejected: s.rejected.Load(), BitrateKbps: s.bitrate.Load(), EstimateKbps: s.estimate.Load(),
		ClipboardIn: s.clipIn.Load(), ClipboardOut: s.clipOut.Load(), ClipboardTooLarge: s.clipTooLarge.Load(),
		Rejoins: s.rejoins.Load(),
	}
}

// StopHelp is the person at the machine taking everything back at once:
// every grant is revoked and the assistance ends; the call goes on.
func (a *Agent) StopHelp() {
	select {
	case a.stopReq <- struct{}{}:
	default:
	}
}

// Run signs in and serves calls until ctx ends or the connection fails.
func (a *Agent) Run(ctx context.Context) error {
	// Reconnect: the agent stays signed in through a lost connection or a
	// change of network, and its call resumes.
	c, err := client.Dial(ctx, client.Options{URL: a.cfg.URL, Token: a.cfg.Token, Logger: a.cfg.Logger, Reconnect: true})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.c.Store(c)
	defer c.Close()
	w := c.Welcome()
	a.log = a.log.With("user", w.User, "device", w.Device)
	a.log.Info("agent signed in", "unattended", a.cfg.Unattended.Enabled)
	defer a.endSession()

	msgs := make(chan any)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("agent: %w", err)
		case <-a.stopReq:
			a.stopHelp(ctx)
		case m := <-msgs:
			a.handle(ctx, m)
		}
	}
}

// handle reacts to one server message.
func (a *Agent) handle(ctx context.Context, m any) {
	switch m := m.(type) {
	case *protocol.Incoming:
		a.incoming(ctx, m)
	case *protocol.Accepted:
		// Answered: the session began in incoming.
	case *protocol.AssistState:
		a.assistState(ctx, m)
	case *protocol.Clipboard:
		if s := a.current(); s != nil && s.callID == m.CallID {
			s.paste(m.Text)
		}
	case *protocol.AssistPick:
		if s := a.current(); s != nil && s.callID == m.CallID {
			s.pick(m.Screen)
		}
	case *protocol.Resumed:
		if s := a.current(); s != nil && s.callID == m.CallID && m.Rejoin {
			a.log.Info("the call moved to another node; connecting its media there", "call", m.CallID)
			if err := s.rejoin(ctx); err != nil {
				a.log.Warn("the call's media could not connect to its new node", "call", m.CallID, "err", err)
			}
		}
	case *protocol.Ended:
		if s := a.current(); s != nil && s.callID == m.CallID {
			a.log.Info("call ended", "call", m.CallID, "reason", m.Reason)
			a.endSession()
		}
	}
}

// incoming answers a call, or not: one at a time, unattended only for the
// configured helpers, otherwise as the person at the machine says.
func (a *Agent) incoming(ctx context.Context, m *protocol.Incoming) {
	c := a.c.Load()
	from := m.From.User
	if a.current() != nil || len(m.Members) > 0 {
		_ = c.Decline(ctx, m.CallID)
		return
	}
	answer := false
	if u := a.cfg.Unattended; u.Enabled && slices.Contains(u.Helpers, from) {
		answer = true
		a.stats.unattended.Add(1)
		a.log.Warn("unattended access: answering without asking", "helper", from, "call", m.CallID)
	} else {
		answer = a.consent.AnswerCall(ctx, from)
	}
	if !answer {
		_ = c.Decline(ctx, m.CallID)
		return
	}
	// The desktop first: on Wayland its own dialog asks the person, and a
	// no there declines the call.
	dctx, cancel := context.WithTimeout(ctx, desktopWait)
	desk, err := a.openDesktop(dctx)
	cancel()
	if err != nil {
		if errors.Is(err, portal.ErrRefused) {
			a.log.Warn("the person at the machine said no in the desktop's sharing dialog: declining the call", "call", m.CallID, "helper", from)
		} else {
			a.log.Error("cannot share this desktop: declining the call", "call", m.CallID, "err", err)
		}
		_ = c.Decline(ctx, m.CallID)
		return
	}
	if err := c.Accept(ctx, m.CallID, false); err != nil {
		a.log.Warn("could not answer", "call", m.CallID, "err", err)
		desk.Close()
		return
	}
	s, err := a.startSession(ctx, m.CallID, from, desk)
	if err != nil {
		a.log.Error("could not share the screen", "err", err)
		_ = c.Hangup(ctx, m.CallID)
		return
	}
	a.mu.Lock()
	a.sess = s
	a.mu.Unlock()
}

// assistState answers what the helper asks for, and keeps the session's
// grants, which it enforces too.
func (a *Agent) assistState(ctx context.Context, m *protocol.AssistState) {
	s := a.current()
	if s == nil || s.callID != m.CallID {
		return
	}
	me := a.c.Load().Welcome().User
	if !m.Active {
		s.setGrants(nil, "")
		return
	}
	if m.Helped != me {
		return // this device helps nobody
	}
	s.setGrants(m.Granted, m.Helper)
	if slices.Contains(m.Granted, protocol.AssistView) {
		go s.announceScreens(s.desk.Size()) // what he can choose to see
	}
	requested := m.Requested
	if texts, _ := s.desk.Copies(); slices.Contains(requested, protocol.AssistClipboard) && texts == nil {
		a.log.Info("the helper asks for the clipboard, but this desktop's clipboard is out of Tandem's reach: not asked, not given", "helper", m.Helper)
		requested = slices.DeleteFunc(slices.Clone(requested), func(g string) bool { return g == protocol.AssistClipboard })
	}
	if len(requested) == 0 {
		if len(m.Requested) > 0 {
			// Answer what cannot be given, rather than leave it to time out.
			if err := a.c.Load().AssistGrant(ctx, m.CallID, m.Granted...); err != nil {
				a.log.Warn("could not answer the request", "err", err)
			}
		}
		return
	}
	var allowed []string
	if u := a.cfg.Unattended; u.Enabled && slices.Contains(u.Helpers, m.Helper) {
		for _, g := range requested {
			if slices.Contains(u.Grants, g) {
				allowed = append(allowed, g)
			}
		}
		a.log.Warn("unattended access: granting without asking", "helper", m.Helper, "grants", allowed)
	} else {
		allowed = a.consent.Grant(ctx, m.Helper, requested)
	}
	want := slices.Clone(m.Granted)
	for _, g := range allowed {
		if slices.Contains(requested, g) && !slices.Contains(want, g) {
			want = append(want, g)
		}
	}
	if slices.Contains(want, protocol.AssistControl) && !slices.Contains(m.Granted, protocol.AssistControl) {
		s.expectControl.Store(time.Now().Add(controlConfirm).UnixNano())
	}
	if err := a.c.Load().AssistGrant(ctx, m.CallID, want...); err != nil {
		a.log.Warn("could not answer the request", "err", err)
	}
}

// desktopWait bounds opening the desktop, which on Wayland waits for the
// person to answer the desktop's own dialog.
const desktopWait = 2 * time.Minute

// controlConfirm is how long control input that arrives before the
// server confirms a control grant this agent gave waits for it. Held
// input is applied only once control is confirmed, so the wait can be
// generous: on a machine short of CPU the confirmation took over 2 s once
// (TestAgent lost its first click), and a helper's first click should not
// vanish for that.
const controlConfirm = 10 * time.Second

// stopHelp revokes everything and ends the assistance.
func (a *Agent) stopHelp(ctx context.Context) {
	s := a.current()
	if s == nil {
		return
	}
	s.setGrants(nil, "")
	c := a.c.Load()
	err := errors.Join(c.AssistGrant(ctx, s.callID), c.AssistEnd(ctx, s.callID))
	if err != nil {
		a.log.Info("stop help", "err", err)
	}
	a.log.Info("help stopped at the machine", "call", s.callID)
}

func (a *Agent) current() *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess
}

func (a *Agent) endSession() {
	a.mu.Lock()
	s := a.sess
	a.sess = nil
	a.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// grantText is what the red bar says.
func grantText(helper string, granted map[string]bool) string {
	var can []string
	if granted[protocol.AssistView] {
		can = append(can, "see this screen")
	}
	if granted[protocol.AssistAnnotate] {
		can = append(can, "point at it")
	}
	if granted[protocol.AssistControl] {
		can = append(can, "control the mouse and keyboard")
	}
	if granted[protocol.AssistClipboard] {
		can = append(can, "share the clipboard")
	}
	return "Tandem: " + helper + " can " + strings.Join(can, ", ")
}
