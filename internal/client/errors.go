package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Errors returned by the client.
var (
	// ErrClosed means Close was called.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected means the connection to the server was lost; it is
	// joined with the underlying error (for example a *websocket.CloseError
	// carrying the server's close status).
	ErrDisconnected = errors.New("client: disconnected")
	// ErrBufferFull means too many server messages were left unread; the
	// client closes the connection rather than drop one.
	ErrBufferFull = errors.New("client: message buffer full")
	// ErrQueueFull means the outgoing queue was full and the message could
	// not wait (it was sent from a pion callback).
	ErrQueueFull = errors.New("client: send queue full")
	// ErrNoCallID means an invite ack came back without a call id.
	ErrNoCallID = errors.New("client: ack without call_id")
	// ErrMediaActive means StartMedia was called for a call that already
	// has Media.
	ErrMediaActive = errors.New("client: media already started for this call")
	// ErrNoVideo means there is no remote video track to ask a keyframe of.
	ErrNoVideo = errors.New("client: no remote video track")
	// ErrMediaOptions means StartMedia was given options that do not fit
	// together.
	ErrMediaOptions = errors.New("client: invalid media options")
)

// ServerError is an error message from the server, returned by Dial and
// Request for the reply to their own request.
type ServerError struct {
	Code    string // one of the protocol.Code* constants
	Message string
	Re      string // the request id the error answers
	CallID  string
	// RetryAfter is, for rate_limited from a limit of its own, how long
	// until the same request would be allowed; 0 when not said.
	RetryAfter time.Duration
}

func newServerError(m *protocol.Error) *ServerError {
	return &ServerError{Code: m.Code, Message: m.Message, Re: m.Re, CallID: m.CallID,
		RetryAfter: time.Duration(m.RetryAfterMS) * time.Millisecond}
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server error %s: %s", e.Code, e.Message)
}

// IsCode reports whether err is or wraps a *ServerError with the given code.
func IsCode(err error, code string) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}
