package sfu

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

// TestDTLSTapKeys runs real DTLS handshakes over loopback UDP, the server
// with the tap's hooks, and checks the keys the tap derives against pion's
// own exporter on both ends, for each SRTP profile and cipher-suite hash.
func TestDTLSTapKeys(t *testing.T) {
	cases := []struct {
		name    string
		suite   dtls.CipherSuiteID
		profile dtls.SRTPProtectionProfile
	}{
		{"gcm128/sha256", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM},
		{"cm-hmac/sha256", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		{"gcm256/sha384", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.SRTP_AEAD_AES_256_GCM},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := selfsign.GenerateSelfSigned()
			if err != nil {
				t.Fatal(err)
			}
			sconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			cconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			tap := &dtlsTap{}
			base := dtls.Config{
				Certificates:           []tls.Certificate{cert},
				InsecureSkipVerify:     true,
				CipherSuites:           []dtls.CipherSuiteID{tc.suite},
				SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{tc.profile},
				ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
			}
			scfg, ccfg := base, base
			scfg.KeyLogWriter = tap
			scfg.ServerHelloMessageHook = tap.serverHello
			srv, err := dtls.Server(sconn, cconn.LocalAddr(), &scfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := dtls.Client(cconn, sconn.LocalAddr(), &ccfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- srv.HandshakeContext(ctx) }()
			if err := cli.HandshakeContext(ctx); err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("server handshake: %v", err)
			}

			k, err := tap.keys()
			if err != nil {
				t.Fatalf("keys: %v", err)
			}
			profile := k.profile
			if profile != srtp.ProtectionProfile(tc.profile) {
				t.Errorf("profile %v, want %v", profile, tc.profile)
			}
			for side, c := range map[string]*dtls.Conn{"server": srv, "client": cli} {
				state, ok := c.ConnectionState()
				if !ok {
					t.Fatalf("%s: no connection state", side)
				}
				cfg := srtp.Config{Profile: profile}
				if err := cfg.ExtractSessionKeysFromDTLS(&state, side == "client"); err != nil {
					t.Fatalf("%s: %v", side, err)
				}
				// Each end's local keys are its own; the remote ones
				// the other end's.
				srvKey, srvSalt := cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt
				cliKey, cliSalt := cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt
				if side == "client" {
					srvKey, srvSalt, cliKey, cliSalt = cliKey, cliSalt, srvKey, srvSalt
				}
				if !bytes.Equal(k.serverKey, srvKey) || !bytes.Equal(k.serverSalt, srvSalt) {
					t.Errorf("%s: tap derived server key %x salt %x, pion %x %x", side, k.serverKey, k.serverSalt, srvKey, srvSalt)
				}
				if !bytes.Equal(k.clientKey, cliKey) || !bytes.Equal(k.clientSalt, cliSalt) {
					t.Errorf("%s: tap derived client key %x salt %x, pion %x %x", side, k.clientKey, k.clientSalt, cliKey, cliSalt)
				}
			}
		})
	}
}

// TestDTLSTapIncomplete: without both hooks' data there are no keys, and a
// key log line that is not one is ignored.
func TestDTLSTapIncomplete(t *testing.T) {
	tap := &dtlsTap{}
	if _, err := tap.keys(); err == nil {
		t.Fatal("keys from an empty tap")
	}
	for _, line := range []string{"", "garbage\n", "CLIENT_RANDOM zz yy\n", "CLIENT_RANDOM 00 00 00\n"} {
		if n, err := tap.Write([]byte(line)); n != len(line) || err != nil {
			t.Errorf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if _, err := tap.keys(); err == nil {
		t.Fatal("keys from a tap that saw no handshake")
	}
}

// TestDirectOutputFallback: a subscriber that answers the SFU's offer as
// the DTLS server leaves the SFU without the secrets direct output needs
// (only the server's side of the handshake shows them); its media takes
// pion's path and still arrives.
func TestDirectOutputFallback(t *testing.T) {
	room := newTestSFU(t).Room("fallback")
	a := joinClient(t, room, "A")
	b := joinClient(t, room, "B", func(c *client) {
		c.subSettings = func(se *webrtc.SettingEngine) {
			if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
				t.Fatal(err)
			}
		}
	})
	a.publish()
	testkit.Eventually(t, 10*time.Second, "B to receive A's audio and video", func() bool {
		au := b.trackFrom("user-A", webrtc.RTPCodecTypeAudio)
		v := b.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return au != nil && v != nil && au.packets.Load() > 25 && v.packets.Load() > 25
	})
	if n := b.p.stats.direct.Load(); n != 0 || b.p.out.Load() != nil {
		t.Errorf("B's media used direct output (%d packets) without the DTLS server's secrets", n)
	}
}
