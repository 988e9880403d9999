// Package hugepage backs the process's anonymous memory, the Go heap and
// goroutine stacks among it, with transparent huge pages where the system
// leaves that to each process (THP mode "madvise", the default of many
// distributions).
//
// Forwarding one packet to many subscribers touches a little of each
// subscriber's state: its track, its SRTP context, its address. Spread over
// 4 KiB pages, that is a TLB miss per touch, and under virtualisation each
// miss walks two levels of page tables. On a 2-vCPU virtual machine, huge
// pages took the SFU's CPU per forwarded packet down by a quarter to a half
// (docs/benchmarks.md). The cost is memory: a huge page is resident whole,
// so the process keeps up to its peak heap resident rather than returning
// free 4 KiB pages to the system.
package hugepage

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// hugeSize is the size of a transparent huge page on the platforms Tandem
// runs on (x86-64 and arm64 with 4 KiB base pages).
const hugeSize = 2 << 20

// Mode is the system's THP setting: "always", "madvise" or "never" ("" if
// unknown).
func Mode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	if i, j := bytes.IndexByte(b, '['), bytes.IndexByte(b, ']'); i >= 0 && j > i {
		return string(b[i+1 : j])
	}
	return ""
}

// span is one mapping's whole huge pages, [start, end).
type span struct{ start, end uintptr }

// Adviser remembers which mappings it has advised, so that each pass only
// touches mappings that are new since the last.
type Adviser struct {
	seen map[span]bool
}

// NewAdviser returns an Adviser that has advised nothing yet.
func NewAdviser() *Adviser { return &Adviser{seen: map[span]bool{}} }

// Advise marks every private anonymous read-write mapping it has not seen
// before, of at least one huge page, with MADV_HUGEPAGE, so that pages
// faulted in there from now on are huge, and collapses the pages already
// present into huge pages (MADV_COLLAPSE, Linux 6.1 and later; older
// kernels leave that to khugepaged). It returns how many bytes it advised.
func (a *Adviser) Advise() (int64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	now := map[span]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := anonRW(sc.Bytes())
		if !ok {
			continue
		}
		// Only whole huge pages can be huge; leave the ragged ends.
		sp := span{(start + hugeSize - 1) &^ (hugeSize - 1), end &^ (hugeSize - 1)}
		if sp.end <= sp.start {
			continue
		}
		now[sp] = true
		if a.seen[sp] {
			continue
		}
		// Raw syscalls: the range is only an address to the kernel.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, sp.start, sp.end-sp.start, unix.MADV_HUGEPAGE); errno != 0 {
			delete(now, sp) // the mapping went away or changed since it was read
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, sp.start, sp.end-sp.start, unix.MADV_COLLAPSE)
		total += int64(sp.end - sp.start)
	}
	a.seen = now
	return total, sc.Err()
}

// anonRW parses one line of /proc/self/maps and reports the range of a
// private, anonymous, read-write mapping.
func anonRW(line []byte) (start, end uintptr, ok bool) {
	// address perms offset dev inode [path]
	fields := bytes.Fields(line)
	if len(fields) != 5 || !bytes.Equal(fields[1], []byte("rw-p")) || !bytes.Equal(fields[4], []byte("0")) {
		return 0, 0, false // a file, [heap], [stack] and the like, or not writable
	}
	addr := fields[0]
	dash := bytes.IndexByte(addr, '-')
	if dash < 0 {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(string(addr[:dash]), 16, 64)
	e, err2 := strconv.ParseUint(string(addr[dash+1:]), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}

// Keep advises now and then every interval until stop is closed: the Go
// runtime maps more heap as it grows, and each new mapping starts without
// the advice. A pass that finds nothing new costs one read of
// /proc/self/maps. Under THP modes other than "madvise" it returns at once:
// "always" needs no advice and "never" ignores it.
func Keep(interval time.Duration, stop <-chan struct{}) {
	if Mode() != "madvise" {
		return
	}
	a := NewAdviser()
	_, _ = a.Advise()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_, _ = a.Advise()
		case <-stop:
			return
		}
	}
}
