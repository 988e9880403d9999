package webhook

import "github.com/prometheus/client_golang/prometheus"

// Labels of tandem_webhook_events_total.
const (
	resultDelivered = "delivered" // the receiver answered 2xx
	resultRejected  = "rejected"  // the receiver answered a status that is not retried
	resultFailed    = "failed"    // MaxAttempts attempts failed
	resultDropped   = "dropped"   // the queue was full, or Close's deadline passed
)

// Labels of tandem_webhook_attempts_total.
const (
	outcomeOK    = "ok"    // 2xx
	outcomeRetry = "retry" // failed, and another attempt follows
	outcomeError = "error" // failed, and no attempt follows: rejected, last attempt, or cut off by Close
)

// metrics is the Sender's Prometheus collector. It is created with the
// Sender so delivery can always count; Register only exposes it.
type metrics struct {
	events   *prometheus.CounterVec
	attempts *prometheus.CounterVec
	queue    prometheus.Gauge
	latency  prometheus.Histogram
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics() *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_webhook_events_total",
			Help: "Webhook events by final result: delivered, rejected (non-retryable status), failed (gave up after max attempts), dropped (queue full or shutdown deadline).",
		}, []string{"result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_webhook_attempts_total",
			Help: "Webhook HTTP attempts by outcome: ok (2xx), retry (failed, will be retried), error (failed, not retried).",
		}, []string{"outcome"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_webhook_queue",
			Help: "Webhook events waiting to be delivered, not counting the one being delivered.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_webhook_delivery_seconds",
			Help:    "Time from an event being sent to the receiver accepting it, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
	// Create every series up front so dashboards see zeros, not gaps.
	for _, r := range []string{resultDelivered, resultRejected, resultFailed, resultDropped} {
		m.events.WithLabelValues(r)
	}
	for _, o := range []string{outcomeOK, outcomeRetry, outcomeError} {
		m.attempts.WithLabelValues(o)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.events.Describe(ch)
	m.attempts.Describe(ch)
	m.queue.Describe(ch)
	m.latency.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.events.Collect(ch)
	m.attempts.Collect(ch)
	m.queue.Collect(ch)
	m.latency.Collect(ch)
}

func (m *metrics) event(result string, n int) {
	m.events.WithLabelValues(result).Add(float64(n))
}

func (m *metrics) attempt(outcome string) {
	m.attempts.WithLabelValues(outcome).Inc()
}
