package sfu

import (
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
)

// lazyFactory wraps an interceptor whose BindRTCPWriter starts a ticker
// (pion's NACK generator, receiver reports, TWCC feedback) so that the
// ticker starts only when the PeerConnection receives its first stream.
// Most pub PCs of a large room never do (listeners offer a receive-only
// section), and a node with hundreds of members would otherwise wake
// several times per member every 100 ms for nothing.
//
// It is only for interceptors whose BindRTCPWriter returns the writer it
// was given; those three do.
//
// mode is the PC's receive path (srtpin.go): the first stream decides for
// pion's interceptors unless direct input was decided first, in which case
// they never start and streams pass through untouched.
type lazyFactory struct {
	inner interceptor.Factory
	mode  *atomic.Int32
}

func (f lazyFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	in, err := f.inner.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &lazyInterceptor{inner: in, mode: f.mode}, nil
}

type lazyInterceptor struct {
	inner interceptor.Interceptor
	mode  *atomic.Int32

	mu      sync.Mutex
	writer  interceptor.RTCPWriter
	started bool
}

func (l *lazyInterceptor) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return l.inner.BindRTCPReader(r)
}

// BindRTCPWriter keeps the writer for the first remote stream.
func (l *lazyInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	l.mu.Lock()
	l.writer = w
	l.mu.Unlock()
	return w
}

func (l *lazyInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return l.inner.BindLocalStream(info, w)
}

func (l *lazyInterceptor) UnbindLocalStream(info *interceptor.StreamInfo) {
	l.inner.UnbindLocalStream(info)
}

// BindRemoteStream starts the inner interceptor's loop on the first stream.
func (l *lazyInterceptor) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if !l.mode.CompareAndSwap(modeUndecided, modePion) && l.mode.Load() == modeDirect {
		return r
	}
	l.mu.Lock()
	if !l.started && l.writer != nil {
		l.started = true
		l.inner.BindRTCPWriter(l.writer)
	}
	l.mu.Unlock()
	return l.inner.BindRemoteStream(info, r)
}

func (l *lazyInterceptor) UnbindRemoteStream(info *interceptor.StreamInfo) {
	l.inner.UnbindRemoteStream(info)
}

func (l *lazyInterceptor) Close() error { return l.inner.Close() }
