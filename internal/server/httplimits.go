package server

import (
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// limitConns wraps the HTTP listener (under TLS, if any) with the
// per-source connection limit, and registers the HTTP limits' metrics.
func (s *Server) limitConns(ln net.Listener) net.Listener {
	s.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tandem_http_body_timeouts_total",
		Help: "Requests whose body did not arrive within http.body_timeout.",
	}, func() float64 { return float64(s.bodyTimeouts.Load()) }))
	if s.cfg.HTTP.MaxConnsPerIP <= 0 {
		return ln
	}
	s.connLimit = newLimitListener(ln, s.cfg.HTTP.MaxConnsPerIP)
	s.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tandem_http_connections_refused_total",
		Help: "Connections closed as they were accepted because their source address held http.max_conns_per_ip.",
	}, func() float64 { return float64(s.connLimit.refused.Load()) }))
	return s.connLimit
}

// withHTTPLimits applies the body timeout to every request.
func (s *Server) withHTTPLimits(h http.Handler) http.Handler {
	return withBodyTimeout(s.cfg.HTTP.BodyTimeout, &s.bodyTimeouts, h)
}
