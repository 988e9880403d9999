package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// fakeServer is a minimal signaling server on 127.0.0.1. It answers hello
// and hands every later client message to handle, which replies through
// the fakeConn.
type fakeServer struct {
	*httptest.Server
	handle func(fc *fakeConn, msg any)

	mu    sync.Mutex
	conns []*fakeConn
}

// fakeConn is one accepted socket; send is safe for concurrent use.
type fakeConn struct {
	t    testing.TB
	ws   *websocket.Conn
	mu   sync.Mutex
	user string
}

func (fc *fakeConn) send(typ string, m protocol.EncodedMessage) {
	b, err := protocol.Encode(typ, m)
	if err != nil {
		fc.t.Errorf("encode %s: %v", typ, err)
		return
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_ = fc.ws.WriteMessage(websocket.TextMessage, b)
}

func (fc *fakeConn) close(code int, reason string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_ = fc.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason))
	_ = fc.ws.Close()
}

// newFakeServer starts a server. Token "bad" is refused; any other token
// signs in the user named by the token.
func newFakeServer(t testing.TB, handle func(fc *fakeConn, msg any)) *fakeServer {
	t.Helper()
	fs := &fakeServer{handle: handle}
	up := websocket.Upgrader{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		fc := &fakeConn{t: t, ws: ws}
		fs.mu.Lock()
		fs.conns = append(fs.conns, fc)
		fs.mu.Unlock()
		fs.serve(fc)
	}))
	t.Cleanup(fs.stop)
	return fs
}

// stop closes every socket and the server.
func (fs *fakeServer) stop() {
	fs.mu.Lock()
	conns := fs.conns
	fs.mu.Unlock()
	for _, fc := range conns {
		_ = fc.ws.Close()
	}
	fs.Close()
}

func (fs *fakeServer) url() string {
	return "ws" + strings.TrimPrefix(fs.URL, "http") + "/ws"
}

func (fs *fakeServer) serve(fc *fakeConn) {
	_, data, err := fc.ws.ReadMessage()
	if err != nil {
		return
	}
	msg, err := protocol.Decode(data)
	hello, ok := msg.(*protocol.Hello)
	if err != nil || !ok {
		fc.send(protocol.TypeError, &protocol.Error{Code: protocol.CodeHelloRequired, Message: "hello first"})
		fc.close(4001, "hello required")
		return
	}
	if hello.Token == "bad" {
		fc.send(protocol.TypeError, &protocol.Error{Code: protocol.CodeUnauthorized, Message: "bad token"})
		fc.close(4001, "unauthorized")
		return
	}
	fc.user = hello.Token
	fc.send(protocol.TypeWelcome, &protocol.Welcome{
		Protocol: 1, SessionID: "s_1", User: hello.Token, Device: "dev", RingTimeoutMS: 45000,
	})
	for {
		_, data, err := fc.ws.ReadMessage()
		if err != nil {
			return
		}
		msg, err := protocol.Decode(data)
		if err != nil {
			var id struct{ ID string }
			_ = json.Unmarshal(data, &id)
			fc.send(protocol.TypeError, &protocol.Error{Re: id.ID, Code: protocol.CodeBadMessage, Message: err.Error()})
			continue
		}
		if fs.handle != nil {
			fs.handle(fc, msg)
		}
	}
}
