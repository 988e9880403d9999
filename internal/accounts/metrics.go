package accounts

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count sign-ins by way and outcome, and invites used.
type metrics struct {
	signIns *prometheus.CounterVec
	invites prometheus.Counter
	refused *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_account_sign_ins_total",
			Help: "Sign-ins with Tandem's own accounts, by way (register, passkey, pairing, credential) and result (ok, or why not).",
		}, []string{"way", "result"}),
		invites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_account_invites_used_total", Help: "Invite links that made an account.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_account_invites_refused_total", Help: "Invite links refused, by reason.",
		}, []string{"reason"}),
	}
}

// Register adds the accounts' metrics to reg.
func (s *Service) Register(reg prometheus.Registerer) {
	reg.MustRegister(s.metrics.signIns, s.metrics.invites, s.metrics.refused)
	if s.push != nil {
		reg.MustRegister(s.push.sent, s.push.latency)
	}
}

func (m *metrics) signIn(way, result string) { m.signIns.WithLabelValues(way, result).Inc() }

func (m *metrics) invite(err error) {
	reason := "other"
	switch {
	case errors.Is(err, ErrInviteInvalid):
		reason = "invalid"
	case errors.Is(err, ErrInviteExpired):
		reason = "expired"
	case errors.Is(err, ErrInviteUsedUp):
		reason = "used_up"
	}
	m.refused.WithLabelValues(reason).Inc()
}
