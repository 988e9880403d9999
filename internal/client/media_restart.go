package client

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// networkPoll is how often Media looks at the host's addresses (those
// in MediaOptions.Network, when set); a phone's connectivity callback
// comes about as soon.
const networkPoll = 100 * time.Millisecond

// restartICE asks the Media's loop for an ICE restart; done gets its
// result.
type restartICE struct {
	done chan error
	// resync: the signaling socket was replaced, and a pub offer still
	// awaiting its answer may have been lost with the old one; it is
	// rolled back and the restart sent at once.
	resync bool
}

// RestartICE restarts ICE, as a client does when its network changes: it
// sends a pub offer with new ICE credentials and candidates gathered on
// the addresses the host has now. The server answers it and, seeing the
// new credentials, offers sub again with an ICE restart of its own, which
// the Media answers. DTLS and SRTP carry on, so the tracks continue
// without renegotiation. It returns once the offer is queued; while a
// pub offer awaits its answer, the restart follows that answer.
func (m *Media) RestartICE(ctx context.Context) error { return m.restart(ctx, false) }

// restart asks the loop for an ICE restart (see restartICE).
func (m *Media) restart(ctx context.Context, resync bool) error {
	if m.pub == nil {
		return fmt.Errorf("client: restart ice: %w: this leg has no pub PeerConnection", ErrMediaOptions)
	}
	req := restartICE{done: make(chan error, 1), resync: resync}
	select {
	case m.events <- req:
	case <-m.done:
		return fmt.Errorf("client: restart ice: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("client: restart ice: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("client: restart ice: %w", err)
		}
		return nil
	case <-m.done:
		return fmt.Errorf("client: restart ice: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("client: restart ice: %w", ctx.Err())
	}
}

// restartPub sends a pub offer that restarts ICE, or marks the restart
// pending while an earlier offer awaits its answer (with resync, the
// earlier offer is rolled back instead). Loop only.
func (m *Media) restartPub(resync bool) error {
	if resync && m.pub.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if g := m.pubOfferGen.Load(); g == offerQueued || g == m.c.gen.Load() {
			return nil // goes, or went, out on the new socket: its answer will come
		}
		// Sent on the socket since replaced, perhaps lost with it: send it
		// again, and restart once it is answered, for candidates from the
		// address the host has now.
		m.restartPending = true
		return m.sendPubOffer(m.pub.LocalDescription().SDP)
	}
	if m.pub.SignalingState() != webrtc.SignalingStateStable {
		m.restartPending = true
		return nil
	}
	m.restartPending = false
	if m.hostNet != nil {
		// Gather on the addresses the host has now.
		if err := m.hostNet.UpdateInterfaces(); err != nil {
			return fmt.Errorf("list network interfaces: %w", err)
		}
	}
	offer, err := m.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return fmt.Errorf("create pub restart offer: %w", err)
	}
	m.pubTrickle.hold()
	if err := m.pub.SetLocalDescription(offer); err != nil {
		m.pubTrickle.release()
		return fmt.Errorf("set pub restart offer: %w", err)
	}
	if err := m.sendPubOffer(offer.SDP); err != nil {
		return err
	}
	m.pubTrickle.release()
	m.count.iceRestarts.Add(1)
	m.log.Info("ice restart")
	return nil
}

// watchNetwork restarts ICE whenever the host's addresses inside n (nil:
// every address ICE gathers on but loopback) change and at least one is
// left to gather on.
func (m *Media) watchNetwork(n *net.IPNet) {
	t := time.NewTicker(networkPoll)
	defer t.Stop()
	last := addrsIn(n)
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		now := addrsIn(n)
		if slices.Equal(now, last) {
			continue
		}
		last = now
		if len(now) == 0 {
			continue // nothing to gather on yet; wait for an address
		}
		m.log.Info("network changed", "addrs", now)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.RestartICE(ctx); err != nil {
			m.log.Warn("ice restart after a network change failed", "err", err)
		}
		cancel()
	}
}

// addrsIn lists the host's addresses inside n, sorted; n nil means every
// gatherable address but loopback.
func addrsIn(n *net.IPNet) []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var in []string
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if n == nil && gatherable(ip.IP) && !ip.IP.IsLoopback() || n != nil && n.Contains(ip.IP) {
			in = append(in, ip.IP.String())
		}
	}
	slices.Sort(in)
	return in
}

// sendPubOffer sends a pub offer on the socket in use. Loop only, or
// before the loop handles anything.
func (m *Media) sendPubOffer(sdp string) error {
	b, err := protocol.Encode(protocol.TypeSDP, &protocol.SDP{
		CallID: m.callID, PC: protocol.PCPub, Kind: protocol.SDPOffer, SDP: m.markSlides(sdp),
	})
	if err != nil {
		return fmt.Errorf("encode pub offer: %w", err)
	}
	m.pubOfferGen.Store(offerQueued)
	if err := m.c.enqueueMsg(m.done, outMsg{b: b, sent: m.pubOfferSent}); err != nil {
		return fmt.Errorf("send pub offer: %w", err)
	}
	return nil
}

// offerQueued marks a pub offer not yet written to any socket.
const offerQueued = ^uint64(0)

// pubOfferSent records the socket generation a pub offer went out on.
func (m *Media) pubOfferSent(gen uint64) { m.pubOfferGen.Store(gen) }
