package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Portal options, as the ScreenCast and RemoteDesktop interfaces number
// them.
const (
	deviceKeyboard = 1
	devicePointer  = 2
	sourceMonitor  = 1
	cursorHidden   = 1
	cursorEmbedded = 2
	persistRevoked = 2 // until the person revokes it
	// rdPersistVersion is the first RemoteDesktop version that can
	// remember the person's answer (persist_mode, restore_token).
	rdPersistVersion = 2
)

// Linux input event codes of the pointer's buttons.
const (
	btnLeft   = 0x110
	btnRight  = 0x111
	btnMiddle = 0x112
)

// keysymShiftL is the harmless key a new session presses once.
const keysymShiftL = 0xffe1

// callTimeout bounds one input call to the portal.
const callTimeout = 2 * time.Second

// Options configure Open.
type Options struct {
	// Persist asks the desktop to remember the person's answer, so that
	// later sessions start without asking, where the portal can
	// (RemoteDesktop version 2 and later). Only the machine's owner
	// turns it on: it is unattended access.
	Persist bool
	// TokenFile keeps the restore token between runs.
	TokenFile string
	Logger    *slog.Logger
}

// ErrInvalidButton: a button other than 1 (left), 2 (middle), 3 (right).
var ErrInvalidButton = errors.New("portal: invalid button")

// Session is one RemoteDesktop session of the portal with the screen on
// it. Its input methods may be called from one goroutine while another
// calls Grab.
type Session struct {
	conn   *dbus.Conn
	b      *bus
	handle dbus.ObjectPath
	node   uint32
	stream *Stream
	log    *slog.Logger

	w, h   int // the picture's size
	lw, lh int // the stream's size in the compositor's coordinates
	input  bool
	ended  chan struct{} // closed when the session ends
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu             sync.Mutex
	closed         bool
	keys           map[uint32]bool
	buttons        map[int32]bool
	wheelX, wheelY int
}

// Check reports whether this desktop's session bus has a portal that can
// share the screen with remote input: nil, ErrNoPortal or
// ErrNoRemoteDesktop.
func Check(ctx context.Context) error {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoPortal, err)
	}
	defer conn.Close()
	return check(ctx, conn)
}

func check(ctx context.Context, conn *dbus.Conn) error {
	var names []string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		return fmt.Errorf("%w (%v)", ErrNoPortal, err)
	}
	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, portalDest).Store(&owned); err != nil {
		return fmt.Errorf("%w (%v)", ErrNoPortal, err)
	}
	if !owned && !containsName(names, portalDest) {
		return ErrNoPortal
	}
	b := connect(conn)
	if b.version(ctx, ifaceRemote) == 0 {
		return ErrNoRemoteDesktop
	}
	if b.version(ctx, ifaceScreen) == 0 {
		return fmt.Errorf("%w (and no ScreenCast interface)", ErrNoRemoteDesktop)
	}
	return nil
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// Open starts a session: the desktop asks the person at the machine, in
// its own dialog, whether to share the screen and allow remote
// interaction, unless a restore token lets it skip the question. Open
// waits for the answer until ctx ends. If the person says no it returns
// ErrRefused.
func Open(ctx context.Context, o Options) (_ *Session, err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The connection outlives ctx: a connection made WithContext closes
	// when its context ends.
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoPortal, err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	if err := check(ctx, conn); err != nil {
		return nil, err
	}
	b := connect(conn)
	rdVersion := b.version(ctx, ifaceRemote)

	res, err := b.request(ctx, ifaceRemote+".CreateSession",
		map[string]dbus.Variant{"session_handle_token": dbus.MakeVariant(newToken())})
	if err != nil {
		return nil, err
	}
	h, _ := res["session_handle"].Value().(string)
	if h == "" {
		return nil, errors.New("portal: CreateSession gave no session")
	}
	s := &Session{
		conn: conn, b: b, handle: dbus.ObjectPath(h), log: log,
		ended: make(chan struct{}), stop: make(chan struct{}),
		keys: map[uint32]bool{}, buttons: map[int32]bool{},
	}
	if err := s.watchClosed(); err != nil {
		_ = s.closeSession()
		return nil, err
	}
	defer func() {
		if err != nil {
			close(s.stop)
			_ = s.closeSession()
			s.wg.Wait()
		}
	}()

	devices := map[string]dbus.Variant{"types": dbus.MakeVariant(uint32(deviceKeyboard | devicePointer))}
	persist := o.Persist && rdVersion >= rdPersistVersion
	if o.Persist && !persist {
		log.Warn("this desktop cannot remember the answer to its sharing dialog: it asks every time", "remote_desktop_version", rdVersion)
	}
	if persist {
		devices["persist_mode"] = dbus.MakeVariant(uint32(persistRevoked))
		if tok := readToken(o.TokenFile); tok != "" {
			devices["restore_token"] = dbus.MakeVariant(tok)
		}
	}
	if _, err := b.request(ctx, ifaceRemote+".SelectDevices", devices, s.handle); err != nil {
		return nil, err
	}
	sources := map[string]dbus.Variant{
		"types":    dbus.MakeVariant(uint32(sourceMonitor)),
		"multiple": dbus.MakeVariant(false),
	}
	if modes, ok := b.property(ctx, ifaceScreen, "AvailableCursorModes"); ok {
		switch {
		case modes&cursorEmbedded != 0:
			sources["cursor_mode"] = dbus.MakeVariant(uint32(cursorEmbedded))
		case modes&cursorHidden != 0:
			sources["cursor_mode"] = dbus.MakeVariant(uint32(cursorHidden))
		}
	}
	if _, err := b.request(ctx, ifaceScreen+".SelectSources", sources, s.handle); err != nil {
		return nil, err
	}
	log.Info("waiting for the person at the machine to answer the desktop's sharing dialog")
	res, err = b.request(ctx, ifaceRemote+".Start", map[string]dbus.Variant{}, s.handle, "")
	if re := (*responseError)(nil); errors.As(err, &re) && re.code == responseCancel {
		return nil, ErrRefused
	} else if err != nil {
		return nil, err
	}
	if err := s.started(res, persist, o.TokenFile); err != nil {
		return nil, err
	}

	var fd dbus.UnixFD
	if err := b.obj.CallWithContext(ctx, ifaceScreen+".OpenPipeWireRemote", 0, s.handle, map[string]dbus.Variant{}).Store(&fd); err != nil {
		return nil, fmt.Errorf("portal: OpenPipeWireRemote: %w", err)
	}
	if s.stream, err = OpenStream(int(fd), s.node); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s.w, s.h, err = s.stream.WaitFirst(wctx)
	cancel()
	if err != nil {
		_ = s.stream.Close()
		return nil, err
	}
	if s.lw == 0 {
		s.lw, s.lh = s.w, s.h
	}
	if s.input {
		// A new virtual keyboard can lose its first key: press one that
		// does nothing.
		_ = s.notify("NotifyKeyboardKeysym", int32(keysymShiftL), uint32(1))
		_ = s.notify("NotifyKeyboardKeysym", int32(keysymShiftL), uint32(0))
	}
	log.Info("the desktop shares the screen through its portal; its own indicator shows while it does",
		"width", s.w, "height", s.h, "remote_input", s.input, "remembered", persist)
	return s, nil
}

// started reads Start's results: the devices allowed, the stream, the
// restore token.
func (s *Session) started(res map[string]dbus.Variant, persist bool, tokenFile string) error {
	devices, _ := res["devices"].Value().(uint32)
	s.input = devices&(deviceKeyboard|devicePointer) != 0
	var streams []struct {
		Node  uint32
		Props map[string]dbus.Variant
	}
	if v, ok := res["streams"]; ok {
		if err := dbus.Store([]any{v.Value()}, &streams); err != nil {
			return fmt.Errorf("portal: Start: streams: %w", err)
		}
	}
	if len(streams) == 0 {
		return errors.New("portal: Start gave no screen stream")
	}
	s.node = streams[0].Node
	if v, ok := streams[0].Props["size"]; ok {
		var size []int32
		if dbus.Store([]any{v.Value()}, &size) == nil && len(size) == 2 {
			s.lw, s.lh = int(size[0]), int(size[1])
		} else if st, ok := v.Value().([]any); ok && len(st) == 2 {
			w, _ := st[0].(int32)
			h, _ := st[1].(int32)
			s.lw, s.lh = int(w), int(h)
		}
	}
	if tok, ok := res["restore_token"].Value().(string); ok && persist && tokenFile != "" {
		if err := writeToken(tokenFile, tok); err != nil {
			s.log.Warn("cannot keep the portal's restore token", "err", err)
		}
	}
	return nil
}

// watchClosed follows the session's Closed signal: the desktop ends the
// session when the person stops the sharing from its indicator.
func (s *Session) watchClosed() error {
	match := []dbus.MatchOption{
		dbus.WithMatchObjectPath(s.handle), dbus.WithMatchInterface(ifaceSession), dbus.WithMatchMember("Closed"),
	}
	if err := s.conn.AddMatchSignal(match...); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	sigs := make(chan *dbus.Signal, 4)
	s.conn.Signal(sigs)
	s.wg.Go(func() {
		defer s.conn.RemoveSignal(sigs)
		for {
			select {
			case <-s.stop:
				return
			case sig, ok := <-sigs:
				if !ok {
					return // the connection closed
				}
				if sig != nil && sig.Path == s.handle && sig.Name == ifaceSession+".Closed" {
					s.log.Info("the desktop ended the screen sharing")
					close(s.ended)
					return
				}
			}
		}
	})
	return nil
}

// Ended is closed when the desktop ends the session.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Size is the picture's size.
func (s *Session) Size() (w, h int) { return s.w, s.h }

// Grab returns the latest picture as BGRx (stride w*4) and whether it
// changed since the last Grab.
func (s *Session) Grab() (pix []byte, w, h int, changed bool, err error) {
	select {
	case <-s.ended:
		return nil, 0, 0, false, ErrClosed
	default:
	}
	return s.stream.Latest()
}

// notify calls a RemoteDesktop Notify method on the session.
func (s *Session) notify(method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	args = append([]any{s.handle, map[string]dbus.Variant{}}, args...)
	if err := s.b.obj.CallWithContext(ctx, ifaceRemote+"."+method, 0, args...).Err; err != nil {
		return fmt.Errorf("portal: %s: %w", method, err)
	}
	return nil
}

// usableLocked says why input cannot be sent now, if it cannot.
func (s *Session) usableLocked() error {
	if s.closed {
		return ErrClosed
	}
	select {
	case <-s.ended:
		return ErrClosed
	default:
	}
	if !s.input {
		return ErrNoControl
	}
	return nil
}

// MovePointer puts the pointer at x, y of the picture.
func (s *Session) MovePointer(x, y int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	fx := float64(x) * float64(s.lw) / float64(s.w)
	fy := float64(y) * float64(s.lh) / float64(s.h)
	return s.notify("NotifyPointerMotionAbsolute", s.node, fx, fy)
}

// Button presses or releases button 1 (left), 2 (middle) or 3 (right).
func (s *Session) Button(button uint8, down bool) error {
	code, ok := map[uint8]int32{1: btnLeft, 2: btnMiddle, 3: btnRight}[button]
	if !ok {
		return fmt.Errorf("%w: %d", ErrInvalidButton, button)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if err := s.notify("NotifyPointerButton", code, state(down)); err != nil {
		return err
	}
	if down {
		s.buttons[code] = true
	} else {
		delete(s.buttons, code)
	}
	return nil
}

// Wheel scrolls by dx, dy in 1/120 of a notch; positive dy scrolls down,
// positive dx right. What is less than a notch carries to the next call.
func (s *Session) Wheel(dx, dy int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	s.wheelX += dx
	s.wheelY += dy
	nx, ny := s.wheelX/120, s.wheelY/120
	s.wheelX -= nx * 120
	s.wheelY -= ny * 120
	if ny != 0 {
		if err := s.notify("NotifyPointerAxisDiscrete", uint32(0), int32(ny)); err != nil {
			return err
		}
	}
	if nx != 0 {
		return s.notify("NotifyPointerAxisDiscrete", uint32(1), int32(nx))
	}
	return nil
}

// Key presses or releases the key of an X11 keysym; the compositor finds
// the key and the modifiers it needs.
func (s *Session) Key(keysym uint32, down bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if err := s.notify("NotifyKeyboardKeysym", int32(keysym), state(down)); err != nil {
		return err
	}
	if down {
		s.keys[keysym] = true
	} else {
		delete(s.keys, keysym)
	}
	return nil
}

// ReleaseAll lets go of every key and button Tandem holds.
func (s *Session) ReleaseAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.releaseAllLocked()
}

func (s *Session) releaseAllLocked() error {
	if err := s.usableLocked(); err != nil {
		return nil // nothing can be held
	}
	var errs []error
	for k := range s.keys {
		errs = append(errs, s.notify("NotifyKeyboardKeysym", int32(k), state(false)))
		delete(s.keys, k)
	}
	for b := range s.buttons {
		errs = append(errs, s.notify("NotifyPointerButton", b, state(false)))
		delete(s.buttons, b)
	}
	s.wheelX, s.wheelY = 0, 0
	return errors.Join(errs...)
}

func state(down bool) uint32 {
	if down {
		return 1
	}
	return 0
}

// Close releases what Tandem holds and ends the session: the desktop's
// indicator goes away and the session accepts no more input.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	_ = s.releaseAllLocked()
	s.closed = true
	s.mu.Unlock()
	err := s.closeSession()
	close(s.stop)
	s.wg.Wait()
	if s.stream != nil {
		_ = s.stream.Close()
	}
	return errors.Join(err, s.conn.Close())
}

// closeSession asks the portal to end the session.
func (s *Session) closeSession() error {
	select {
	case <-s.ended:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.conn.Object(portalDest, s.handle).CallWithContext(ctx, ifaceSession+".Close", 0).Err; err != nil {
		return fmt.Errorf("portal: close session: %w", err)
	}
	return nil
}

// readToken returns the kept restore token, if any.
func readToken(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeToken keeps a restore token, readable only by this user.
func writeToken(path, tok string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
