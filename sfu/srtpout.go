package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Direct SRTP output.
//
// pion sends each RTP packet through five layers (track writer, SRTP
// session, DTLS/SRTP demux endpoint, ICE connection, UDP mux), each with
// its own locks and checks; on a forwarding node that is a third of the
// CPU. A sub PC's media instead goes straight from the forwarding path to
// the shared socket: each downTrack encrypts with its own SRTP context and
// writes to the address of the PC's selected ICE candidate pair. RTCP, ICE
// and DTLS stay with pion.
//
// The SRTP keys come from the DTLS handshake through pion's public hooks:
// the server hello the SFU sends (server random, cipher suite, SRTP
// profile) and the TLS key log (client random, master secret). From those
// the keys are derived as RFC 5764 says (the TLS exporter with the label
// EXTRACTOR-dtls_srtp). Both are only available when the SFU is the DTLS
// server, which a sub PC always asks for; otherwise the PC stays on pion's
// path.

// dtlsTap collects one PeerConnection's DTLS handshake secrets.
type dtlsTap struct {
	mu           sync.Mutex
	serverRandom []byte
	suite        uint16
	profile      srtp.ProtectionProfile
	clientRandom []byte
	master       []byte
}

// serverHello is pion's server hello hook: it records the hello and sends
// it unchanged.
func (t *dtlsTap) serverHello(m handshake.MessageServerHello) handshake.Message {
	random := m.Random.MarshalFixed()
	t.mu.Lock()
	t.serverRandom = random[:]
	t.suite = 0
	if m.CipherSuiteID != nil {
		t.suite = *m.CipherSuiteID
	}
	t.profile = 0
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			t.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	t.mu.Unlock()
	return &m
}

// Write takes pion's key log: "CLIENT_RANDOM <client random> <master
// secret>" in hex, one line per write.
func (t *dtlsTap) Write(p []byte) (int, error) {
	f := bytes.Fields(p)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(p), nil
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil || len(cr) != 32 || len(ms) != 48 {
		return len(p), nil
	}
	t.mu.Lock()
	t.clientRandom, t.master = cr, ms
	t.mu.Unlock()
	return len(p), nil
}

var errNoDTLSKeys = errors.New("sfu: DTLS secrets not seen")

// dtlsKeys are the SRTP master keys and salts of both DTLS ends.
type dtlsKeys struct {
	profile               srtp.ProtectionProfile
	clientKey, clientSalt []byte
	serverKey, serverSalt []byte
}

// keys derives both ends' SRTP master keys and salts.
func (t *dtlsTap) keys() (dtlsKeys, error) {
	t.mu.Lock()
	sr, cr, ms, suite, profile := t.serverRandom, t.clientRandom, t.master, t.suite, t.profile
	t.mu.Unlock()
	if sr == nil || cr == nil || ms == nil || profile == 0 {
		return dtlsKeys{}, errNoDTLSKeys
	}
	var h func() hash.Hash
	switch suite {
	case 0xc02c, 0xc030: // ECDHE_{ECDSA,RSA}_WITH_AES_256_GCM_SHA384
		h = sha512.New384
	case 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc00a, 0xc014, 0xc0ac, 0xc0ae:
		// AES_128_GCM_SHA256, CHACHA20_POLY1305_SHA256, AES_256_CBC_SHA
		// and AES_128_CCM(_8): TLS 1.2's SHA-256 PRF.
		h = sha256.New
	default:
		return dtlsKeys{}, errNoDTLSKeys
	}
	keyLen, err := profile.KeyLen()
	if err != nil {
		return dtlsKeys{}, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return dtlsKeys{}, err
	}
	seed := append(append([]byte("EXTRACTOR-dtls_srtp"), cr...), sr...)
	km, err := prf.PHash(ms, seed, 2*keyLen+2*saltLen, h)
	if err != nil {
		return dtlsKeys{}, err
	}
	// client key | server key | client salt | server salt
	return dtlsKeys{
		profile:    profile,
		clientKey:  km[:keyLen],
		serverKey:  km[keyLen : 2*keyLen],
		clientSalt: km[2*keyLen : 2*keyLen+saltLen],
		serverSalt: km[2*keyLen+saltLen:],
	}, nil
}

// srtpOut is a sub PC's direct output: its SRTP keys and where its media
// goes. Once a PC has one it keeps it; the address follows the selected
// candidate pair.
type srtpOut struct {
	conn    net.PacketConn
	profile srtp.ProtectionProfile
	key     []byte
	salt    []byte
	addr    atomic.Pointer[net.UDPAddr]
}

// newContext returns a fresh SRTP context for one downTrack.
func (o *srtpOut) newContext() (*srtp.Context, error) {
	return srtp.CreateContext(o.key, o.salt, o.profile)
}

// pairAddr is the remote UDP address of a selected candidate pair, or nil
// when it is not one the shared socket can send to.
func pairAddr(pair *webrtc.ICECandidatePair) *net.UDPAddr {
	if pair == nil || pair.Remote == nil || pair.Remote.Protocol != webrtc.ICEProtocolUDP {
		return nil
	}
	ip := net.ParseIP(pair.Remote.Address)
	if ip == nil {
		return nil
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return &net.UDPAddr{IP: ip, Port: int(pair.Remote.Port)}
}
