package turn

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidation(t *testing.T) {
	base := func() Config {
		return Config{UDPListen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Secrets: [][]byte{secretA}}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   error
	}{
		{"no secrets", func(c *Config) { c.Secrets = nil }, ErrNoSecrets},
		{"empty secret", func(c *Config) { c.Secrets = [][]byte{{}} }, ErrNoSecrets},
		{"no listeners", func(c *Config) { c.UDPListen = "" }, ErrNoListeners},
		{"tls without config", func(c *Config) { c.TLSListen = "127.0.0.1:0" }, ErrNoTLSConfig},
		{"no relay ip", func(c *Config) { c.RelayIP = nil }, ErrRelayIP},
		{"unspecified relay ip without public ip", func(c *Config) { c.RelayIP = net.IPv4zero }, ErrRelayIP},
		{"inverted port range", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 }, ErrRelayPortRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mutate(&cfg)
			s, err := New(cfg, nil, nil)
			if !errors.Is(err, tc.want) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := newFakeClock()
	s, err := New(Config{UDPListen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1),
		Secrets: [][]byte{secretA}, Now: clk.Now}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user, pass := mint(secretA, "nina", clk, 10*time.Minute)
	if _, err := newUDPClient(t, s, user, pass).Allocate(); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := []string{}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	for _, name := range []string{
		"tandem_turn_allocations{udp}", "tandem_turn_allocations_total{udp}", "tandem_turn_auth_total{ok}",
		"tandem_turn_peer_denied_total{loopback}", "tandem_turn_quota_rejections_total{bandwidth}",
		"tandem_turn_relayed_packets_total{to_peer}", "tandem_turn_relayed_bytes_total{from_peer}",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if got["tandem_turn_allocations{udp}"] != 1 || got["tandem_turn_allocations_total{udp}"] != 1 {
		t.Errorf("allocation metrics = %v, %v", got["tandem_turn_allocations{udp}"], got["tandem_turn_allocations_total{udp}"])
	}
}
