package test

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tandemcall/tandem/internal/client"
)

// Link impairments for one subscriber. The subscriber's "sub"
// PeerConnection binds its ICE socket in a port range of its own
// (client.MediaOptions.ReceivePorts), so rules matching that destination
// port shape only what the SFU sends to it (its downlink); everything else
// on lo stays as it was. netem is not used: kernels without sch_netem are
// common (this project's CI machine is one), and nftables' numgen and
// HTB/TBF do the same jobs. Both helpers only work inside the namespace
// made by inPrivateNetns.

// nftTable is the nftables table the loss rule lives in.
const nftTable = "tandem_impair"

// dropDownlink makes nftables drop percent % of the UDP packets sent to
// ports, each independently at random: the loss of a poor Wi-Fi or
// cellular last hop in front of one subscriber. The packets are dropped as
// they arrive (input hook), not as they leave: a drop on output fails the
// sender's sendmsg with EPERM, which no real link does, and a batching
// sender (sendmmsg) sends the refused datagram again.
func dropDownlink(t *testing.T, ports client.PortRange, percent int) {
	t.Helper()
	mustBePrivateNetns(t)
	rules := fmt.Sprintf(`table inet %s {
	chain input {
		type filter hook input priority filter; policy accept;
		udp dport %[2]d-%[3]d counter
		udp dport %[2]d-%[3]d numgen random mod 100 < %[4]d counter drop
	}
}
`, nftTable, ports.Min, ports.Max, percent)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f -: %v: %s\nrules:\n%s", err, bytesTrim(out), rules)
	}
}

var nftCounter = regexp.MustCompile(`counter packets (\d+)`)

// linkCount is what dropDownlink's rules counted.
type linkCount struct {
	sent, dropped uint64 // packets that reached the ports' link; of those, dropped
}

func (c linkCount) sub(d linkCount) linkCount {
	return linkCount{c.sent - d.sent, c.dropped - d.dropped}
}

// downlinkCount reads dropDownlink's counters.
func downlinkCount(t *testing.T) linkCount {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "inet", nftTable).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table: %v: %s", err, bytesTrim(out))
	}
	m := nftCounter.FindAllSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("want two counters in the loss rules:\n%s", out)
	}
	var n [2]uint64
	for i := range n {
		if n[i], err = strconv.ParseUint(string(m[i][1]), 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	return linkCount{sent: n[0], dropped: n[1]}
}

// capDownlink limits the UDP packets sent to ports to kbits kbit/s: HTB
// puts them in a class of that rate (everything else on lo goes to a
// 10 Gbit/s default class), and a TBF inside holds at most 50 ms of queue,
// as a home router's shaper would, dropping what does not fit. The u32
// filter matches a port range by mask, so ports must be an aligned power
// of two in size (20000–20015, for example).
func capDownlink(t *testing.T, ports client.PortRange, kbits int) {
	t.Helper()
	mustBePrivateNetns(t)
	size := int(ports.Max) - int(ports.Min) + 1
	if size <= 0 || size&(size-1) != 0 || int(ports.Min)%size != 0 {
		t.Fatalf("port range %d–%d cannot be matched by a mask", ports.Min, ports.Max)
	}
	mask := 0xffff &^ (size - 1)
	rate := strconv.Itoa(kbits) + "kbit"
	for _, args := range [][]string{
		{"qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10"},
		{"class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"},
		{"class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate},
		{"qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "tbf", "rate", rate, "burst", "8kb", "latency", "50ms"},
		{"filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32",
			"match", "ip", "protocol", "17", "0xff",
			"match", "ip", "dport", strconv.Itoa(int(ports.Min)), fmt.Sprintf("0x%04x", mask),
			"flowid", "1:20"},
	} {
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
			t.Fatalf("tc %s: %v: %s", strings.Join(args, " "), err, bytesTrim(out))
		}
	}
}

// tcStats returns `tc -s qdisc show dev lo`, for the log.
func tcStats(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("tc", "-s", "qdisc", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		t.Fatalf("tc -s qdisc show: %v: %s", err, bytesTrim(out))
	}
	return bytesTrim(out)
}
