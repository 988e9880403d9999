package deploy

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tandemcall/tandem/internal/config"
)

// exampleConfig lists every configuration key with its default; the
// image starts with it (--config /etc/tandem/tandem.yaml).
const exampleConfig = "../configs/tandem.yaml"

// testSecret stands for TANDEM_AUTH_SECRET wherever the files take it from
// outside (the shell, a Secret).
const testSecret = "deploy-test-secret-deploy-test-secret-0123"

// Stand-ins for what Kubernetes fills in from the pod.
var fieldRefs = map[string]string{
	"metadata.name": "tandem-0",
	"status.hostIP": "192.0.2.10",
	"status.podIP":  "192.0.2.10",
	"spec.nodeName": "k8s-node-a",
}

// doc is one YAML document of a file.
type doc struct {
	file string
	v    map[string]any
}

// readDocs parses every YAML document of the files matching pattern.
func readDocs(t *testing.T, pattern string) []doc {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	var out []doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for i := 0; ; i++ {
			var v any
			err := dec.Decode(&v)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d does not parse: %v", f, i+1, err)
			}
			if v == nil {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: document %d is a %T, want a mapping", f, i+1, v)
			}
			out = append(out, doc{file: f, v: m})
		}
	}
	return out
}

// envNames is the TANDEM_* variable of every configuration key, read from
// the example configuration (kept complete by internal/config's tests).
func envNames(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", exampleConfig, err)
	}
	names := map[string]bool{config.EnvPrefix + "_CONFIG": true} // the config file
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			key := prefix + k
			names[config.EnvPrefix+"_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))] = true
		}
	}
	walk("", root)
	if !names["TANDEM_REDIS_ADDRS"] || !names["TANDEM_SHUTDOWN_DRAIN_TIMEOUT"] {
		t.Fatalf("%s: keys not found where expected: %v", exampleConfig, names)
	}
	return names
}

var tandemVar = regexp.MustCompile(`TANDEM_[A-Z0-9_]*[A-Z0-9]`)

// tandemVars finds every TANDEM_* name in v's keys and values: variables
// set in a container and variables a file takes from the shell (which
// must be real keys too, or `tandem serve` run from that shell refuses to
// start).
func tandemVars(v any, found map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			tandemVars(k, found)
			tandemVars(x, found)
		}
	case []any:
		for _, x := range v {
			tandemVars(x, found)
		}
	case string:
		for _, m := range tandemVar.FindAllString(v, -1) {
			found[m] = true
		}
	}
}

func TestYAMLParsesAndNamesRealKeys(t *testing.T) {
	names := envNames(t)
	docs := append(readDocs(t, "compose/*.yml"), readDocs(t, "kubernetes/*.yaml")...)
	perFile := map[string]map[string]bool{}
	for _, d := range docs {
		if perFile[d.file] == nil {
			perFile[d.file] = map[string]bool{}
		}
		tandemVars(d.v, perFile[d.file])
	}
	total := 0
	for file, found := range perFile {
		for name := range found {
			total++
			if !names[name] {
				t.Errorf("%s: %s is not a configuration key (see %s); the server refuses unknown TANDEM_* variables", file, name, exampleConfig)
			}
		}
	}
	if total == 0 {
		t.Error("no TANDEM_* variable found in the deployment files")
	}
}

// ---- helpers for decoded YAML ----

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// load runs the server's own configuration loader on env, the way the
// image starts (with the example configuration as its file).
func load(t *testing.T, where string, env map[string]string) config.Config {
	t.Helper()
	environ := []string{"TANDEM_CONFIG=" + exampleConfig}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(nil, environ)
	if err != nil {
		t.Fatalf("%s: the server would not start with this environment: %v", where, err)
	}
	return cfg
}

func port(t *testing.T, where, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %q has no port", where, hostport)
	}
	return n
}

// ---- Docker Compose ----

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate expands ${VAR}, ${VAR:-default} and ${VAR:?message} as
// Compose does, with only testSecret set in the shell.
func interpolate(t *testing.T, where, s string) string {
	t.Helper()
	shell := map[string]string{"TANDEM_AUTH_SECRET": testSecret}
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		g := composeVar.FindStringSubmatch(m)
		val, set := shell[g[1]]
		switch g[2] {
		case ":-", "-":
			if !set || (g[2] == ":-" && val == "") {
				return g[3]
			}
		case ":?", "?":
			if !set {
				t.Errorf("%s: ${%s} is required and the test has no value for it", where, g[1])
			}
		}
		return val
	})
}

// composePort is one published port.
type composePort struct {
	host, container int
	proto           string
}

func composePorts(t *testing.T, where string, v any) []composePort {
	t.Helper()
	var out []composePort
	for _, p := range list(v) {
		if m, ok := p.(map[string]any); ok { // long syntax
			host, err1 := strconv.Atoi(str(m["published"]))
			cont, err2 := strconv.Atoi(str(m["target"]))
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: port %v needs numeric published and target", where, m)
			}
			out = append(out, composePort{host, cont, strings.ToLower(cmp.Or(str(m["protocol"]), "tcp"))})
			continue
		}
		s := str(p)
		spec, proto, ok := strings.Cut(s, "/")
		if !ok {
			proto = "tcp"
		}
		parts := strings.Split(spec, ":")
		if len(parts) < 2 {
			t.Fatalf("%s: port %q publishes no fixed host port", where, s)
		}
		host, err1 := strconv.Atoi(parts[len(parts)-2])
		cont, err2 := strconv.Atoi(parts[len(parts)-1])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: port %q is not HOST:CONTAINER[/PROTO] (ranges are not used here)", where, s)
		}
		out = append(out, composePort{host, cont, proto})
	}
	return out
}

func TestCompose(t *testing.T) {
	docs := readDocs(t, "compose/docker-compose.yml")
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml has %d documents, want 1", len(docs))
	}
	services, ok := get(docs[0].v, "services").(map[string]any)
	if !ok {
		t.Fatal("docker-compose.yml has no services")
	}
	published := map[string]string{} // "7882/udp" → service
	var nodes []string
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc := services[name]
		for _, p := range composePorts(t, name, get(svc, "ports")) {
			k := fmt.Sprintf("%d/%s", p.host, p.proto)
			if other, dup := published[k]; dup {
				t.Errorf("services %s and %s both publish %s", other, name, k)
			}
			published[k] = name
		}
		// A Tandem node is built from the repository's Dockerfile.
		if get(svc, "build") != nil {
			nodes = append(nodes, name)
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("Tandem nodes (services built from the repository) = %v, want 3", nodes)
	}

	redis := ""
	ids := map[string]string{}
	secrets := map[string]bool{}
	for _, name := range nodes {
		svc := services[name]
		env := map[string]string{}
		switch e := get(svc, "environment").(type) {
		case map[string]any:
			for k, v := range e {
				env[k] = interpolate(t, name, str(v))
			}
		case []any:
			for _, kv := range e {
				k, v, _ := strings.Cut(str(kv), "=")
				env[k] = interpolate(t, name, v)
			}
		}
		cfg := load(t, name, env)

		id := cfg.Cluster.NodeID
		if id == "" {
			t.Errorf("%s: no TANDEM_CLUSTER_NODE_ID", name)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share the node id %q", other, name, id)
		}
		ids[id] = name
		if len(cfg.Redis.Addrs) == 0 {
			t.Errorf("%s: no TANDEM_REDIS_ADDRS", name)
		} else {
			host, _, _ := net.SplitHostPort(cfg.Redis.Addrs[0])
			if services[host] == nil {
				t.Errorf("%s: Redis at %q, which is no service of this file", name, cfg.Redis.Addrs[0])
			}
			if redis != "" && redis != strings.Join(cfg.Redis.Addrs, ",") {
				t.Errorf("%s: Redis at %v, another node at %s", name, cfg.Redis.Addrs, redis)
			}
			redis = strings.Join(cfg.Redis.Addrs, ",")
		}
		secrets[str(get(svc, "environment", "TANDEM_AUTH_SECRET"))] = true
		if len(cfg.Media.PublicIPs) == 0 {
			t.Errorf("%s: no TANDEM_MEDIA_PUBLIC_IPS: clients would be told the container's address", name)
		}

		// Media: one UDP port, published 1:1, the one the node listens on
		// (and therefore advertises).
		media := port(t, name, cfg.Media.UDPListen)
		var udp []composePort
		httpPublished := false
		for _, p := range composePorts(t, name, get(svc, "ports")) {
			switch {
			case p.proto == "udp":
				udp = append(udp, p)
			case p.container == port(t, name, cfg.HTTP.Listen):
				httpPublished = true
			}
		}
		if len(udp) != 1 {
			t.Errorf("%s publishes %d UDP ports, want 1 (media)", name, len(udp))
		} else if p := udp[0]; p.host != p.container || p.container != media {
			t.Errorf("%s publishes %d:%d/udp and listens for media on %d; all three must be equal", name, p.host, p.container, media)
		}
		if !httpPublished {
			t.Errorf("%s does not publish its HTTP port %s", name, cfg.HTTP.Listen)
		}

		grace, err := time.ParseDuration(str(get(svc, "stop_grace_period")))
		if err != nil {
			grace = 10 * time.Second // Docker's default
		}
		if grace <= cfg.Shutdown.DrainTimeout {
			t.Errorf("%s: stop_grace_period %v is not longer than the drain timeout %v: Docker would kill the node mid-drain", name, grace, cfg.Shutdown.DrainTimeout)
		}
		if d := get(svc, "depends_on"); d == nil || get(d, "redis") == nil && !slices.Contains(list(d), any("redis")) {
			t.Errorf("%s does not depend on redis", name)
		}
	}
	if len(secrets) != 1 {
		t.Errorf("the nodes take TANDEM_AUTH_SECRET from %d different places, want one shared secret", len(secrets))
	}

	// The load balancer, if any, spreads HTTP over every node and probes
	// /readyz.
	if _, ok := services["caddy"]; ok {
		b, err := os.ReadFile("compose/Caddyfile")
		if err != nil {
			t.Fatal(err)
		}
		caddy := string(b)
		for _, name := range nodes {
			if !strings.Contains(caddy, name+":7880") {
				t.Errorf("Caddyfile does not send traffic to %s:7880", name)
			}
		}
		if !regexp.MustCompile(`(?m)^\s*health_uri\s+/readyz\s*$`).MatchString(caddy) {
			t.Error("Caddyfile does not probe /readyz")
		}
	}
}

// ---- Kubernetes ----

func TestKubernetes(t *testing.T) {
	docs := readDocs(t, "kubernetes/*.yaml")
	byKind := map[string][]doc{}
	for _, d := range docs {
		kind := str(d.v["kind"])
		if kind == "" || str(get(d.v, "metadata", "name")) == "" {
			t.Errorf("%s: a document without kind or metadata.name", d.file)
		}
		if get(d.v, "metadata", "namespace") != nil {
			t.Errorf("%s: %s %s sets a namespace; the files are namespace-free", d.file, kind, get(d.v, "metadata", "name"))
		}
		byKind[kind] = append(byKind[kind], d)
	}
	sets := byKind["StatefulSet"]
	if len(sets) != 1 {
		t.Fatalf("%d StatefulSets, want 1 (the Tandem nodes)", len(sets))
	}
	sts := sets[0].v
	pod := get(sts, "spec", "template", "spec")
	var ctr map[string]any
	for _, c := range list(get(pod, "containers")) {
		if str(get(c, "name")) == "tandem" {
			ctr, _ = c.(map[string]any)
		}
	}
	if ctr == nil {
		t.Fatal("the StatefulSet has no container named tandem")
	}

	// The environment, with what Kubernetes fills in replaced by stand-ins.
	env := map[string]string{}
	from := map[string]string{} // variable → fieldRef path
	for _, e := range list(ctr["env"]) {
		name := str(get(e, "name"))
		switch {
		case get(e, "value") != nil:
			env[name] = str(get(e, "value"))
		case get(e, "valueFrom", "fieldRef") != nil:
			path := str(get(e, "valueFrom", "fieldRef", "fieldPath"))
			v, ok := fieldRefs[path]
			if !ok {
				t.Fatalf("env %s: fieldRef %q has no stand-in in this test", name, path)
			}
			env[name], from[name] = v, path
		case get(e, "valueFrom", "secretKeyRef") != nil:
			ref := get(e, "valueFrom", "secretKeyRef")
			if !hasSecretKey(byKind["Secret"], str(get(ref, "name")), str(get(ref, "key"))) {
				t.Errorf("env %s: Secret %s has no key %s in these files", name, get(ref, "name"), get(ref, "key"))
			}
			env[name] = testSecret
		default:
			t.Errorf("env %s: neither value, fieldRef nor secretKeyRef", name)
		}
	}
	cfg := load(t, "StatefulSet", env)

	if get(pod, "hostNetwork") != true {
		t.Error("the StatefulSet does not use hostNetwork: the media UDP port would not be the node's own")
	}
	if str(get(pod, "dnsPolicy")) != "ClusterFirstWithHostNet" {
		t.Error("dnsPolicy is not ClusterFirstWithHostNet: the nodes could not resolve the Redis Service")
	}
	if from["TANDEM_CLUSTER_NODE_ID"] != "metadata.name" {
		t.Error("TANDEM_CLUSTER_NODE_ID does not come from metadata.name: the nodes' ids would not be distinct")
	}
	if len(cfg.Media.PublicIPs) == 0 {
		t.Error("TANDEM_MEDIA_PUBLIC_IPS is not set")
	}
	if len(cfg.Redis.Addrs) == 0 {
		t.Error("TANDEM_REDIS_ADDRS is not set")
	} else if host, _, _ := net.SplitHostPort(cfg.Redis.Addrs[0]); !hasService(byKind["Service"], host) {
		t.Errorf("Redis at %q, which is no Service in these files", cfg.Redis.Addrs[0])
	}

	httpPort := port(t, "StatefulSet", cfg.HTTP.Listen)
	for _, pr := range []struct{ probe, path string }{{"readinessProbe", "/readyz"}, {"livenessProbe", "/healthz"}} {
		g := get(ctr, pr.probe, "httpGet")
		if g == nil {
			t.Errorf("no %s with httpGet", pr.probe)
			continue
		}
		if p := str(get(g, "path")); p != pr.path {
			t.Errorf("%s probes %q, want %s", pr.probe, p, pr.path)
		}
		if p := containerPort(ctr, get(g, "port")); p != httpPort {
			t.Errorf("%s probes port %v, the node serves HTTP on %d", pr.probe, get(g, "port"), httpPort)
		}
	}

	grace := 30 // Kubernetes' default
	if g := get(pod, "terminationGracePeriodSeconds"); g != nil {
		grace, _ = g.(int)
	}
	if time.Duration(grace)*time.Second <= cfg.Shutdown.DrainTimeout {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than the drain timeout %v: the kubelet would kill the node mid-drain", grace, cfg.Shutdown.DrainTimeout)
	}

	antiAffinity := false
	for _, term := range list(get(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")) {
		antiAffinity = antiAffinity || str(get(term, "topologyKey")) == "kubernetes.io/hostname"
	}
	if !antiAffinity {
		t.Error("no required pod anti-affinity on kubernetes.io/hostname: two nodes on one machine would want the same ports")
	}

	// Services: HTTP is load-balanced, media never is.
	labels, _ := get(sts, "spec", "template", "metadata", "labels").(map[string]any)
	headless, http := false, false
	for _, d := range byKind["Service"] {
		sel, _ := get(d.v, "spec", "selector").(map[string]any)
		if len(sel) == 0 || !selects(sel, labels) {
			continue
		}
		for _, p := range list(get(d.v, "spec", "ports")) {
			if strings.EqualFold(str(get(p, "protocol")), "UDP") {
				t.Errorf("Service %s carries UDP port %v: media must reach each node directly", get(d.v, "metadata", "name"), get(p, "port"))
			}
			if containerPort(ctr, cmpAny(get(p, "targetPort"), get(p, "port"))) == httpPort && str(get(d.v, "spec", "clusterIP")) != "None" {
				http = true
			}
		}
		if str(get(d.v, "spec", "clusterIP")) == "None" && str(get(d.v, "metadata", "name")) == str(get(sts, "spec", "serviceName")) {
			headless = true
		}
	}
	if !headless {
		t.Errorf("no headless Service named %q (the StatefulSet's serviceName) selects the nodes", get(sts, "spec", "serviceName"))
	}
	if !http {
		t.Error("no Service exposes the nodes' HTTP port")
	}
}

func cmpAny(a, b any) any {
	if a != nil {
		return a
	}
	return b
}

// containerPort resolves a probe's or Service's port (a number or the name
// of one of the container's ports).
func containerPort(ctr map[string]any, p any) int {
	if n, ok := p.(int); ok {
		return n
	}
	for _, cp := range list(ctr["ports"]) {
		if str(get(cp, "name")) == str(p) {
			n, _ := get(cp, "containerPort").(int)
			return n
		}
	}
	return 0
}

func selects(sel, labels map[string]any) bool {
	for k, v := range sel {
		if str(labels[k]) != str(v) {
			return false
		}
	}
	return true
}

func hasService(services []doc, name string) bool {
	for _, d := range services {
		if str(get(d.v, "metadata", "name")) == name {
			return true
		}
	}
	return false
}

func hasSecretKey(secrets []doc, name, key string) bool {
	for _, d := range secrets {
		if str(get(d.v, "metadata", "name")) != name {
			continue
		}
		if get(d.v, "stringData", key) != nil || get(d.v, "data", key) != nil {
			return true
		}
	}
	return false
}
