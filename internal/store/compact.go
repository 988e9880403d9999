package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
)

// A Local store's history and audit files only grow while it runs: every
// entry is appended, and entries that went (pushed out by the per-user
// limit, or grouped into a newer one) stay in the file until it is
// rewritten. So a file is compacted while the store runs once it is at
// least compactMin and more than twice what was live at the last
// compaction: its live entries are written to a new file in the
// background, from a snapshot, while appends go on to the old file and
// are also kept aside; then, under the lock, those are appended to the new
// file, which is synced and renamed over the old one. A crash at any point
// leaves either the old file, complete, or the new one, complete. The lock
// is held only for the appends made meanwhile, a sync of them and the
// rename; the work of a compaction is proportional to what is live, and
// it runs once the file has doubled, so it costs each append O(1). (Redis
// rewrites its append-only file by the same rule.)

// defaultCompactMin is the least size at which a file is compacted.
const defaultCompactMin = 1 << 20

// compactable is a file of the store that is compacted while it runs.
type compactable struct {
	name string
	f    **os.File // the open file, a field of Local
	// records returns what is live, for the file, from a snapshot taken
	// at the call (under the lock): its lists may be written out later
	// without the lock, so they must never be changed in place.
	records func() iter.Seq[any]

	size    int64  // bytes in the file
	base    int64  // what was live at the last compaction or rewrite, in bytes
	gen     uint64 // counts replacements of the file
	running bool   // a compaction is under way
	tail    [][]byte
}

// compactableOf returns the compactable whose file is *f, or nil.
func (l *Local) compactableOf(f **os.File) *compactable {
	for _, c := range l.compactables {
		if c.f == f {
			return c
		}
	}
	return nil
}

// written appends rec to *f, and compacts the file when it has grown
// enough. The caller holds l.mu.
func (l *Local) written(f **os.File, rec any) error {
	if *f == nil {
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	b = append(b, '\n')
	n, err := (*f).Write(b)
	c := l.compactableOf(f)
	if c == nil {
		return wrapWrite(err)
	}
	c.size += int64(n)
	if c.running {
		c.tail = append(c.tail, b)
	}
	if err == nil && !c.running && l.due(c) {
		l.startCompaction(c)
	}
	return wrapWrite(err)
}

func wrapWrite(err error) error {
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// due reports whether c's file has grown enough to be compacted.
func (l *Local) due(c *compactable) bool {
	return c.size >= l.compactMin && c.size > 2*c.base
}

// rewrote notes that *f was replaced by a whole new file (at open,
// erasure, pruning): a compaction under way is moot.
func (l *Local) rewrote(f **os.File) {
	c := l.compactableOf(f)
	if c == nil || *f == nil {
		return
	}
	c.gen++
	c.size = 0
	if st, err := (*f).Stat(); err == nil {
		c.size = st.Size()
	}
	c.base = c.size
}

// startCompaction starts compacting c's file in the background. The
// caller holds l.mu.
func (l *Local) startCompaction(c *compactable) {
	c.running, c.tail = true, [][]byte{}
	l.bg.Add(1)
	go l.compact(c, c.gen, c.records())
}

// compact writes recs to a new file and puts it in the place of c's, with
// what was appended meanwhile, unless the file was replaced meanwhile (an
// erasure: the snapshot may hold what was erased) or the store closed.
func (l *Local) compact(c *compactable, gen uint64, recs iter.Seq[any]) {
	defer l.bg.Done()
	path := l.path(c.name)
	tmp := path + ".compact"
	nf, n, err := l.writeSnapshot(tmp, recs)
	if l.compactHook != nil {
		l.compactHook()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tail := c.tail
	c.running, c.tail = false, nil
	discard := func() {
		if nf != nil {
			nf.Close()
			os.Remove(tmp)
		}
		// Try again once the file has doubled again, not at every append.
		c.base = c.size
	}
	if err != nil || l.closed || c.gen != gen {
		discard()
		return
	}
	live := n
	for _, b := range tail {
		m, err := nf.Write(b)
		n += int64(m)
		if err != nil {
			discard()
			return
		}
	}
	if nf.Sync() != nil || os.Rename(tmp, path) != nil {
		discard()
		return
	}
	// The new file is in place; a failed directory sync leaves the rename
	// to the file system's own time, as rewrite does.
	_ = syncDir(l.dir)
	(*c.f).Close()
	*c.f = nf
	c.gen++
	// What was appended meanwhile is not all live: measure from the
	// snapshot, and go again at once if that much came in meanwhile.
	c.size, c.base = n, live
	if l.due(c) && !l.stopping.Load() {
		l.startCompaction(c)
	}
}

// errStopping ends a compaction when the store closes.
var errStopping = errors.New("store: closing")

// writeSnapshot writes recs to a new file at path, synced, and returns
// it open for appending with its size.
func (l *Local) writeSnapshot(path string, recs iter.Seq[any]) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	cw := &countingWriter{w: f}
	w := bufio.NewWriter(cw)
	enc := json.NewEncoder(w)
	for r := range recs {
		if l.stopping.Load() {
			err = errStopping
			break
		}
		if err = enc.Encode(r); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, err
	}
	return f, cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w *os.File
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
