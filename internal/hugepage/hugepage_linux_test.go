package hugepage

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"testing"
)

func TestAnonRW(t *testing.T) {
	for _, tc := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"c000000000-c004000000 rw-p 00000000 00:00 0 ", 0xc000000000, 0xc004000000, true},
		{"7f740f6af000-7f740f7ff000 rw-p 00000000 00:00 0", 0x7f740f6af000, 0x7f740f7ff000, true},
		{"00400000-00ba0000 r-xp 00000000 08:01 123 /usr/bin/tandem", 0, 0, false},
		{"01a00000-01c00000 rw-p 00000000 00:00 0 [heap]", 0, 0, false},
		{"7ffd0000-7ffd2000 rw-p 00000000 00:00 0 [stack]", 0, 0, false},
		{"7f0000000000-7f0000200000 rw-s 00000000 00:05 9 /dev/zero (deleted)", 0, 0, false},
		{"7f0000000000-7f0000200000 ---p 00000000 00:00 0", 0, 0, false},
		{"zz-7f0000200000 rw-p 00000000 00:00 0", 0, 0, false},
		{"7f0000200000-7f0000000000 rw-p 00000000 00:00 0", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, e, ok := anonRW([]byte(tc.line))
		if s != tc.start || e != tc.end || ok != tc.ok {
			t.Errorf("anonRW(%q) = %#x, %#x, %v; want %#x, %#x, %v", tc.line, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
}

// anonHuge is the process's anonymous memory in huge pages, in bytes.
func anonHuge(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("AnonHugePages:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no AnonHugePages in smaps_rollup")
	return 0
}

var sink []byte

// TestAdviseMakesHeapHuge checks, where the system leaves huge pages to each
// process, that heap memory the process already uses becomes huge pages
// after Advise, and that a second pass finds nothing new to advise.
func TestAdviseMakesHeapHuge(t *testing.T) {
	if m := Mode(); m != "madvise" {
		t.Skipf("THP mode %q: nothing to advise", m)
	}
	sink = make([]byte, 64<<20)
	for i := range sink {
		sink[i] = byte(i)
	}
	before := anonHuge(t)
	a := NewAdviser()
	n, err := a.Advise()
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(len(sink))/2 {
		t.Fatalf("advised %d bytes, less than half of a %d-byte heap", n, len(sink))
	}
	after := anonHuge(t)
	if after-before < 32<<20 {
		t.Skipf("huge pages %d → %d bytes: this kernel does not collapse on request (MADV_COLLAPSE needs Linux 6.1)", before, after)
	}
	if again, err := a.Advise(); err != nil || again > n/4 {
		t.Errorf("second pass advised %d bytes (err %v); want little or nothing new", again, err)
	}
	for i := range sink {
		if sink[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
}
