package client

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Load sources (MediaOptions.VideoBitrate and AudioFrameBytes) send packets
// of realistic sizes, built here rather than by pion's packetizer, and end
// every packet with a stamp: a 4-byte magic and the send time in Unix
// nanoseconds, big-endian. A receiver in the same process reads it back
// with SentAt to measure one-way latency; the SFU forwards payloads as they
// are. The payloads only need to look right to the SFU and to keyframe
// detection, not to a decoder.

// Sizes of load packets.
const (
	// MaxLoadPayload bounds the RTP payload of a load packet.
	MaxLoadPayload = 1200
	// stampLen is the length of the trailer with the send time.
	stampLen = 12
	// MinLoadAudioBytes is the smallest load Opus packet: a TOC byte and
	// the stamp.
	MinLoadAudioBytes = 1 + stampLen
	// vp8LoadHeader is the room the first packet of a frame needs before
	// the stamp: the payload descriptor and a keyframe header.
	vp8LoadHeader = 1 + 10
	// MinLoadVideoBitrate gives frames of at least one packet with room
	// for the keyframe header and the stamp.
	MinLoadVideoBitrate = (vp8LoadHeader + stampLen) * 8 * 30
)

// stampMagic starts the stamp.
const stampMagic = "tdms"

// putStamp writes send time t into the last stampLen bytes of b.
func putStamp(b []byte, t time.Time) {
	tail := b[len(b)-stampLen:]
	copy(tail, stampMagic)
	binary.BigEndian.PutUint64(tail[len(stampMagic):], uint64(t.UnixNano()))
}

// SentAt returns the send time stamped at the end of a load packet's
// payload; ok is false when the payload carries none.
func SentAt(payload []byte) (t time.Time, ok bool) {
	if len(payload) < stampLen {
		return time.Time{}, false
	}
	tail := payload[len(payload)-stampLen:]
	if string(tail[:len(stampMagic)]) != stampMagic {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(tail[len(stampMagic):]))), true
}

// checkMediaOptions rejects options that do not fit together and load
// sizes that cannot carry a stamp.
func checkMediaOptions(o MediaOptions) error {
	switch {
	case o.ReceiveOnly && (o.Audio || o.Video):
		return fmt.Errorf("%w: ReceiveOnly with Audio or Video", ErrMediaOptions)
	case o.AudioFrameBytes != 0 && (o.AudioFrameBytes < MinLoadAudioBytes || o.AudioFrameBytes > MaxLoadPayload):
		return fmt.Errorf("%w: AudioFrameBytes %d out of range %d–%d", ErrMediaOptions, o.AudioFrameBytes, MinLoadAudioBytes, MaxLoadPayload)
	case o.Simulcast && o.VideoBitrate < 10*MinLoadVideoBitrate:
		return fmt.Errorf("%w: Simulcast needs VideoBitrate of at least %d", ErrMediaOptions, 10*MinLoadVideoBitrate)
	case o.VideoBitrate != 0 && o.VideoBitrate < MinLoadVideoBitrate:
		return fmt.Errorf("%w: VideoBitrate %d below %d", ErrMediaOptions, o.VideoBitrate, MinLoadVideoBitrate)
	}
	return o.ReceivePorts.check()
}

// loadFrameSizes splits a frame of frameBytes into the fewest packets of at
// most MaxLoadPayload bytes, of equal size but for the last.
func loadFrameSizes(frameBytes int) []int {
	n := (frameBytes + MaxLoadPayload - 1) / MaxLoadPayload
	size := (frameBytes + n - 1) / n
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = min(size, frameBytes)
		frameBytes -= sizes[i]
	}
	return sizes
}

// newLoadBuffers returns one filler-filled payload buffer per size.
func newLoadBuffers(sizes []int) [][]byte {
	bufs := make([][]byte, len(sizes))
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(j)
		}
		bufs[i] = b
	}
	return bufs
}

// paceVideoLoad sends 30 frames a second of bitrate/30 bits each, every
// frame as a burst of packets: a keyframe first, then every 30th frame and
// after each keyframe request. pion copies each packet before WriteRTP
// returns, so the buffers are reused.
func (m *Media) paceVideoLoad(track *webrtc.TrackLocalStaticRTP, bitrate int) {
	if !m.waitConnected() {
		return
	}
	bufs := newLoadBuffers(loadFrameSizes(bitrate / 8 / 30))
	key, delta := vp8Keyframe()[:vp8LoadHeader-1], vp8Delta()[:3]
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}}
	t := time.NewTicker(videoFrameInterval)
	defer t.Stop()
	sinceKey := keyframeEvery
	for {
		isKey := m.forceKey.Swap(false) || sinceKey >= keyframeEvery
		if isKey {
			sinceKey = 0
		}
		sinceKey++
		first := bufs[0]
		first[0] = 0x10 // VP8 payload descriptor: start of partition 0
		if isKey {
			copy(first[1:], key)
		} else {
			copy(first[1:], delta)
		}
		sent := 0
		for i, b := range bufs {
			if i > 0 {
				b[0] = 0x00 // continuation of partition 0
			}
			putStamp(b, time.Now())
			pkt.Marker = i == len(bufs)-1
			pkt.Payload = b
			if err := track.WriteRTP(&pkt); err == nil {
				sent++
			}
			pkt.SequenceNumber++
		}
		pkt.Timestamp += 90000 / 30
		m.count.videoSent.Add(uint64(sent))
		if isKey && sent > 0 {
			m.count.keyframesSent.Add(1)
		}
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}

// paceAudioLoad sends one Opus packet of size bytes every 20 ms.
func (m *Media) paceAudioLoad(track *webrtc.TrackLocalStaticRTP, size int) {
	if !m.waitConnected() {
		return
	}
	b := newLoadBuffers([]int{size})[0]
	b[0] = opusFrame[0]
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}, Payload: b}
	t := time.NewTicker(audioFrameInterval)
	defer t.Stop()
	for {
		putStamp(b, time.Now())
		if err := track.WriteRTP(&pkt); err == nil {
			m.count.audioSent.Add(1)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 48000 / 50
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}
