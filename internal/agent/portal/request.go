package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// D-Bus names of the portal.
const (
	portalDest     = "org.freedesktop.portal.Desktop"
	portalPath     = "/org/freedesktop/portal/desktop"
	ifaceScreen    = "org.freedesktop.portal.ScreenCast"
	ifaceRemote    = "org.freedesktop.portal.RemoteDesktop"
	ifaceRequest   = "org.freedesktop.portal.Request"
	ifaceSession   = "org.freedesktop.portal.Session"
	responseOK     = 0
	responseCancel = 1 // the person said no
)

// bus is a connection to the portal.
type bus struct {
	conn   *dbus.Conn
	obj    dbus.BusObject
	sender string // the unique name as request paths spell it
}

// newToken returns a fresh handle token.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "tandem" + hex.EncodeToString(b)
}

func connect(conn *dbus.Conn) *bus {
	name := conn.Names()[0]
	return &bus{
		conn:   conn,
		obj:    conn.Object(portalDest, portalPath),
		sender: strings.ReplaceAll(strings.TrimPrefix(name, ":"), ".", "_"),
	}
}

// responseError is a Response other than success.
type responseError struct {
	method string
	code   uint32
}

func (e *responseError) Error() string {
	return fmt.Sprintf("portal: %s answered %d", e.method, e.code)
}

// request calls a portal method that answers through a Request object:
// it subscribes to the Request's Response signal first (the path follows
// from this connection's name and the handle token), calls, and waits
// for the response or ctx. opts is the call's last argument; it gets the
// handle token.
func (b *bus) request(ctx context.Context, method string, opts map[string]dbus.Variant, args ...any) (map[string]dbus.Variant, error) {
	tok := newToken()
	opts["handle_token"] = dbus.MakeVariant(tok)
	path := dbus.ObjectPath(portalPath + "/request/" + b.sender + "/" + tok)
	match := []dbus.MatchOption{
		dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(ifaceRequest), dbus.WithMatchMember("Response"),
	}
	if err := b.conn.AddMatchSignalContext(ctx, match...); err != nil {
		return nil, fmt.Errorf("portal: %s: %w", method, err)
	}
	defer func() { _ = b.conn.RemoveMatchSignal(match...) }()
	sigs := make(chan *dbus.Signal, 4)
	b.conn.Signal(sigs)
	defer b.conn.RemoveSignal(sigs)

	var handle dbus.ObjectPath
	if err := b.obj.CallWithContext(ctx, method, 0, append(args, opts)...).Store(&handle); err != nil {
		return nil, fmt.Errorf("portal: %s: %w", method, err)
	}
	if handle != path { // portals older than 0.9 chose the path themselves
		path = handle
	}
	for {
		select {
		case <-ctx.Done():
			// Close the Request: the dialog goes away.
			_ = b.conn.Object(portalDest, path).Call(ifaceRequest+".Close", 0).Err
			return nil, fmt.Errorf("portal: %s: no answer: %w", method, ctx.Err())
		case s := <-sigs:
			if s.Path != path || s.Name != ifaceRequest+".Response" || len(s.Body) < 2 {
				continue
			}
			code, _ := s.Body[0].(uint32)
			res, _ := s.Body[1].(map[string]dbus.Variant)
			if code != responseOK {
				return res, &responseError{method: method, code: code}
			}
			return res, nil
		}
	}
}

// version reads an interface's version property; 0 if the portal has no
// such interface.
func (b *bus) version(ctx context.Context, iface string) uint32 {
	var v dbus.Variant
	err := b.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, iface, "version").Store(&v)
	if err != nil {
		return 0
	}
	n, _ := v.Value().(uint32)
	return n
}

// property reads a uint32 property of an interface.
func (b *bus) property(ctx context.Context, iface, name string) (uint32, bool) {
	var v dbus.Variant
	if err := b.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, iface, name).Store(&v); err != nil {
		return 0, false
	}
	n, ok := v.Value().(uint32)
	return n, ok
}
