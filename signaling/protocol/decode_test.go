package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	long := strings.Repeat("x", MaxIDLen+1)
	tests := []struct {
		name string
		in   string
		code string // "" = ok
		typ  string
	}{
		{"hello", `{"v":1,"type":"hello","token":"abc"}`, "", TypeHello},
		{"no version is v1", `{"type":"invite","to":"bob","video":true}`, "", TypeInvite},
		{"ringing", `{"type":"ringing","call_id":"c1"}`, "", TypeRinging},
		{"accept", `{"type":"accept","call_id":"c1","end_current":true}`, "", TypeAccept},
		{"sdp offer on pub", `{"type":"sdp","call_id":"c","pc":"pub","kind":"offer","sdp":"v=0"}`, "", TypeSDP},
		{"ice end", `{"type":"ice","call_id":"c","pc":"sub","candidate":{"candidate":""}}`, "", TypeICE},
		{"handoff listen", `{"type":"handoff","call_id":"c","listen":true}`, "", TypeHandoff},
		{"handoff listen with device", `{"type":"handoff","call_id":"c","listen":true,"device":"tv"}`, CodeBadMessage, ""},
		{"ping", `{"type":"ping","id":"7"}`, "", TypePing},
		{"empty", ``, CodeBadMessage, ""},
		{"array", `[1,2]`, CodeBadMessage, ""},
		{"broken json", `{"type":"hello",`, CodeBadMessage, ""},
		{"no type", `{"v":1}`, CodeBadMessage, ""},
		{"unknown type", `{"type":"launch_missiles"}`, CodeUnknownType, ""},
		{"future version", `{"v":2,"type":"hello","token":"t"}`, CodeUnsupportedVersion, ""},
		{"hello without token", `{"type":"hello"}`, CodeBadMessage, ""},
		{"invite without to", `{"type":"invite"}`, CodeBadMessage, ""},
		{"invite into a call", `{"type":"invite","to":"carol","call_id":"c_1"}`, "", TypeInvite},
		{"invite into a bad call id", `{"type":"invite","to":"carol","call_id":"c 1"}`, CodeBadMessage, ""},
		{"join", `{"type":"join","room":"family-1"}`, "", TypeJoin},
		{"join without room", `{"type":"join"}`, CodeBadMessage, ""},
		{"join ptt", `{"type":"join","room":"walkie","mode":"ptt"}`, "", TypeJoin},
		{"join unknown mode", `{"type":"join","room":"walkie","mode":"party"}`, CodeBadMessage, ""},
		{"floor request", `{"type":"floor","call_id":"r_1","action":"request"}`, "", TypeFloor},
		{"floor bad action", `{"type":"floor","call_id":"r_1","action":"grab"}`, CodeBadMessage, ""},
		{"floor without call", `{"type":"floor","action":"release"}`, CodeBadMessage, ""},
		{"handoff pull", `{"type":"handoff","call_id":"c_1"}`, "", TypeHandoff},
		{"handoff push", `{"type":"handoff","call_id":"c_1","device":"laptop"}`, "", TypeHandoff},
		{"handoff without call", `{"type":"handoff"}`, CodeBadMessage, ""},
		{"handoff with a state", `{"type":"handoff","call_id":"c_1","state":"done"}`, CodeBadMessage, ""},
		{"handoff to a bad device", `{"type":"handoff","call_id":"c_1","device":"my tv"}`, CodeBadMessage, ""},
		{"assist with clipboard", `{"type":"assist","call_id":"c_1","helped":"mom","grants":["view","annotate","control","clipboard"]}`, "", TypeAssist},
		{"assist unknown grant", `{"type":"assist_request","call_id":"c_1","grants":["files"]}`, CodeBadMessage, ""},
		{"clipboard", `{"type":"assist_clipboard","call_id":"c_1","text":"Grüße\nline two"}`, "", TypeAssistClipboard},
		{"clipboard empty", `{"type":"assist_clipboard","call_id":"c_1","text":""}`, CodeBadMessage, ""},
		{"clipboard with NUL", `{"type":"assist_clipboard","call_id":"c_1","text":"a\u0000b"}`, CodeBadMessage, ""},
		{"clipboard from the client", `{"type":"assist_clipboard","call_id":"c_1","text":"x","from":"mom"}`, CodeBadMessage, ""},
		{"clipboard without call", `{"type":"assist_clipboard","text":"x"}`, CodeBadMessage, ""},
		{"clipboard too long", `{"type":"assist_clipboard","call_id":"c_1","text":"` + strings.Repeat("x", MaxClipboardBytes+1) + `"}`, CodeBadMessage, ""},
		{"screens", `{"type":"assist_screens","call_id":"c_1","screens":[{"name":"All","x":0,"y":0,"width":1440,"height":600},{"name":"1","x":640,"y":0,"width":800,"height":600}],"shown":1}`, "", TypeAssistScreens},
		{"screens none", `{"type":"assist_screens","call_id":"c_1","screens":[],"shown":0}`, CodeBadMessage, ""},
		{"screens shown outside", `{"type":"assist_screens","call_id":"c_1","screens":[{"name":"All","x":0,"y":0,"width":10,"height":10}],"shown":1}`, CodeBadMessage, ""},
		{"screens empty screen", `{"type":"assist_screens","call_id":"c_1","screens":[{"name":"All","x":0,"y":0,"width":0,"height":10}],"shown":0}`, CodeBadMessage, ""},
		{"screens negative", `{"type":"assist_screens","call_id":"c_1","screens":[{"name":"All","x":-5,"y":0,"width":10,"height":10}],"shown":0}`, CodeBadMessage, ""},
		{"screen pick", `{"type":"assist_screen","call_id":"c_1","screen":2}`, "", TypeAssistScreen},
		{"screen pick negative", `{"type":"assist_screen","call_id":"c_1","screen":-1}`, CodeBadMessage, ""},
		{"view", `{"type":"view","call_id":"c_1","tiles":[{"user":"bob","track":"video","width":640,"height":360},{"user":"ann","track":"video-2","width":0,"height":0}]}`, "", TypeView},
		{"view negative size", `{"type":"view","call_id":"c_1","tiles":[{"user":"bob","track":"video","width":-1,"height":360}]}`, CodeBadMessage, ""},
		{"view huge size", `{"type":"view","call_id":"c_1","tiles":[{"user":"bob","track":"video","width":99999,"height":360}]}`, CodeBadMessage, ""},
		{"view without track", `{"type":"view","call_id":"c_1","tiles":[{"user":"bob","width":1,"height":1}]}`, CodeBadMessage, ""},
		{"view without call", `{"type":"view","tiles":[]}`, CodeBadMessage, ""},
		{"join upper case", `{"type":"join","room":"Family"}`, CodeBadMessage, ""},
		{"join with slash", `{"type":"join","room":"a/b"}`, CodeBadMessage, ""},
		{"join too long", `{"type":"join","room":"` + long[:65] + `"}`, CodeBadMessage, ""},
		{"invite to with space", `{"type":"invite","to":"a b"}`, CodeBadMessage, ""},
		{"invite to too long", `{"type":"invite","to":"` + long + `"}`, CodeBadMessage, ""},
		{"wrong field type", `{"type":"invite","to":5}`, CodeBadMessage, ""},
		{"answer on pub", `{"type":"sdp","call_id":"c","pc":"pub","kind":"answer","sdp":"v=0"}`, CodeBadMessage, ""},
		{"bad pc", `{"type":"sdp","call_id":"c","pc":"x","kind":"offer","sdp":"v=0"}`, CodeBadMessage, ""},
		{"request id too long", `{"type":"ping","id":"` + long + `"}`, CodeBadMessage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if got := typeOf(m); got != tt.typ {
					t.Fatalf("type = %q, want %q", got, tt.typ)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if de.Code != tt.code {
				t.Fatalf("code = %q, want %q (%v)", de.Code, tt.code, de)
			}
		})
	}
}

func TestDecodeKeepsRequestID(t *testing.T) {
	_, err := Decode([]byte(`{"type":"invite","id":"r42"}`))
	var de *DecodeError
	if !errors.As(err, &de) || de.ID != "r42" {
		t.Fatalf("err = %#v, want request id r42", err)
	}
}

func typeOf(m any) string {
	switch v := m.(type) {
	case *Hello:
		return v.Type
	case *Invite:
		return v.Type
	case *CallRef:
		return v.Type
	case *Accept:
		return v.Type
	case *SDP:
		return v.Type
	case *ICE:
		return v.Type
	case *Join:
		return v.Type
	case *Floor:
		return v.Type
	case *View:
		return v.Type
	case *Handoff:
		return v.Type
	case *Media:
		return v.Type
	case *Assist:
		return v.Type
	case *Clipboard:
		return v.Type
	case *AssistScreens:
		return v.Type
	case *AssistPick:
		return v.Type
	case *Header:
		return v.Type
	}
	return "?"
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"hello","token":"abc"}`,
		`{"type":"invite","to":"bob","video":true,"id":"1"}`,
		`{"type":"join","room":"family","id":"2"}`,
		`{"type":"floor","call_id":"r_1","action":"request"}`,
		`{"type":"view","call_id":"c","tiles":[{"user":"bob","track":"video","width":320,"height":180}]}`,
		`{"type":"sdp","call_id":"c","pc":"pub","kind":"offer","sdp":"v=0\r\n"}`,
		`{"type":"ice","call_id":"c","pc":"sub","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"media","call_id":"c","audio":false,"video":true}`,
		`{"type":"accept","call_id":"c","end_current":true}`,
		`{"type":"handoff","call_id":"c","id":"3"}`,
		`{"type":"handoff","call_id":"c","device":"laptop"}`,
		`{"type":"handoff","call_id":"c","state":"done"}`,
		`{"type":"assist_clipboard","call_id":"c","text":"Grüße\n"}`,
		`{"type":"assist_screens","call_id":"c","screens":[{"name":"All","x":0,"y":0,"width":1440,"height":600}],"shown":0}`,
		`{"type":"assist_screen","call_id":"c","screen":1}`,
		`{"v":99}`, `[]`, `null`, `{"type":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		id := RequestID(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *DecodeError", err)
			}
			if de.Code == "" || de.Msg == "" {
				t.Fatalf("error without code or message: %#v", de)
			}
			// An error that names a request names the one RequestID reads.
			if de.ID != "" && de.ID != id {
				t.Fatalf("RequestID %q, but the decode error is for %q", id, de.ID)
			}
			return
		}
		if m == nil {
			t.Fatal("nil message without error")
		}
		// A message that decodes has its id read the same way.
		var h Header
		if json.Unmarshal(bytes.TrimSpace(b), &h) == nil && h.ID != id {
			t.Fatalf("RequestID %q, the message's id %q", id, h.ID)
		}
	})
}

// FuzzDecodeServer: Go clients decode whatever a server sends them.
func FuzzDecodeServer(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"welcome","protocol":1,"session_id":"s","user":"a","device":"d","ice_servers":[]}`))
	f.Add([]byte(`{"type":"ended","call_id":"c","reason":"completed","duration_ms":5}`))
	f.Add([]byte(`{"type":"member_left","call_id":"c","user":"bob","reason":"declined"}`))
	f.Add([]byte(`{"type":"floor","call_id":"r","holder":"a","queue":["b"],"expires_ms":1000}`))
	f.Add([]byte(`{"type":"speakers","call_id":"c","speakers":[{"user":"a","level":80}]}`))
	f.Add([]byte(`{"type":"layers","call_id":"c","track":"video","active":{"q":true,"h":false,"f":false}}`))
	f.Add([]byte(`{"type":"joined","call_id":"r","room":"x","members":[{"user":"a"}]}`))
	f.Add([]byte(`{"type":"error","code":"busy","message":"x"}`))
	f.Add([]byte(`{"type":"handoff","call_id":"c","state":"started","device":"phone","video":true,"members":[{"user":"a","device":"phone"}]}`))
	f.Add([]byte(`{"type":"active_call","call_id":"c","device":"phone","members":[{"user":"a"}]}`))
	f.Add([]byte(`{"type":"resumed","call_id":"c","video":true,"members":[{"user":"a","device":"phone"}]}`))
	f.Add([]byte(`{"type":"watchers","call_id":"r","whep":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeServer(b)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

func BenchmarkDecodeICE(b *testing.B) {
	msg := []byte(`{"v":1,"type":"ice","call_id":"c_abcdefghijklmnop","pc":"pub","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host","sdpMid":"0","sdpMLineIndex":0}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
