package x11

import (
	"fmt"
	"io"
	"log"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// xgb keeps process-wide tables, and its extension Init functions write to
// them while every open connection's reader goroutine reads them: opening
// a second connection with damage.Init while the first one receives an
// event is a data race. So this package never calls those Init functions.
// It registers, once and before any connection exists, a constructor for
// every extension event and error number that keeps the raw bytes, and it
// looks extensions up per connection itself (initExtension). Typed
// extension events are decoded from the raw bytes where they are needed.
//
// It also silences xgb's logger, which otherwise writes to stderr, for
// example at every connection to a server without an .Xauthority entry.
func init() {
	xgb.Logger = log.New(io.Discard, "", 0)
	for n := 64; n < 128; n++ { // extension events
		if _, ok := xgb.NewEventFuncs[n]; !ok {
			xgb.NewEventFuncs[n] = newExtEvent
		}
	}
	for n := 128; n < 256; n++ { // extension errors
		if _, ok := xgb.NewErrorFuncs[n]; !ok {
			xgb.NewErrorFuncs[n] = newExtError
		}
	}
}

// extEvent is an extension event as it came off the wire (32 bytes).
type extEvent []byte

func newExtEvent(buf []byte) xgb.Event { return extEvent(buf) }

// code is the event number, without the SendEvent bit.
func (e extEvent) code() int      { return int(e[0] & 0x7f) }
func (e extEvent) Bytes() []byte  { return e }
func (e extEvent) String() string { return fmt.Sprintf("extension event %d", e.code()) }

// extError is an extension error as it came off the wire (32 bytes).
type extError []byte

func newExtError(buf []byte) xgb.Error { return extError(buf) }

func (e extError) SequenceId() uint16 { return xgb.Get16(e[2:]) }
func (e extError) BadId() uint32      { return xgb.Get32(e[4:]) }
func (e extError) Error() string {
	return fmt.Sprintf("X error %d (request %d.%d)", e[1], e[10], xgb.Get16(e[8:]))
}

// extension is an X extension as present on one connection.
type extension struct {
	firstEvent int
	firstError int
}

// initExtension looks up the extension name (as spelled by xgb's
// sub-package for it, "MIT-SHM", "XTEST", ...) and records its opcode on c
// so that the sub-package's request functions can be used on c. It
// returns an error wrapping ErrNoExtension when the server lacks it.
func initExtension(c *xgb.Conn, name string) (extension, error) {
	r, err := xproto.QueryExtension(c, uint16(len(name)), name).Reply()
	if err != nil {
		return extension{}, fmt.Errorf("x11: query extension %s: %w", name, err)
	}
	if !r.Present {
		return extension{}, fmt.Errorf("%w: %s", ErrNoExtension, name)
	}
	c.ExtLock.Lock()
	c.Extensions[name] = r.MajorOpcode
	c.ExtLock.Unlock()
	return extension{firstEvent: int(r.FirstEvent), firstError: int(r.FirstError)}, nil
}
