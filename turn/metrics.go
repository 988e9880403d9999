package turn

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// transport is the client-facing transport of a listener.
type transport int

const (
	transportUDP transport = iota
	transportTCP
	transportTLS
	numTransports
)

var transportNames = [numTransports]string{"udp", "tcp", "tls"}

func (t transport) String() string { return transportNames[t] }

// authResult labels tandem_turn_auth_total.
type authResult int

const (
	authOK authResult = iota
	authBadIntegrity
	authExpired
	authMalformed
	authUnknownUser
	authRateLimited
	authRevoked
	numAuthResults
)

var authResultNames = [numAuthResults]string{
	"ok", "bad_integrity", "expired", "malformed", "unknown_user", "rate_limited", "revoked",
}

// quotaReason labels tandem_turn_quota_rejections_total.
type quotaReason int

const (
	quotaUserAllocations quotaReason = iota
	quotaTotalAllocations
	quotaPermissions
	quotaBandwidth
	quotaPreAllocateTimeout
	quotaTLSHandshake
	numQuotaReasons
)

var quotaReasonNames = [numQuotaReasons]string{
	"user_allocations", "total_allocations", "permissions", "bandwidth",
	"pre_allocate_timeout", "tls_handshake",
}

// direction labels the relayed traffic counters.
type direction int

const (
	toPeer direction = iota
	fromPeer
	numDirections
)

var directionNames = [numDirections]string{"to_peer", "from_peer"}

// metrics holds every counter of the server as atomics. Stats reads them
// and the Prometheus collector exports them, so the two never disagree.
type metrics struct {
	allocations      [numTransports]atomic.Int64
	allocationsTotal [numTransports]atomic.Uint64
	auth             [numAuthResults]atomic.Uint64
	peerDenied       [len(peerDenyReasons)]atomic.Uint64
	quota            [numQuotaReasons]atomic.Uint64
	packets          [numDirections]atomic.Uint64
	bytes            [numDirections]atomic.Uint64
	sendDropped      atomic.Uint64 // packets a full UDP send queue dropped
}

func (m *metrics) authResult(r authResult)     { m.auth[r].Add(1) }
func (m *metrics) quotaRejected(r quotaReason) { m.quota[r].Add(1) }

func (m *metrics) relayed(d direction, n int) {
	m.packets[d].Add(1)
	m.bytes[d].Add(uint64(n)) //nolint:gosec // n is a packet length
}

func (m *metrics) peerDeniedFor(reason string) {
	for i, r := range peerDenyReasons {
		if r == reason {
			m.peerDenied[i].Add(1)
			return
		}
	}
}

// Stats is a snapshot of the server's counters, keyed by the label values
// of the matching Prometheus metrics.
type Stats struct {
	Allocations      map[string]int64  // current, by transport (udp, tcp, tls)
	AllocationsTotal map[string]uint64 // created, by transport
	Auth             map[string]uint64 // by result
	PeerDenied       map[string]uint64 // by reason
	QuotaRejections  map[string]uint64 // by reason
	RelayedPackets   map[string]uint64 // by direction (to_peer, from_peer)
	RelayedBytes     map[string]uint64 // by direction
	SendDropped      uint64            // packets dropped because a UDP socket's send queue was full
}

func (m *metrics) snapshot() Stats {
	s := Stats{
		Allocations:      map[string]int64{},
		AllocationsTotal: map[string]uint64{},
		Auth:             map[string]uint64{},
		PeerDenied:       map[string]uint64{},
		QuotaRejections:  map[string]uint64{},
		RelayedPackets:   map[string]uint64{},
		RelayedBytes:     map[string]uint64{},
		SendDropped:      m.sendDropped.Load(),
	}
	for i, n := range transportNames {
		s.Allocations[n] = m.allocations[i].Load()
		s.AllocationsTotal[n] = m.allocationsTotal[i].Load()
	}
	for i, n := range authResultNames {
		s.Auth[n] = m.auth[i].Load()
	}
	for i, n := range peerDenyReasons {
		s.PeerDenied[n] = m.peerDenied[i].Load()
	}
	for i, n := range quotaReasonNames {
		s.QuotaRejections[n] = m.quota[i].Load()
	}
	for i, n := range directionNames {
		s.RelayedPackets[n] = m.packets[i].Load()
		s.RelayedBytes[n] = m.bytes[i].Load()
	}
	return s
}

// collector exports metrics to Prometheus.
type collector struct {
	m *metrics

	allocations, allocationsTotal, auth, peerDenied, quota, packets, bytes, sendDropped *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(m *metrics) *collector {
	return &collector{
		m: m,
		allocations: prometheus.NewDesc("tandem_turn_allocations",
			"Current TURN allocations by client transport.", []string{"transport"}, nil),
		allocationsTotal: prometheus.NewDesc("tandem_turn_allocations_total",
			"TURN allocations created by client transport.", []string{"transport"}, nil),
		auth: prometheus.NewDesc("tandem_turn_auth_total",
			"TURN authentication results.", []string{"result"}, nil),
		peerDenied: prometheus.NewDesc("tandem_turn_peer_denied_total",
			"Permissions, channel binds and packets refused by the peer policy.", []string{"reason"}, nil),
		quota: prometheus.NewDesc("tandem_turn_quota_rejections_total",
			"Requests, packets and connections refused by a quota or limit.", []string{"reason"}, nil),
		packets: prometheus.NewDesc("tandem_turn_relayed_packets_total",
			"Packets relayed between clients and peers.", []string{"direction"}, nil),
		bytes: prometheus.NewDesc("tandem_turn_relayed_bytes_total",
			"Payload bytes relayed between clients and peers.", []string{"direction"}, nil),
		sendDropped: prometheus.NewDesc("tandem_turn_send_dropped_total",
			"Packets dropped because a UDP socket's send queue was full.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.allocations, c.allocationsTotal, c.auth, c.peerDenied, c.quota, c.packets, c.bytes, c.sendDropped,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.snapshot()
	for k, v := range s.Allocations {
		ch <- prometheus.MustNewConstMetric(c.allocations, prometheus.GaugeValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(c.sendDropped, prometheus.CounterValue, float64(s.SendDropped))
	counters := []struct {
		d *prometheus.Desc
		v map[string]uint64
	}{
		{c.allocationsTotal, s.AllocationsTotal},
		{c.auth, s.Auth},
		{c.peerDenied, s.PeerDenied},
		{c.quota, s.QuotaRejections},
		{c.packets, s.RelayedPackets},
		{c.bytes, s.RelayedBytes},
	}
	for _, cv := range counters {
		for k, v := range cv.v {
			ch <- prometheus.MustNewConstMetric(cv.d, prometheus.CounterValue, float64(v), k)
		}
	}
}
