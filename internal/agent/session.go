package agent

import (
	"context"
	"fmt"
	"image"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandemcall/tandem/internal/agent/vpx"
	"github.com/tandemcall/tandem/internal/assistwire"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Timings of a session.
const (
	localPoll     = 50 * time.Millisecond // how often local input is looked for
	refreshEvery  = time.Second           // a frame at least this often, even if nothing changed
	markLifetime  = 1500 * time.Millisecond
	inkLifetime   = 15 * time.Second // a drawing stays this long after its last stroke, or until cleared
	inputBacklog  = 64               // messages of remote input waiting to be applied
	maxFrameBytes = 4 << 20
)

// session is one call the agent shares the screen in. Two goroutines use
// the desktop: capture (grabs and encodes, only while view is granted)
// and input (applies remote input, only while control is granted,
// watches for local input, and shows the bar and marks).
type session struct {
	a      *Agent
	callID string
	desk   Desktop
	// media is the call's media; replaced when the call moves to another
	// node (rejoin).
	media atomic.Pointer[client.Media]
	track *webrtc.TrackLocalStaticSample
	rekey atomic.Bool // the next frame is a keyframe: the media connected anew

	granted atomic.Pointer[grants]
	// expectControl is until when (unix ns) the agent waits for the server
	// to confirm a control grant it has just given: the helper hears of
	// the grant at the same time and his first input may arrive first.
	expectControl atomic.Int64
	input         chan []assistwire.Event
	regrant       chan struct{} // the grants changed: redraw the bar
	// shown is what the helper sees: an index into screens(), 0 (the
	// whole desktop) unless the helper chose a monitor.
	shown atomic.Int32
	// announced is the list of screens last sent to the helper.
	announceMu sync.Mutex
	announced  *protocol.AssistScreens
	done       chan struct{}
	once       sync.Once
	wg         sync.WaitGroup
}

// grants are a session's current grants and whom they are given to.
type grants struct {
	helper string
	set    map[string]bool
}

func (g *grants) has(what string) bool { return g != nil && g.set[what] }

// startSession starts sharing desk, which it owns from now on: the
// encoder and the call's media, the screen as a track marked as a screen
// share, and the assist data channel.
func (a *Agent) startSession(ctx context.Context, callID, helper string, desk Desktop) (*session, error) {
	w, h := desk.Size()
	enc, err := vpx.NewEncoder(vpx.EncoderConfig{Width: w &^ 1, Height: h &^ 1, FPS: a.cfg.FPS, BitrateKbps: a.cfg.BitrateKbps})
	if err != nil {
		desk.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	s := &session{
		a: a, callID: callID, desk: desk,
		input:   make(chan []assistwire.Event, inputBacklog),
		regrant: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.granted.Store(&grants{helper: helper, set: map[string]bool{}})
	stream := a.c.Load().Welcome().User
	s.track, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", stream)
	if err == nil {
		err = s.startMedia(ctx)
	}
	if err != nil {
		enc.Close()
		desk.Close()
		return nil, fmt.Errorf("agent: media: %w", err)
	}
	s.wg.Go(func() { s.capture(enc) })
	s.wg.Go(s.inputLoop)
	s.wg.Go(s.sendCopies)
	a.log.Info("sharing the screen in a call", "call", callID, "helper", helper, "width", w, "height", h)
	return s, nil
}

// startMedia starts the call's media: the screen track, marked as a
// screen share, and the assist data channel.
func (s *session) startMedia(ctx context.Context) error {
	m, err := s.a.c.Load().StartMedia(ctx, s.callID, client.MediaOptions{
		ScreenTrack: s.track, Assist: true, OnAssist: s.onAssist, EstimateBandwidth: true,
	})
	if err != nil {
		return err
	}
	s.media.Store(m)
	return nil
}

// rejoin connects the call's media anew: the node holding the call went
// away and another took it over, which has none of it. The assistance
// did not move with the call (the new node knows nothing of it): every
// grant is taken back here too, the bar says so, and the helper asks
// again, which the person answers again. The first frame sent after is a
// keyframe.
func (s *session) rejoin(ctx context.Context) error {
	s.setGrants(nil, "")
	if old := s.media.Load(); old != nil {
		_ = old.Close()
	}
	if err := s.startMedia(ctx); err != nil {
		return err
	}
	s.rekey.Store(true)
	s.a.stats.rejoins.Add(1)
	return nil
}

// close stops the session's goroutines and media.
func (s *session) close() {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		_ = s.desk.Close()
		if m := s.media.Load(); m != nil {
			_ = m.Close()
		}
	})
}

// setGrants records the grants the server reports; helper "" keeps the
// current one.
func (s *session) setGrants(list []string, helper string) {
	g := &grants{set: map[string]bool{}}
	if old := s.granted.Load(); old != nil {
		g.helper = old.helper
	}
	if helper != "" {
		g.helper = helper
	}
	for _, x := range list {
		g.set[x] = true
	}
	if old := s.granted.Swap(g); old.has(protocol.AssistControl) && !g.has(protocol.AssistControl) {
		s.expectControl.Store(0) // taken back: input in flight is stale
	}
	if !g.has(protocol.AssistView) {
		// Seeing again, the helper is told the screens again.
		s.announceMu.Lock()
		s.announced = nil
		s.announceMu.Unlock()
	}
	select {
	case s.regrant <- struct{}{}:
	default:
	}
}

// onAssist queues remote input for the input goroutine; it never blocks
// the data channel.
func (s *session) onAssist(events []assistwire.Event) {
	select {
	case s.input <- events:
	default:
		s.a.stats.dropped.Add(uint64(len(events)))
	}
}

// paste puts text the helper sent on the desktop's clipboard, while the
// clipboard is granted.
func (s *session) paste(text string) {
	if !s.granted.Load().has(protocol.AssistClipboard) {
		s.a.stats.notGranted.Add(1)
		return
	}
	if err := s.desk.SetClipboard(text); err != nil {
		s.a.log.Warn("the helper's text was not put on the clipboard", "err", err)
		return
	}
	s.a.stats.clipIn.Add(1)
	s.a.log.Info("text from the helper is on the clipboard", "call", s.callID, "bytes", len(text))
}

// sendCopies sends the helper what the person at the machine copies
// while the clipboard is granted; a copy made before the grant, or after
// it was taken back, stays here.
func (s *session) sendCopies() {
	copies, tooLarge := s.desk.Copies()
	if copies == nil {
		return
	}
	for {
		var text string
		select {
		case <-s.done:
			return
		case n := <-tooLarge:
			if s.granted.Load().has(protocol.AssistClipboard) {
				s.a.stats.clipTooLarge.Add(1)
				s.a.log.Warn("the copied text is too large to send to the helper: not sent", "bytes", n, "limit", protocol.MaxClipboardBytes)
			}
			continue
		case text = <-copies:
		}
		if !s.granted.Load().has(protocol.AssistClipboard) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.a.c.Load().SendClipboard(ctx, s.callID, text)
		cancel()
		if err != nil {
			s.a.log.Warn("the copied text was not sent to the helper", "err", err)
			continue
		}
		s.a.stats.clipOut.Add(1)
		s.a.log.Info("copied text sent to the helper", "call", s.callID, "bytes", len(text))
	}
}

// screens lists what the helper can be shown of a w×h desktop: the whole
// of it, then each monitor where it spans more than one.
func (s *session) screens(w, h int) []image.Rectangle {
	list := []image.Rectangle{image.Rect(0, 0, w, h)}
	if ms := s.desk.Monitors(); len(ms) > 1 {
		list = append(list, ms...)
	}
	return list
}

// view is the part of a w×h desktop the helper is shown, with even sides
// (the encoder's need); the whole desktop if the chosen monitor is gone.
func (s *session) view(w, h int) image.Rectangle {
	list := s.screens(w, h)
	r := list[0]
	if i := int(s.shown.Load()); i > 0 && i < len(list) {
		r = list[i]
	}
	r = r.Intersect(image.Rect(0, 0, w, h))
	if r.Dx() < 2 || r.Dy() < 2 {
		r = image.Rect(0, 0, w, h)
	}
	r.Max.X -= r.Dx() & 1
	r.Max.Y -= r.Dy() & 1
	return r
}

// pick shows the helper screen i of screens(), as he asked.
func (s *session) pick(i int) {
	if !s.granted.Load().has(protocol.AssistView) {
		s.a.stats.notGranted.Add(1)
		return
	}
	if i < 0 || i >= len(s.screens(s.desk.Size())) {
		s.a.log.Info("the helper chose a screen this desktop does not have", "screen", i)
		return
	}
	s.shown.Store(int32(i))
	s.a.log.Info("the helper sees another screen", "call", s.callID, "screen", i)
	go s.announceScreens(s.desk.Size())
}

// announceScreens tells the helper what he can be shown of the w×h
// desktop, and what he is shown, when that changed since he was last
// told; a desktop with one monitor has nothing to choose from, and says
// nothing until it has.
func (s *session) announceScreens(w, h int) {
	s.announceMu.Lock()
	defer s.announceMu.Unlock()
	if !s.granted.Load().has(protocol.AssistView) {
		return
	}
	list := s.screens(w, h)
	m := &protocol.AssistScreens{CallID: s.callID, Shown: int(s.shown.Load())}
	if m.Shown >= len(list) {
		m.Shown = 0
	}
	for i, r := range list {
		name := "All screens"
		if i > 0 {
			name = fmt.Sprintf("Screen %d", i)
		}
		m.Screens = append(m.Screens, protocol.AssistScreen{Name: name, X: r.Min.X, Y: r.Min.Y, Width: r.Dx(), Height: r.Dy()})
	}
	if prev := s.announced; prev == nil && len(list) < 2 || prev != nil && prev.Shown == m.Shown && slices.Equal(prev.Screens, m.Screens) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.a.c.Load().SendScreens(ctx, m); err != nil {
		s.a.log.Info("the helper was not told of the screens", "err", err)
		return
	}
	s.announced = m
}

// capture grabs and sends the screen while view is granted: the part of
// it the helper is shown (view), encoded at its size.
func (s *session) capture(enc *vpx.Encoder) {
	defer func() { enc.Close() }()
	fps := s.a.cfg.FPS
	t := time.NewTicker(time.Second / time.Duration(fps))
	defer t.Stop()
	sending := false
	var last, adapted time.Time
	var shownRect image.Rectangle // what the last frame showed
	desktop := image.Pt(enc.Width(), enc.Height())
	s.a.stats.bitrate.Store(uint64(enc.Bitrate()))
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if now := time.Now(); now.Sub(adapted) >= adaptEvery {
			adapted = now
			s.adaptBitrate(enc)
		}
		if !s.granted.Load().has(protocol.AssistView) {
			sending = false
			continue
		}
		full := !sending
		f, changed, err := s.desk.Grab(full)
		if err != nil {
			s.a.stats.captureErr.Add(1)
			continue
		}
		key := s.media.Load().KeyframeRequested() || s.rekey.Swap(false) || !sending
		if size := image.Pt(f.Width, f.Height); size != desktop {
			desktop = size // the person changed the resolution
			s.a.log.Info("the screen changed size", "width", f.Width, "height", f.Height)
			go s.announceScreens(f.Width, f.Height)
		}
		r := s.view(f.Width, f.Height)
		if r != shownRect {
			if r.Dx() != enc.Width() || r.Dy() != enc.Height() {
				next, err := vpx.NewEncoder(vpx.EncoderConfig{Width: r.Dx(), Height: r.Dy(), FPS: fps, BitrateKbps: enc.Bitrate()})
				if err != nil {
					s.a.stats.captureErr.Add(1)
					continue
				}
				enc.Close()
				enc = next
			}
			shownRect, key = r, true
		}
		if !changed && !key && time.Since(last) < refreshEvery {
			continue
		}
		frame, _, err := enc.Encode(f.Pix[r.Min.Y*f.Stride+4*r.Min.X:], f.Stride, key)
		if err != nil || len(frame) == 0 || len(frame) > maxFrameBytes {
			s.a.stats.captureErr.Add(1)
			continue
		}
		if err := s.track.WriteSample(media.Sample{Data: frame, Duration: time.Second / time.Duration(fps)}); err != nil {
			continue
		}
		sending, last = true, time.Now()
		s.a.stats.frames.Add(1)
	}
}

// Following the network's bandwidth.
const (
	adaptEvery = 500 * time.Millisecond
	// minBitrate is the least the screen is encoded at: text stays
	// readable, if slow to sharpen.
	minBitrate = 150 // kbit/s
)

// adaptBitrate encodes at what congestion control says the path to the
// server carries (leaving a tenth for audio and headers), never above the
// configured bitrate, and changes it only when it moved by a tenth: a
// screen sent faster than the network carries queues up in front of it,
// and every click's echo waits behind that queue.
func (s *session) adaptBitrate(enc *vpx.Encoder) {
	target := s.media.Load().TargetBitrate() / 1000
	if target <= 0 {
		return
	}
	s.a.stats.estimate.Store(uint64(target))
	want := min(max(target*9/10, minBitrate), s.a.cfg.BitrateKbps)
	cur := enc.Bitrate()
	if abs(want-cur)*10 < cur {
		return
	}
	if err := enc.SetBitrate(want); err != nil {
		s.a.log.Debug("bitrate not changed", "err", err)
		return
	}
	s.a.stats.bitrate.Store(uint64(want))
	s.a.log.Debug("screen bitrate", "kbps", want, "estimate_kbps", target)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// inputLoop applies granted remote input unless local input is winning,
// and keeps the bar and the mark on screen where the desktop has them.
func (s *session) inputLoop() {
	d := s.desk
	poll := time.NewTicker(localPoll)
	defer poll.Stop()
	defer d.HideBar()
	defer d.HideMark()
	defer d.ClearStrokes()
	// What the desktop cannot do is said once.
	noBar, noLocal := false, false
	var pausedUntil time.Time
	var markUntil, inkUntil time.Time
	noInk := false
	var arrows [256]bool // which strokes are arrows, by id
	shown := ""
	redraw := func() {
		g := s.granted.Load()
		text := ""
		if len(g.set) > 0 {
			text = grantText(g.helper, g.set)
		}
		if text == shown {
			return
		}
		shown = text
		if text == "" {
			_ = d.HideBar()
		} else if err := d.ShowBar(text); unsupported(err) {
			if !noBar {
				noBar = true
				s.a.log.Info("this desktop shows its own screen-sharing indicator instead of Tandem's bar and pointer mark")
			}
		} else if err != nil {
			s.a.log.Warn("cannot show the bar", "err", err)
		}
	}
	control := func(e assistwire.Event) {
		if time.Now().Before(pausedUntil) {
			s.a.stats.paused.Add(1)
			return
		}
		if err := apply(d, e, s.view(d.Size())); err != nil {
			s.a.stats.rejected.Add(1)
			s.a.log.Debug("input not applied", "err", err)
			return
		}
		s.a.stats.applied.Add(1)
	}
	// held is control input that came while the grant this agent gave was
	// on its way back from the server; it is applied once the grant is
	// confirmed, or dropped when the wait ends.
	var held []assistwire.Event
	expired := func() bool { return time.Now().UnixNano() >= s.expectControl.Load() }
	for {
		select {
		case <-s.done:
			return
		case <-s.regrant:
			if !s.granted.Load().has(protocol.AssistControl) {
				// Let go of anything the helper held (Ctrl, a button).
				_ = d.ReleaseAll()
				if expired() {
					s.a.stats.notGranted.Add(uint64(len(held)))
					held = nil
				}
			} else {
				for _, e := range held {
					control(e)
				}
				held = nil
			}
			redraw()
		case <-d.Ended():
			s.a.log.Info("the desktop ended the screen sharing: the help stops", "call", s.callID)
			s.a.StopHelp()
			<-s.done
			return
		case now := <-poll.C:
			active, err := d.LocalActivity()
			if unsupported(err) && !noLocal {
				noLocal = true
				s.a.log.Info("this desktop cannot tell its user's input from the helper's: local input does not pause remote input here; the compositor arbitrates")
			}
			if err == nil && active {
				if now.After(pausedUntil) {
					s.a.stats.localPauses.Add(1)
					_ = d.ReleaseAll()
				}
				pausedUntil = now.Add(s.a.cfg.LocalPause)
			}
			if len(held) > 0 && expired() {
				s.a.stats.notGranted.Add(uint64(len(held)))
				held = nil
			}
			if !markUntil.IsZero() && now.After(markUntil) {
				_ = d.HideMark()
				markUntil = time.Time{}
			}
			if !inkUntil.IsZero() && now.After(inkUntil) {
				_ = d.ClearStrokes()
				inkUntil = time.Time{}
			}
			redraw() // re-raised if something covered it
		case events := <-s.input:
			g := s.granted.Load()
			for _, e := range events {
				switch e.Type.Class() {
				case assistwire.Annotate:
					if !g.has(protocol.AssistAnnotate) {
						s.a.stats.notGranted.Add(1)
						continue
					}
					s.a.stats.annotations.Add(1)
					switch e.Type {
					case assistwire.StrokePoint:
						r := s.view(d.Size())
						x, y := r.Min.X+scale(e.X, r.Dx()), r.Min.Y+scale(e.Y, r.Dy())
						_ = d.ShowMark(x, y)
						markUntil = time.Now().Add(markLifetime)
						if e.Tool == assistwire.ToolLaser {
							break // pointing: the mark only
						}
						arrows[e.Stroke] = e.Tool == assistwire.ToolArrow
						if err := d.DrawStroke(int(e.Stroke), x, y); unsupported(err) && !noInk {
							noInk = true
							s.a.log.Info("this desktop cannot show the helper's drawings: the pointer mark shows where they point")
						}
						inkUntil = time.Now().Add(inkLifetime)
					case assistwire.StrokeEnd:
						_ = d.EndStroke(int(e.Stroke), arrows[e.Stroke])
						arrows[e.Stroke] = false
					case assistwire.Clear:
						_ = d.HideMark()
						_ = d.ClearStrokes()
						inkUntil = time.Time{}
					}
				case assistwire.Control:
					switch {
					case g.has(protocol.AssistControl):
						control(e)
					case !expired() && len(held) < maxHeld:
						held = append(held, e)
					default:
						s.a.stats.notGranted.Add(1)
					}
				}
			}
		}
	}
}

// maxHeld bounds the control input held while a grant is confirmed.
const maxHeld = 256

// apply performs one control event on the desktop, whose part r the
// helper sees: his coordinates are normalised over r.
func apply(d Desktop, e assistwire.Event, r image.Rectangle) error {
	x, y := r.Min.X+scale(e.X, r.Dx()), r.Min.Y+scale(e.Y, r.Dy())
	switch e.Type {
	case assistwire.PointerMove:
		return d.MovePointer(x, y)
	case assistwire.ButtonDown, assistwire.ButtonUp:
		if err := d.MovePointer(x, y); err != nil {
			return err
		}
		return d.Button(e.Button, e.Type == assistwire.ButtonDown)
	case assistwire.Wheel:
		return d.Wheel(int(e.DX), int(e.DY))
	case assistwire.KeyDown, assistwire.KeyUp:
		return d.Key(e.Keysym, e.Type == assistwire.KeyDown)
	}
	return nil
}

// scale maps a coordinate normalised to 0–65535 onto 0–n-1 pixels.
func scale(v uint16, n int) int {
	return int(uint64(v) * uint64(n-1) / 65535)
}
