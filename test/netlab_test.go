package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/config"
)

// The network lab: a small internet in network namespaces the test makes.
//
// The test itself runs in a private namespace (inPrivateNetns), which
// plays the internet: the server listens there on "public" addresses
// (labServerIP, labTURNIP, labServerIP6, on its loopback). Each home network is two more
// namespaces, a router and a host behind it, joined by veth pairs:
//
//	host 10.N.0.2 ── lan ── router 10.N.0.1 / wan 100.64.N.2 ── internet 100.64.N.1
//
// The router forwards, and translates as its kind says (labNAT). A device
// placed in a home — Chromium, a Go client or the agent, each its own
// process — reaches the server only through that router: its private
// address is unknown to the internet, as at home. Every namespace is held
// by a `sleep` process the lab started and dies with it; nothing is named
// in /run/netns and nothing touches the namespace the tests started in.
const (
	labServerIP  = "203.0.113.10" // signaling (HTTPS on 443) and media
	labTURNIP    = "203.0.113.11" // TURN: UDP and TCP on 3478, TLS on 443
	labServerIP6 = "2001:db8:ff::10"
)

// labNAT is what a home's router does to its traffic.
type labNAT int

const (
	// natPortPreserving is the common home router: source NAT that keeps a
	// flow's source port when it can, so one socket keeps one public
	// port whatever it talks to (endpoint-independent mapping; Linux
	// conntrack filters replies per flow).
	natPortPreserving labNAT = iota
	// natSymmetric gives every new flow a random public port (nftables
	// masquerade fully-random): what a peer learns of the mapping for one
	// destination is useless to reach it from another.
	natSymmetric
	// natTCP443 lets out only TCP to port 443, as a hotel or an office
	// firewall does; UDP goes nowhere.
	natTCP443
	// natIPv6Only is a home with only IPv6 addresses, routed, no NAT.
	natIPv6Only
)

func (n labNAT) String() string {
	return [...]string{"port-preserving NAT", "symmetric NAT", "TCP 443 only", "IPv6 only"}[n]
}

// lab is one test's small internet.
type lab struct {
	t     *testing.T
	homes int
	// certFile is the CA that signed the server's certificate, for
	// clients to trust; certPEM and keyPEM are the server's.
	caFile, certFile, keyFile string
}

// netns is a network namespace held by a process the lab started.
type netns struct {
	name string
	path string // /proc/PID/ns/net
	proc *exec.Cmd
}

// home is a home network: a router and one host behind it.
type home struct {
	name         string
	nat          labNAT
	router, host *netns
	hostIP       string // the host's own address
	publicIP     string // what the internet sees (the router's WAN address)
	wan          string // the internet's side of the WAN link, for netem
}

// newLab turns the test's private namespace into the internet: the
// server's public addresses, forwarding on, and a
// certificate for them. The caller has already called inPrivateNetns.
func newLab(t *testing.T) *lab {
	t.Helper()
	mustBePrivateNetns(t)
	l := &lab{t: t}
	l.ip("addr", "add", labServerIP+"/32", "dev", "lo")
	l.ip("addr", "add", labTURNIP+"/32", "dev", "lo")
	l.ip("-6", "addr", "add", labServerIP6+"/128", "dev", "lo", "nodad")
	sysctl(t, nil, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	l.caFile, l.certFile, l.keyFile = labCertificates(t, labServerIP, labTURNIP, labServerIP6)
	return l
}

// ip runs ip in the internet (the test's own private namespace).
func (l *lab) ip(args ...string) { l.t.Helper(); ipCmd(l.t, args...) }

// newNetns starts a process holding a new network namespace.
func (l *lab) newNetns(name string) *netns {
	t := l.t
	t.Helper()
	cmd := exec.Command("unshare", "-n", "--", "sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// unshare makes the namespace, then becomes sleep.
		if ns, err := os.Readlink(path); err == nil && ns != self {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); strings.HasSuffix(exe, "/sleep") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: its process never entered a namespace of its own", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := &netns{name: name, path: path, proc: cmd}
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

// run runs a command in the namespace and fails the test if it fails.
func (n *netns) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := n.command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s %s: %v: %s", n.name, name, strings.Join(args, " "), err, bytesTrim(out))
	}
	return string(out)
}

// command is a command to be run in the namespace.
func (n *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.path, "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// nft loads an nftables ruleset in the namespace.
func (n *netns) nft(t *testing.T, rules string) {
	t.Helper()
	cmd := n.command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: nft -f -: %v: %s\n%s", n.name, err, bytesTrim(out), rules)
	}
}

// sysctl sets kernel settings in n (nil: the test's own namespace).
func sysctl(t *testing.T, n *netns, settings ...string) {
	t.Helper()
	for _, s := range settings {
		if n == nil {
			mustBePrivateNetns(t)
			if out, err := exec.Command("sysctl", "-qw", s).CombinedOutput(); err != nil {
				t.Fatalf("sysctl %s: %v: %s", s, err, bytesTrim(out))
			}
			continue
		}
		n.run(t, "sysctl", "-qw", s)
	}
}

// linkShape is what a home's WAN link does to every packet, each way:
// delay it, drop some at random, and carry no more than a rate. This kernel has no sch_netem (see
// linkshape_test.go), so a shaped link is two TUN devices, one at each
// end, and the test carries the packets between them (tunLink).
type linkShape struct {
	Delay   time.Duration
	LossPct float64
	// RateKbps caps what the link carries each way; 0 for no cap.
	RateKbps int
}

// home builds a home network of the given kind; shape, when given, is
// its WAN link's delay and loss.
func (l *lab) home(name string, nat labNAT, shape ...linkShape) *home {
	t := l.t
	t.Helper()
	l.homes++
	i := l.homes
	h := &home{name: name, nat: nat, router: l.newNetns(name + "-router"), host: l.newNetns(name)}
	wan, rwan := fmt.Sprintf("wan%d", i), fmt.Sprintf("rwan%d", i)
	lan, hlan := fmt.Sprintf("lan%d", i), fmt.Sprintf("hlan%d", i)
	h.wan = wan
	// The WAN link: internet ↔ router.
	if len(shape) > 0 {
		tunLink(t, wan, rwan, shape[0])
	} else {
		l.ip("link", "add", wan, "type", "veth", "peer", "name", rwan)
	}
	l.ip("link", "set", rwan, "netns", h.router.path)
	l.ip("link", "set", wan, "up")
	h.router.run(t, "ip", "link", "set", rwan, "name", "wan0")
	h.router.run(t, "ip", "link", "set", "wan0", "up")
	// The LAN link: router ↔ host.
	h.router.run(t, "ip", "link", "add", lan, "type", "veth", "peer", "name", hlan)
	h.router.run(t, "ip", "link", "set", hlan, "netns", h.host.path)
	h.router.run(t, "ip", "link", "set", lan, "name", "lan0")
	h.router.run(t, "ip", "link", "set", "lan0", "up")
	h.host.run(t, "ip", "link", "set", hlan, "name", "eth0")
	h.host.run(t, "ip", "link", "set", "eth0", "up")
	sysctl(t, h.router, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

	if nat == natIPv6Only {
		// Routed, no NAT, and no IPv4 at all behind the router.
		wanNet := fmt.Sprintf("2001:db8:%x::", 0x100+i)
		lanNet := fmt.Sprintf("2001:db8:%x::", 0x200+i)
		l.ip("-6", "addr", "add", wanNet+"1/64", "dev", wan, "nodad")
		h.router.run(t, "ip", "-6", "addr", "add", wanNet+"2/64", "dev", "wan0", "nodad")
		h.router.run(t, "ip", "-6", "addr", "add", lanNet+"1/64", "dev", "lan0", "nodad")
		h.router.run(t, "ip", "-6", "route", "add", "default", "via", wanNet+"1")
		h.host.run(t, "ip", "-6", "addr", "add", lanNet+"2/64", "dev", "eth0", "nodad")
		h.host.run(t, "ip", "-6", "route", "add", "default", "via", lanNet+"1")
		// The server's media socket listens on [::]: what it sends leaves
		// from the route's preferred source, which must be the address
		// it advertises (docs/operations.md, "IPv6").
		l.ip("-6", "route", "add", lanNet+"/64", "via", wanNet+"2", "src", labServerIP6)
		h.hostIP, h.publicIP = lanNet+"2", lanNet+"2"
		h.settle(t)
		return h
	}
	wanIP, routerWAN := fmt.Sprintf("100.64.%d.1", i), fmt.Sprintf("100.64.%d.2", i)
	l.ip("addr", "add", wanIP+"/30", "dev", wan)
	l.ip("route", "replace", fmt.Sprintf("100.64.%d.0/30", i), "dev", wan, "src", labServerIP)
	h.router.run(t, "ip", "addr", "add", routerWAN+"/30", "dev", "wan0")
	h.router.run(t, "ip", "route", "add", "default", "via", wanIP)
	h.router.run(t, "ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", i), "dev", "lan0")
	h.host.run(t, "ip", "addr", "add", fmt.Sprintf("10.%d.0.2/24", i), "dev", "eth0")
	h.host.run(t, "ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i))
	h.hostIP, h.publicIP = fmt.Sprintf("10.%d.0.2", i), routerWAN

	masq := "masquerade persistent"
	forward := "policy accept;"
	switch nat {
	case natSymmetric:
		masq = "masquerade fully-random"
	case natTCP443:
		forward = `policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" tcp dport 443 accept`
	}
	h.router.nft(t, fmt.Sprintf(`table inet home {
	chain forward {
		type filter hook forward priority filter; %s
		iifname "wan0" ct state new counter drop comment "unsolicited"
	}
	chain post {
		type nat hook postrouting priority srcnat;
		oifname "wan0" counter %s comment "mapped"
	}
}
`, forward, masq))
	h.settle(t)
	return h
}

// settle waits until the home's addresses are final: the kernel adds an
// IPv6 link-local address to each link a second or so after it comes up
// (duplicate address detection), and a browser started before that sees
// its network change and fails what it is loading (ERR_NETWORK_CHANGED).
func (h *home) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range []*netns{h.router, h.host} {
		for strings.TrimSpace(n.run(t, "ip", "-6", "addr", "show", "tentative")) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: IPv6 addresses still tentative after 10 s:\n%s", n.name, n.run(t, "ip", "-6", "addr"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// browserIn starts a headless Chromium whose network is the home's host:
// the same browser as newBrowser, its process started in that namespace.
// DevTools runs over the pipe, so the test needs no route to it.
func (l *lab) browserIn(h *home, name string) *browser {
	l.t.Helper()
	return newBrowser(l.t, name,
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"nsenter", "--net=" + h.host.path, "--", cmd.Path}, cmd.Args[1:]...)
			cmd.Path = lookPath(l.t, "nsenter")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		}))
}

func lookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found", name)
	}
	return p
}

// labCertificates makes a CA and a certificate it signed for the given
// addresses, in files under the test's temporary directory.
func labCertificates(t *testing.T, ips ...string) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Tandem lab CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ips[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// startServer starts a node on the lab's public addresses, as it runs on
// the internet: not in dev mode, HTTPS on 443 of its IPv4 and IPv6
// addresses, media on one dual-stack UDP port, and TURN on UDP and TCP
// 3478 and TLS 443 of an IPv4 address of its own.
func (l *lab) startServer(tweak func(*config.Config)) *testServer {
	t := l.t
	t.Helper()
	cfg := config.Default(false)
	cfg.DataDir = t.TempDir()
	cfg.Auth.Secret = strings.Repeat("lab-secret-", 4)
	cfg.HTTP.Listen = labServerIP + ":443"
	cfg.HTTP.ListenAlso = []string{"[" + labServerIP6 + "]:443"}
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = l.certFile, l.keyFile
	cfg.Media.UDPListen = "[::]:0"
	cfg.Media.PublicIPs = []string{labServerIP, labServerIP6}
	cfg.TURN.Enabled = true
	cfg.TURN.UDPListen = labTURNIP + ":3478"
	cfg.TURN.TCPListen = labTURNIP + ":3478"
	cfg.TURN.TLSListen = labTURNIP + ":443"
	// Relays on the server's own address, as on a host with one: the media
	// socket on [::] answers a relay from the address the relay wrote to.
	cfg.TURN.RelayIP = labServerIP
	cfg.TURN.PublicHost = labTURNIP
	if tweak != nil {
		tweak(&cfg)
	}
	return startWith(t, cfg)
}

// wsURL is the signaling address a device in the lab dials: the server's
// IPv4 address, or its IPv6 one from an IPv6-only home (as a name with
// both records would resolve there).
func (l *lab) wsURL(h ...*home) string {
	if len(h) > 0 && h[0].nat == natIPv6Only {
		return "wss://[" + labServerIP6 + "]/ws"
	}
	return "wss://" + labServerIP + "/ws"
}

// moveHost takes h's host off its own network and puts it behind to's
// router, as a laptop leaves home for a hotel: its address goes, and a new
// one, on a link of its own behind to's router, comes.
func (l *lab) moveHost(h, to *home) {
	t := l.t
	t.Helper()
	l.homes++
	i := l.homes
	lan, hlan := fmt.Sprintf("mv%d", i), fmt.Sprintf("hmv%d", i)
	to.router.run(t, "ip", "link", "add", lan, "type", "veth", "peer", "name", hlan)
	to.router.run(t, "ip", "link", "set", hlan, "netns", h.host.path)
	to.router.run(t, "ip", "link", "set", lan, "up")
	to.router.run(t, "ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", i), "dev", lan)
	if to.nat == natTCP443 {
		to.router.nft(t, fmt.Sprintf(`add rule inet home forward iifname %q oifname "wan0" tcp dport 443 accept`+"\n", lan))
	}
	h.host.run(t, "ip", "link", "del", "eth0")
	h.host.run(t, "ip", "link", "set", hlan, "up")
	h.host.run(t, "ip", "addr", "add", fmt.Sprintf("10.%d.0.2/24", i), "dev", hlan)
	h.host.run(t, "ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i))
	h.hostIP, h.publicIP, h.nat = fmt.Sprintf("10.%d.0.2", i), to.publicIP, to.nat
}
