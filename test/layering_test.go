package test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// DESIGN.md's layout table, as rules on the import graph of the module's
// non-test code: a package may not import what the rules forbid it (the
// wire protocol, signaling/protocol, anyone may), and go-redis and viper
// each have one importer. Paths are relative to the
// module; a rule on "x" covers x and every package under it.
const module = "github.com/tandemcall/tandem/"

type layerRule struct {
	pkg    string   // the importer ("" = every package)
	never  []string // what it must not import, directly
	only   []string // if set, everything it imports outside the standard library must be one of these (or under them)
	reason string
}

var layerRules = []layerRule{
	{pkg: "sfu", never: []string{"signaling", "turn", "internal/server", "internal/store", "internal/cluster", "internal/config"},
		reason: "the SFU is a library of media: signaling and the node's assembly use it, never the other way"},
	{pkg: "turn", never: []string{"sfu", "signaling", "internal/server", "internal/store", "internal/config"},
		reason: "TURN stands alone beside the SFU"},
	{pkg: "signaling/protocol", only: []string{},
		reason: "the wire protocol is the standard library only, so any client can use it"},
	{pkg: "signaling/callcore", only: []string{"signaling/protocol", "internal/store"},
		reason: "the call core is rules only: no sockets, no media, no shared state, no clock of its own"},
	{pkg: "signaling", never: []string{"internal/server", "turn"},
		reason: "signaling is below the node's assembly and does not know TURN"},
	{pkg: "cmd/tandem", never: []string{"signaling", "sfu", "turn"},
		reason: "the command reaches the server through internal/server and the admin API's own types"},
	{pkg: "internal/client", never: []string{"signaling", "sfu", "turn", "internal/server"},
		reason: "the Go client speaks the protocol, as any client would"},
	{pkg: "internal/agent", never: []string{"signaling", "sfu", "turn", "internal/server"},
		reason: "the desktop agent is a client"},
	{pkg: "internal/accounts", never: []string{"signaling", "sfu", "turn", "internal/server", "internal/cluster", "internal/config"},
		reason: "accounts sit beside signaling: the server wires them together"},
	{pkg: "internal/auth", never: []string{"signaling", "sfu", "turn", "internal/server", "internal/store", "internal/cluster"}, reason: "a leaf"},
	{pkg: "internal/store", never: []string{"signaling", "sfu", "turn", "internal/server", "internal/cluster"}, reason: "a leaf"},
	{pkg: "internal/cluster", never: []string{"signaling", "sfu", "turn", "internal/server"}, reason: "a transport below signaling"},
	{pkg: "internal/config", never: []string{"signaling", "sfu", "turn", "internal/server", "internal/store"}, reason: "a leaf"},
	{pkg: "internal/adminapi", never: []string{"signaling", "sfu", "turn", "internal/server"}, reason: "wire types, a leaf"},
	{pkg: "internal/clock", only: []string{}, reason: "the call timers' clock is the standard library only"},
	{pkg: "internal/webpush", only: []string{}, reason: "Web Push is the standard library only"},
	{pkg: "internal/sdpfrag", never: []string{"signaling", "sfu", "turn", "internal/server"}, reason: "a leaf"},
	{pkg: "internal/testkit", never: []string{"signaling", "sfu", "turn"}, reason: "shared by every package's tests"},
}

// singleImporters are third-party packages one package alone may import.
var singleImporters = map[string]string{
	"github.com/redis/go-redis": "internal/store",
	"github.com/spf13/viper":    "internal/config",
}

// TestLayering: the import graph keeps DESIGN.md's layers.
func TestLayering(t *testing.T) {
	graph := moduleImports(t, "..")
	if len(graph) < 20 || graph["sfu"] == nil || graph["signaling"] == nil {
		t.Fatalf("read %d packages; is the test run from test/?", len(graph))
	}
	for _, v := range checkLayers(graph) {
		t.Error(v)
	}
}

// TestLayeringCatchesViolations: the check finds each kind of violation
// in a graph that has them, so TestLayering passing means something.
func TestLayeringCatchesViolations(t *testing.T) {
	graph := map[string][]string{
		"sfu":                {"github.com/pion/webrtc/v4", module + "signaling", module + "internal/rtpcodec"},
		"signaling":          {module + "sfu", "github.com/redis/go-redis/v9"},
		"signaling/protocol": {"encoding/json", "github.com/x/y"},
		"internal/store":     {"github.com/redis/go-redis/v9"},
		"internal/config":    {"github.com/spf13/viper"},
		"internal/cluster":   {"github.com/spf13/viper/sub"},
	}
	got := checkLayers(graph)
	for _, want := range []string{
		"sfu imports signaling",
		"signaling/protocol imports github.com/x/y",
		"signaling imports github.com/redis/go-redis/v9",
		"internal/cluster imports github.com/spf13/viper/sub",
	} {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, want) }) {
			t.Errorf("not reported: %s (got %q)", want, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d violations reported, want 4: %q", len(got), got)
	}
}

// under reports whether pkg is p or below it.
func under(pkg, p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") }

// checkLayers returns the rules graph breaks, one line each.
func checkLayers(graph map[string][]string) []string {
	var out []string
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		for _, imp := range graph[pkg] {
			local, inModule := strings.CutPrefix(imp, module)
			for _, r := range layerRules {
				if !under(pkg, r.pkg) || r.pkg == "signaling" && under(pkg, "signaling/protocol") {
					continue
				}
				if inModule && !under(local, "signaling/protocol") && slices.ContainsFunc(r.never, func(n string) bool { return under(local, n) }) {
					out = append(out, pkg+" imports "+local+": "+r.reason)
				}
				if r.only != nil && isThirdParty(imp) && !slices.ContainsFunc(r.only, func(o string) bool { return under(local, o) }) {
					out = append(out, pkg+" imports "+imp+": "+r.reason)
				}
			}
			for dep, owner := range singleImporters {
				if under(imp, dep) && !under(pkg, owner) {
					out = append(out, pkg+" imports "+imp+": only "+owner+" may")
				}
			}
		}
	}
	return out
}

// isThirdParty reports whether imp is outside the standard library.
func isThirdParty(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return strings.Contains(first, ".")
}

// moduleImports reads the imports of every non-test Go file under root,
// by package directory relative to root.
func moduleImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, is := range f.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			if !slices.Contains(graph[pkg], imp) {
				graph[pkg] = append(graph[pkg], imp)
			}
		}
		if graph[pkg] == nil {
			graph[pkg] = []string{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}
