package signaling

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// metrics are the hub's Prometheus series. Label values come only from
// the server's own constants: a client's unknown message type counts as
// "invalid".
type metrics struct {
	messages *prometheus.CounterVec // direction, type
	invites  *prometheus.CounterVec // outcome
	limited  *prometheus.CounterVec // limit
	duration prometheus.Histogram
	handoffs *prometheus.CounterVec // result
	dropped  prometheus.Counter     // events a stuck session loop could not take
}

func newMetrics() *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_signaling_messages_total",
			Help: "Signaling messages, by direction (in from devices, out to them) and type; in/invalid are those that did not decode.",
		}, []string{"direction", "type"}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_signaling_invites_total",
			Help: "Calls placed, by outcome: answered, or the reason the call ended unanswered (declined, no_answer, cancelled, busy, failed...), or the error code the invite was refused with.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_signaling_call_duration_seconds",
			Help:    "How long answered calls lasted, from the answer to the end.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_signaling_invites_limited_total",
			Help: "Invites refused with rate_limited, by the limit that refused them: caller (one user sending), callee (one user receiving) or pair (one user to one other).",
		}, []string{"limit"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_signaling_handoffs_total",
			Help: "Calls moved between a user's devices, by result (done, failed).",
		}, []string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_signaling_events_dropped_total",
			Help: "Events for a session's loop (media events, forwarded messages) dropped because its queue was full: the loop was stuck.",
		}),
	}
	// Series a dashboard draws from the start, at 0.
	m.handoffs.WithLabelValues("done")
	m.handoffs.WithLabelValues("failed")
	m.invites.WithLabelValues("answered")
	for _, l := range []string{limitCaller, limitCallee, limitPair} {
		m.limited.WithLabelValues(l)
	}
	return m
}

// RegisterMetrics adds the hub's series to reg: those above, and gauges
// of sessions, calls and rooms read when scraped.
func (h *Hub) RegisterMetrics(reg prometheus.Registerer) {
	m := h.metrics
	reg.MustRegister(m.messages, m.invites, m.limited, m.duration, m.handoffs, m.dropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_signaling_sessions",
			Help: "Devices connected to this node.",
		}, func() float64 { return float64(h.sessionCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_signaling_calls",
			Help: "Calls and rooms this node holds, ringing or answered.",
		}, func() float64 { return float64(h.ActiveCalls()) }),
	)
}

// sessionCount is the number of devices connected here.
func (h *Hub) sessionCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ds := range h.devices {
		for _, s := range ds {
			if s.remote == nil {
				n++
			}
		}
	}
	return n
}

// countIn counts a message from a device.
func (m *metrics) countIn(msg any) {
	t := protocol.TypeOf(msg)
	if t == "" {
		t = "invalid"
	}
	m.messages.WithLabelValues("in", t).Inc()
}

// callEnded counts a call's outcome and, if it was answered, its length.
func (m *metrics) callEnded(c *call, reason string, now time.Time) {
	if c.Room != "" {
		return
	}
	if c.Answered.IsZero() {
		m.invites.WithLabelValues(reason).Inc()
		return
	}
	m.invites.WithLabelValues("answered").Inc()
	m.duration.Observe(now.Sub(c.Answered).Seconds())
}
