package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/sfu"
)

// sfuCollector exposes the SFU's Totals, read at each scrape: nothing is
// counted twice on the forwarding path for metrics.
type sfuCollector struct {
	sfu *sfu.SFU

	rooms, participants, tracks        *prometheus.Desc
	packetsIn, bytesIn, packets, bytes *prometheus.Desc
	dropped, nacks, retransmits        *prometheus.Desc
	plis, switches, cachedStarts       *prometheus.Desc
	candidates                         *prometheus.Desc
}

func newSFUCollector(s *sfu.SFU) *sfuCollector {
	kind := []string{"kind"}
	return &sfuCollector{
		sfu:          s,
		rooms:        prometheus.NewDesc("tandem_sfu_rooms", "Rooms (one per call) holding media.", nil, nil),
		participants: prometheus.NewDesc("tandem_sfu_participants", "Media legs in rooms, WHIP sessions included.", nil, nil),
		tracks:       prometheus.NewDesc("tandem_sfu_tracks", "Tracks published in rooms.", nil, nil),
		packetsIn:    prometheus.NewDesc("tandem_sfu_packets_received_total", "RTP packets received from publishers.", kind, nil),
		bytesIn:      prometheus.NewDesc("tandem_sfu_bytes_received_total", "RTP bytes received from publishers.", kind, nil),
		packets:      prometheus.NewDesc("tandem_sfu_packets_forwarded_total", "RTP packets sent to subscribers.", kind, nil),
		bytes:        prometheus.NewDesc("tandem_sfu_bytes_forwarded_total", "RTP bytes sent to subscribers.", kind, nil),
		dropped: prometheus.NewDesc("tandem_sfu_packets_dropped_total",
			"Packets not forwarded to a subscriber, by reason: send_error, paused (layer off for bandwidth or a hidden tile), keyframe_wait (starting or switching), late (from before a switch), floor (push-to-talk), nack_miss (a retransmission asked for and no longer cached).",
			[]string{"kind", "reason"}, nil),
		nacks:       prometheus.NewDesc("tandem_sfu_nacks_received_total", "NACKed packets subscribers asked for again.", kind, nil),
		retransmits: prometheus.NewDesc("tandem_sfu_retransmits_total", "Packets sent again from the cache for NACKs.", kind, nil),
		plis:        prometheus.NewDesc("tandem_sfu_keyframe_requests_total", "Keyframe requests (PLI) sent to publishers.", nil, nil),
		switches:    prometheus.NewDesc("tandem_sfu_layer_switches_total", "Simulcast layer switches (and starts) of subscribers' video.", nil, nil),
		cachedStarts: prometheus.NewDesc("tandem_sfu_cached_starts_total",
			"Subscribers' video started from the cached last keyframe of its layer rather than a new one.", nil, nil),
		candidates: prometheus.NewDesc("tandem_sfu_ice_candidates_dropped_total",
			"Clients' ICE candidates the SFU did not use, by reason: malformed (refused with an error), mdns (a .local name), transport (TCP), address (unspecified, multicast, broadcast, link-local, foreign loopback or port 0), over_limit (past the per-connection limit; refused with an error).",
			[]string{"reason"}, nil),
	}
}

func (c *sfuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.participants, c.tracks, c.packetsIn, c.bytesIn, c.packets, c.bytes,
		c.dropped, c.nacks, c.retransmits, c.plis, c.switches, c.cachedStarts, c.candidates} {
		ch <- d
	}
}

func (c *sfuCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.sfu.Totals()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(c.rooms, t.Rooms)
	gauge(c.participants, t.Participants)
	gauge(c.tracks, t.Tracks)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, k := range []struct {
		name string
		st   sfu.MediaStats
	}{{"audio", t.Audio}, {"video", t.Video}} {
		st := k.st
		counter(c.packetsIn, st.PacketsReceived, k.name)
		counter(c.bytesIn, st.BytesReceived, k.name)
		counter(c.packets, st.PacketsForwarded, k.name)
		counter(c.bytes, st.BytesForwarded, k.name)
		counter(c.nacks, st.NACKsReceived, k.name)
		counter(c.retransmits, st.Retransmitted, k.name)
		counter(c.dropped, st.PacketsDropped, k.name, "send_error")
		counter(c.dropped, st.SkippedPaused, k.name, "paused")
		counter(c.dropped, st.SkippedKeyframeWait, k.name, "keyframe_wait")
		counter(c.dropped, st.SkippedLate, k.name, "late")
		counter(c.dropped, st.SkippedFloor, k.name, "floor")
		counter(c.dropped, st.NACKMisses, k.name, "nack_miss")
		counter(c.dropped, st.NACKStale, k.name, "nack_stale")
		counter(c.dropped, st.NACKOverBudget, k.name, "nack_over_budget")
	}
	counter(c.plis, t.Video.KeyframeRequests+t.Audio.KeyframeRequests)
	counter(c.switches, t.Video.LayerSwitches)
	counter(c.cachedStarts, t.Video.CachedStarts)
	cd := t.Candidates
	counter(c.candidates, cd.Malformed, "malformed")
	counter(c.candidates, cd.MDNS, "mdns")
	counter(c.candidates, cd.Transport, "transport")
	counter(c.candidates, cd.Address, "address")
	counter(c.candidates, cd.OverLimit, "over_limit")
}
