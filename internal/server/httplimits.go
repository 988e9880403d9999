package server

import (
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// hstsHeader asks browsers to reach this host over HTTPS only, for a year.
const hstsHeader = "max-age=31536000"

// limitConns wraps an HTTP listener (under TLS, if any) with the
// per-source connection limit, the same for every listener of the node,
// and registers the HTTP limits' metrics with the first.
func (s *Server) limitConns(ln net.Listener) net.Listener {
	first := !s.httpLimitsRegistered
	s.httpLimitsRegistered = true
	if first {
		s.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tandem_http_body_timeouts_total",
			Help: "Requests whose body did not arrive within http.body_timeout.",
		}, func() float64 { return float64(s.bodyTimeouts.Load()) }))
	}
	if s.cfg.HTTP.MaxConnsPerIP <= 0 {
		return ln
	}
	if s.connLimit != nil {
		return s.connLimit.also(ln)
	}
	s.connLimit = newLimitListener(ln, s.cfg.HTTP.MaxConnsPerIP)
	s.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tandem_http_connections_refused_total",
		Help: "Connections closed as they were accepted because their source address held http.max_conns_per_ip.",
	}, func() float64 { return float64(s.connLimit.refused.Load()) }))
	return s.connLimit
}

// withHTTPLimits applies the body timeout to every request and, when this
// node serves TLS itself, HSTS to every response.
func (s *Server) withHTTPLimits(h http.Handler) http.Handler {
	if s.cfg.HTTP.TLSCert != "" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", hstsHeader)
			next.ServeHTTP(w, r)
		})
	}
	return withBodyTimeout(s.cfg.HTTP.BodyTimeout, &s.bodyTimeouts, h)
}
