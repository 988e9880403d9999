package udpx

import (
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time (user + system) the calling OS thread has used.
// Softirq work done on the thread's behalf, such as loopback delivery into
// the receiving socket, counts as its system time.
func threadCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendFloor is the least CPU a forwarded packet can cost a node on
// this machine: the kernel's share of sending it, and nothing of the SFU.
// One OS thread sends the same bursts as the SFU does in the SFU
// benchmark's scenarios (scripts/bench-sfu.sh), paced as real media is,
// through this package's corked batches (GSO where several datagrams go to
// one address), to sockets that goroutines read as receiving clients do.
// The metric is the sending thread's CPU per datagram, which includes the
// loopback delivery into the receiver's socket and its wakeup, as a node's
// process CPU does.
//
//	audio   1 Opus packet of 120 bytes to each of 100 listeners every 20 ms
//	video   a 4-packet frame of 1040-byte packets to each of 20 subscribers
//	        every 33 ms
//	video-nogso  the same, one datagram per message
//	blast   the audio burst back to back, without pacing: the warm-cache
//	        figure that small-scale benchmarks usually report
//
// Run with a fixed count, e.g. -benchtime=300x: each iteration is one burst.
func BenchmarkSendFloor(b *testing.B) {
	for _, sc := range []struct {
		name              string
		dests, each, size int
		every             time.Duration
		noGSO             bool
	}{
		{"audio", 100, 1, 120, 20 * time.Millisecond, false},
		{"video", 20, 4, 1040, 33 * time.Millisecond, false},
		{"video-nogso", 20, 4, 1040, 33 * time.Millisecond, true},
		{"blast", 100, 1, 120, 0, false},
	} {
		b.Run(sc.name, func(b *testing.B) {
			c := newTestConn(b, "udp4", "127.0.0.1:0", Options{WriteQueue: 256, DisableGSO: sc.noGSO})
			addrs := make([]net.Addr, sc.dests)
			var wg sync.WaitGroup
			b.Cleanup(wg.Wait) // runs last, after the receivers close
			var received sync.Map
			for i := range addrs {
				r := newReceiver(b, "udp4")
				_ = r.SetReadBuffer(1 << 20)
				addrs[i] = r.LocalAddr()
				wg.Go(func() {
					buf := make([]byte, 2000)
					n := 0
					for {
						if _, err := r.Read(buf); err != nil {
							received.Store(i, n)
							return
						}
						n++
					}
				})
			}
			msg := make([]byte, sc.size)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			next := time.Now()
			b.ResetTimer()
			for range b.N {
				if sc.every > 0 {
					next = next.Add(sc.every)
					time.Sleep(time.Until(next))
				}
				start := threadCPU(b)
				c.Cork()
				for range sc.each {
					for _, a := range addrs {
						if _, err := c.WriteTo(msg, a); err != nil {
							b.Fatal(err)
						}
					}
				}
				c.Uncork()
				cpu += threadCPU(b) - start
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*sc.dests*sc.each), "cpu-µs/datagram")
			b.ReportMetric(0, "ns/op")
		})
	}
}
