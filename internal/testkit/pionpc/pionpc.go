// Package pionpc builds the pion PeerConnections Tandem's tests use as
// third-party clients: pion's default codecs and interceptors, UDP over
// IPv4 loopback only, no mDNS.
package pionpc

import (
	"net"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Options adjust a PeerConnection; the zero value is a plain client, as a
// WHIP or WHEP client would be.
type Options struct {
	// AnswerAsDTLSClient takes the DTLS client role when answering, as
	// browsers and internal/client do when the (ICE-lite) SFU offers,
	// where pion would take the server role.
	AnswerAsDTLSClient bool
	// Register, if not nil, registers more on the media engine and the
	// interceptor registry.
	Register func(*webrtc.MediaEngine, *interceptor.Registry) error
	// Tune, each if not nil, adjust the setting engine last.
	Tune []func(*webrtc.SettingEngine)
}

// New returns a PeerConnection built with o; it is closed when the test
// ends, if it was not before.
func New(t testing.TB, o Options) *webrtc.PeerConnection {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	if o.Register != nil {
		if err := o.Register(m, ir); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	if o.AnswerAsDTLSClient {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleClient); err != nil {
			t.Fatal(err)
		}
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	for _, f := range o.Tune {
		if f != nil {
			f(&se)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}
