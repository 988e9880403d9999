package sfu

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// sendFrame feeds one single-packet VP8 frame of layer l through ft.
func sendFrame(ft *forwardTrack, l *layer, seq uint16, ts uint32, key bool) {
	p := vp8(key)
	if key {
		w := int(l.width.Load())
		p[7], p[8] = byte(w), byte(w>>8)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: p}
	ft.fanout(l, pkt, key, len(p)+12, &rtp.Header{})
}

// TestLayerSwitchIsSeamless forwards two simulcast layers with unrelated
// sequence numbers and timestamps to one subscriber and moves it between
// them: the switch waits for the target layer's keyframe, and the
// subscriber's sequence numbers continue by one and its timestamps move
// forward across it.
func TestLayerSwitchIsSeamless(t *testing.T) {
	ft, ls := newTestTrack(t, "q", "f")
	ls[0].width.Store(320)
	ls[1].width.Store(1280)
	ft.reorderLocked()
	_, downs, writers := addBound(t, ft, 1)
	d, w := downs[0], writers[0]
	if d.target.Load() != ls[0] {
		t.Fatalf("a new subscriber starts on %v, want the lowest layer", d.target.Load().rid)
	}

	var outSeqs []uint16
	var outTs []uint32
	record := func() {
		if w.n > len(outSeqs) {
			outSeqs = append(outSeqs, w.last.SequenceNumber)
			outTs = append(outTs, w.last.Timestamp)
		}
	}
	qSeq, qTs := uint16(65530), uint32(4_000_000_000) // wraps on the way
	fSeq, fTs := uint16(100), uint32(7)
	step := func(n int, qKeyAt, fKeyAt int) {
		for i := range n {
			sendFrame(ft, ls[0], qSeq, qTs, i == qKeyAt)
			record()
			sendFrame(ft, ls[1], fSeq, fTs, i == fKeyAt)
			record()
			qSeq, qTs = qSeq+1, qTs+3000
			fSeq, fTs = fSeq+1, fTs+3000
			time.Sleep(time.Millisecond)
		}
	}
	step(5, 0, -1) // starts on q at its keyframe
	if got := d.cur.Load(); got != ls[0] {
		t.Fatalf("forwarding %v, want q", got)
	}
	d.setTarget(ls[1])
	step(3, -1, -1) // no keyframe on f yet: stays on q
	if got := d.cur.Load(); got != ls[0] {
		t.Fatal("switched before the target layer's keyframe")
	}
	step(4, -1, 1) // f's keyframe: switch
	if got := d.cur.Load(); got != ls[1] {
		t.Fatal("did not switch at the target layer's keyframe")
	}
	d.setTarget(ls[0])
	step(3, 2, -1)
	if got := d.cur.Load(); got != ls[0] {
		t.Fatal("did not switch back down")
	}
	if len(outSeqs) != 16 {
		t.Fatalf("forwarded %d packets, want 16 (one layer at a time)", len(outSeqs))
	}
	for i := 1; i < len(outSeqs); i++ {
		if outSeqs[i] != outSeqs[i-1]+1 {
			t.Errorf("packet %d: sequence %d after %d", i, outSeqs[i], outSeqs[i-1])
		}
		if diff := int32(outTs[i] - outTs[i-1]); diff <= 0 {
			t.Errorf("packet %d: timestamp went from %d to %d", i, outTs[i-1], outTs[i])
		}
	}
	if n := d.sub.Stats().Video.LayerSwitches; n != 3 {
		t.Errorf("layer switches = %d, want 3 (start, up, down)", n)
	}

	// Hidden: nothing forwarded, and the next start waits for a keyframe.
	d.setTarget(nil)
	before := w.n
	step(2, 0, 0)
	if w.n != before {
		t.Errorf("a paused subscriber got %d packets", w.n-before)
	}
}

// TestRetransmitFromLayerCache answers a NACK for a packet forwarded from a
// layer with the cached original, renumbered as the subscriber knows it.
func TestRetransmitFromLayerCache(t *testing.T) {
	ft, ls := newTestTrack(t, "")
	_, downs, writers := addBound(t, ft, 1)
	for i := range 10 {
		p := vp8(i == 0)
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(500 + i), Timestamp: 90}, Payload: p}).Marshal()
		ls[0].cache.put(uint16(500+i), raw)
		sendFrame(ft, ls[0], uint16(500+i), 90, i == 0)
	}
	w := writers[0]
	want := w.last.SequenceNumber - 3
	n := w.n
	downs[0].retransmit([]uint16{want, want + 1000})
	if w.n != n+1 || w.last.SequenceNumber != want || w.last.SSRC != 1234 {
		t.Fatalf("retransmitted %d packets, last seq %d ssrc %d; want 1 with seq %d", w.n-n, w.last.SequenceNumber, w.last.SSRC, want)
	}
	st := downs[0].sub.Stats().Video
	if st.Retransmitted != 1 || st.NACKMisses != 1 {
		t.Errorf("stats %+v, want 1 retransmitted and 1 miss", st)
	}
}

// TestPickLayer chooses by tile width and budget, never below the lowest.
func TestPickLayer(t *testing.T) {
	_, ls := newTestTrack(t, "q", "h", "f")
	for i, w := range []int32{320, 640, 1280} {
		ls[i].width.Store(w)
		ls[i].lastRate.Store([]int64{150_000, 500_000, 1_500_000}[i])
	}
	for _, tt := range []struct {
		width  int
		budget int64
		want   int
	}{
		{0, 10_000_000, 2},   // no view: the top
		{300, 10_000_000, 0}, // a small tile: the smallest that covers it
		{600, 10_000_000, 1},
		{1920, 10_000_000, 2},
		{0, 600_000, 1}, // bandwidth-limited
		{0, 10_000, 0},  // never below the lowest
	} {
		if got := pickLayer(ls, tt.width, tt.budget); got != tt.want {
			t.Errorf("pickLayer(width %d, budget %d) = %d, want %d", tt.width, tt.budget, got, tt.want)
		}
	}
}

// TestEstimatorFollowsLoss backs off on heavy loss towards what arrived,
// holds on moderate loss, and creeps up again after a hold.
func TestEstimatorFollowsLoss(t *testing.T) {
	e := newEstimator()
	now := time.Now()
	e.loss(0.6)
	e.tick(now, 1_550_000, 500*time.Millisecond)
	if got := e.estimate(); got > 1_100_000 || got < 400_000 {
		t.Fatalf("after 60%% loss at 1.55 Mbit/s the estimate is %d", got)
	}
	low := e.estimate()
	e.loss(0.05)
	e.tick(now.Add(time.Second), 540_000, 500*time.Millisecond)
	if e.estimate() != low {
		t.Errorf("moderate loss changed the estimate from %d to %d", low, e.estimate())
	}
	e.loss(0)
	e.tick(now.Add(1500*time.Millisecond), 540_000, 500*time.Millisecond)
	if e.estimate() != low {
		t.Error("the estimate rose during the hold after a decrease")
	}
	for i := range 40 {
		e.loss(0)
		e.tick(now.Add(time.Duration(5+i)*time.Second), 540_000, time.Second)
	}
	if e.estimate() <= low {
		t.Error("the estimate never rose again without loss")
	}
	e.remb(300_000)
	if e.estimate() != 300_000 {
		t.Errorf("REMB 300k while 540k is sent: estimate %d, want 300k", e.estimate())
	}
}

// TestREMBCeilingIsNotTheLink: a browser's REMB never says more than
// about 1.5 times what it receives. Such a report does not hold the
// estimate down, so a subscriber lowered to a small layer can be raised
// again; a report under what it receives (congestion) does, and holds.
func TestREMBCeilingIsNotTheLink(t *testing.T) {
	e := newEstimator()
	now := time.Now()
	e.loss(0.5) // lowered to a small layer
	e.tick(now, 200_000, time.Second)
	low := e.estimate()
	for i := range 60 {
		e.remb(int64(1.5*100_000 + 10_000)) // the ceiling over 100k received
		e.loss(0)
		e.tick(now.Add(time.Duration(3+i)*time.Second), 100_000, time.Second)
	}
	if got := e.estimate(); got < 3*low {
		t.Errorf("with REMB at its ceiling the estimate went from %d to only %d", low, got)
	}
	high := e.estimate()
	e.tick(now.Add(70*time.Second), float64(high), time.Second) // sending all of it
	high = e.estimate()
	e.remb(int64(0.85 * float64(high))) // and the receiver says it is too much
	if got := e.estimate(); got > int64(0.9*float64(high)) {
		t.Errorf("a REMB under what arrives left the estimate at %d (from %d)", got, high)
	}
	held := e.estimate()
	e.loss(0)
	e.tick(now.Add(71*time.Second), float64(held), time.Second)
	if e.estimate() != held {
		t.Error("the estimate rose right after the REMB said the link is full")
	}
}

// TestSpeakerLevel needs voice in enough packets to call someone speaking.
func TestSpeakerLevel(t *testing.T) {
	ft, _ := newTestTrack(t, "")
	ft.levelExt = 1
	feed := func(dbov byte, n int) {
		for range n {
			var pkt rtp.Packet
			_ = pkt.Header.SetExtension(1, []byte{dbov})
			ft.noteLevel(&pkt)
		}
	}
	feed(127, 25)
	if _, ok := ft.takeLevel(); ok {
		t.Error("silence counted as speech")
	}
	feed(20, 20)
	feed(127, 5)
	level, ok := ft.takeLevel()
	if !ok || level < 40 || level > 80 {
		t.Errorf("speech at -20 dBov: level %d, %v", level, ok)
	}
}

func FuzzKeyframeInfo(f *testing.F) {
	f.Add("video/VP8", vp8(true))
	f.Add("video/VP8", vp8(false))
	f.Add("video/VP8", []byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01})
	f.Add("video/H264", []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce})
	f.Add("video/H264", []byte{0x7c, 0x85, 0x00})
	f.Fuzz(func(t *testing.T, mime string, p []byte) {
		key, w, h := keyframeInfo(mime, p)
		if w < 0 || h < 0 || w > 1<<14 || h > 1<<14 || (!key && (w != 0 || h != 0)) {
			t.Fatalf("keyframeInfo = %v %d×%d", key, w, h)
		}
	})
}

// TestKeyframeInfo recognises VP8 and H.264 keyframe starts.
func TestKeyframeInfo(t *testing.T) {
	for _, tt := range []struct {
		name, mime string
		p          []byte
		key        bool
		w          int
	}{
		{"vp8 key", "video/VP8", vp8(true), true, 640},
		{"vp8 delta", "video/VP8", vp8(false), false, 0},
		{"vp8 not start", "video/VP8", []byte{0x00, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0, 0, 0, 0}, false, 0},
		{"vp8 extended", "video/VP8", []byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, true, 320},
		{"h264 stap-a sps", "video/H264", []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true, 0},
		{"h264 fu-a idr start", "video/H264", []byte{0x7c, 0x85, 0x00}, true, 0},
		{"h264 fu-a idr middle", "video/H264", []byte{0x7c, 0x05, 0x00}, false, 0},
		{"h264 non-idr", "video/H264", []byte{0x41, 0x9a}, false, 0},
		{"empty", "video/VP8", nil, false, 0},
	} {
		key, w, _ := keyframeInfo(tt.mime, tt.p)
		if key != tt.key || w != tt.w {
			t.Errorf("%s: key %v width %d, want %v %d", tt.name, key, w, tt.key, tt.w)
		}
	}
}

// vp8Numbered returns a one-packet VP8 frame whose descriptor carries a
// 15-bit picture id, TL0PICIDX and KEYIDX.
func vp8Numbered(key bool, pic uint16, tl0, keyIdx uint8) []byte {
	p := []byte{0x90, 0xf0, 0x80 | byte(pic>>8), byte(pic), tl0, 0x20 | keyIdx}
	return append(p, vp8(key)[1:]...)
}

// TestSwitchContinuesVP8Numbering: two layers (or two devices' tracks)
// number their pictures independently. Across a switch the subscriber
// sees picture ids, TL0PICIDX and KEYIDX continue by one, as sequence
// numbers do, also in answers to NACKs. A NACK for a packet from before
// the switch goes unanswered: the subscriber's decoder goes on from the
// new layer's keyframe.
func TestSwitchContinuesVP8Numbering(t *testing.T) {
	ft, ls := newTestTrack(t, "q", "f")
	ls[0].width.Store(320)
	ls[1].width.Store(1280)
	ft.reorderLocked()
	_, downs, writers := addBound(t, ft, 1)
	d, w := downs[0], writers[0]
	type src struct {
		seq      uint16
		ts       uint32
		pic      uint16
		tl0, key uint8
	}
	q := &src{seq: 10, ts: 1000, pic: 0x7ffe, tl0: 254, key: 31} // all about to wrap
	f := &src{seq: 5000, ts: 9_000_000, pic: 1234, tl0: 77, key: 3}
	type out struct {
		seq      uint16
		pic      uint16
		tl0, key uint8
	}
	var got []out
	send := func(l *layer, s *src, key bool) {
		p := vp8Numbered(key, s.pic, s.tl0, s.key)
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: s.ts, Marker: true}, Payload: p}).Marshal()
		l.cache.put(s.seq, raw)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: s.ts, Marker: true}, Payload: p}
		n := w.n
		ft.fanout(l, pkt, key, len(p)+12, &rtp.Header{})
		if w.n > n {
			m, ok := rtpcodec.ParseVP8Numbers(w.payload)
			if !ok {
				t.Fatalf("forwarded payload % x does not parse", w.payload)
			}
			got = append(got, out{w.last.SequenceNumber, m.PictureID, m.TL0PicIdx, m.KeyIdx})
		}
		if !bytes.Equal(p, vp8Numbered(key, s.pic, s.tl0, s.key)) {
			t.Fatal("the publisher's packet was changed in place")
		}
		s.seq++
		s.ts += 3000
		s.pic = (s.pic + 1) & 0x7fff
		s.tl0++
	}
	for i := range 4 {
		send(ls[0], q, i == 0)
		send(ls[1], f, false)
	}
	d.setTarget(ls[1])
	send(ls[0], q, false)
	send(ls[1], f, true) // the switch
	for range 3 {
		send(ls[0], q, false)
		send(ls[1], f, false)
	}
	if len(got) != 9 {
		t.Fatalf("forwarded %d packets, want 9", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.seq != a.seq+1 || b.pic != (a.pic+1)&0x7fff || b.tl0 != a.tl0+1 {
			t.Errorf("packet %d: %+v after %+v, want every number one up", i, b, a)
		}
	}
	if got[5].key != (got[4].key+1)&0x1f {
		t.Errorf("KEYIDX went from %d to %d at the switch, want one up", got[4].key, got[5].key)
	}
	if got[6].key != got[5].key {
		t.Errorf("KEYIDX changed from %d to %d after the switch", got[5].key, got[6].key)
	}

	// A NACK for the last packet before the switch: not resent.
	n := w.n
	d.retransmit([]uint16{got[4].seq})
	if w.n != n {
		t.Errorf("NACK for packet 4, from the layer left, answered")
	}
	if st := d.sub.Stats().Video; st.NACKStale != 1 {
		t.Errorf("NACKStale = %d, want 1", st.NACKStale)
	}
	// For the first after and the last: each comes back numbered as it
	// was first sent.
	for _, i := range []int{5, 8} {
		n := w.n
		d.retransmit([]uint16{got[i].seq})
		if w.n != n+1 {
			t.Fatalf("NACK for packet %d not answered", i)
		}
		m, _ := rtpcodec.ParseVP8Numbers(w.payload)
		if m.PictureID != got[i].pic || m.TL0PicIdx != got[i].tl0 || m.KeyIdx != got[i].key {
			t.Errorf("retransmitted packet %d numbered %+v, want %+v", i, m, got[i])
		}
	}
}

// TestEstimatorProbesGentlyNearItsCeiling: a subscriber's link carries
// 600 kbit/s; the top layer costs 1.25 Mbit/s, the middle 450 kbit/s. The
// estimate learns the ceiling from the loss of the first try and comes
// back to the top layer rarely, not every few seconds; a link that grows
// well past the ceiling is still found within half a minute.
func TestEstimatorProbesGentlyNearItsCeiling(t *testing.T) {
	const link, top, mid = 600_000.0, 1_250_000.0, 450_000.0
	e := newEstimator()
	now := time.Now()
	step := 500 * time.Millisecond
	var tries []time.Duration
	onTop := true
	for i := range 240 { // two minutes
		at := time.Duration(i) * step
		sent := mid
		if onTop {
			sent = top
		}
		if i%2 == 1 { // a receiver report a second
			e.loss(max(0, 1-link/sent))
		}
		e.tick(now.Add(at), sent, step)
		up := float64(e.estimate()) >= top+audioReserve
		if up && !onTop {
			tries = append(tries, at)
		}
		onTop = up
	}
	t.Logf("tries %v, estimate %d, hold %v", tries, e.estimate(), e.hold)
	if len(tries) == 0 || len(tries) > 4 {
		t.Errorf("the top layer was tried again at %v in two minutes; want a few times", tries)
	} else if tries[0] < 12*time.Second {
		t.Errorf("the top layer was tried again %v after the start; want at least 12 s", tries[0])
	}

	// The link grows: no more loss at any rate.
	start := time.Duration(240) * step
	for i := range 60 {
		e.tick(now.Add(start+time.Duration(i)*step), mid, step)
		if i%2 == 1 {
			e.loss(0)
		}
	}
	if got := e.estimate(); got < 3_000_000 {
		t.Errorf("30 s after the link grew the estimate is %d; want at least 3 Mbit/s", got)
	}
}

// TestRetransmitWithinBudget: retransmissions to a subscriber take at
// most rtxShare of its bandwidth estimate per tick; what a NACK asks for
// beyond that is not resent (and counted), until the next tick.
func TestRetransmitWithinBudget(t *testing.T) {
	ft, ls := newTestTrack(t, "")
	_, downs, writers := addBound(t, ft, 1)
	d, w := downs[0], writers[0]
	const packets, size = 40, 1000
	for i := range packets {
		p := append(vp8(i == 0), make([]byte, size)...)
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(500 + i), Timestamp: 90}, Payload: p}).Marshal()
		ls[0].cache.put(uint16(500+i), raw)
		sendFrame(ft, ls[0], uint16(500+i), 90, i == 0)
	}
	// An estimate of 400 kbit/s allows 12,500 bytes a tick: 12 of the
	// 40 packets of about 1 KB asked for.
	d.sub.bwe.est = 400_000
	allowed := int(400_000*rtxShare*tickInterval.Seconds()/8) / (size + 1)
	var seqs []uint16
	for i := range packets {
		seqs = append(seqs, w.last.SequenceNumber-uint16(packets-1-i))
	}
	n := w.n
	d.retransmit(seqs)
	if got := w.n - n; got != allowed {
		t.Errorf("resent %d of %d packets asked for; want %d", got, packets, allowed)
	}
	if st := d.sub.Stats().Video; st.Retransmitted != uint64(allowed) || st.NACKOverBudget != uint64(packets-allowed) {
		t.Errorf("stats %+v; want %d retransmitted and %d over budget", st, allowed, packets-allowed)
	}
	// The next tick brings a new allowance.
	d.sub.rtxSent.Store(0)
	n = w.n
	d.retransmit(seqs[:1])
	if w.n != n+1 {
		t.Error("after a new tick, a NACK went unanswered")
	}
}
