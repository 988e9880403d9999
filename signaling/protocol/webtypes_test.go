package protocol

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestWebTypesMatch: the JSDoc types of web/protocol.js, which the web
// client library is checked against, name the same fields as the messages
// here, so the two cannot drift apart unnoticed.
func TestWebTypesMatch(t *testing.T) {
	src, err := os.ReadFile("../../web/protocol.js")
	if err != nil {
		t.Fatal(err)
	}
	goTypes := map[string]any{
		"Party": Party{}, "ICEServer": ICEServer{}, "Welcome": Welcome{}, "Incoming": Incoming{},
		"Accepted": Accepted{}, "Ended": Ended{}, "Joined": Joined{}, "MemberJoined": MemberJoined{},
		"MemberLeft": MemberLeft{}, "SDP": SDP{}, "ICECandidate": ICECandidate{}, "ICE": ICE{},
		"Handoff": Handoff{}, "Resumed": Resumed{}, "Error": Error{}, "Presence": Presence{}, "PersonPresence": PersonPresence{},
	}
	typedef := regexp.MustCompile(`@typedef \{object\} \w+ [^\n]*?\((\w+)\)`)
	prop := regexp.MustCompile(`@property \{[^}]*\} \[?(\w+)`)
	blocks := strings.Split(string(src), "/**")
	seen := map[string]bool{}
	for _, b := range blocks {
		m := typedef.FindStringSubmatch(strings.ReplaceAll(b, "\n *  ", " "))
		if m == nil {
			continue
		}
		name := m[1]
		v, ok := goTypes[name]
		if !ok {
			t.Errorf("web/protocol.js names %s, which is not a message type here (or this test does not know it)", name)
			continue
		}
		seen[name] = true
		var js []string
		for _, p := range prop.FindAllStringSubmatch(b, -1) {
			js = append(js, p[1])
		}
		want := jsonFields(reflect.TypeOf(v))
		slices.Sort(js)
		if !slices.Equal(js, want) {
			t.Errorf("%s: web/protocol.js has %v, the Go type %v", name, js, want)
		}
	}
	for name := range goTypes {
		if !seen[name] {
			t.Errorf("web/protocol.js has no typedef for %s", name)
		}
	}
}

// jsonFields are the JSON names of t's fields, with the header's type but
// not its version or request id, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.Anonymous && f.Type == reflect.TypeOf(Header{}) {
			out = append(out, "type")
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
