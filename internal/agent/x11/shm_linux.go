package x11

import (
	"fmt"

	"github.com/jezek/xgb/shm"
	"golang.org/x/sys/unix"
)

// attachSHM creates a shared memory segment of size bytes and has the X
// server attach it.
func (g *Grabber) attachSHM(size int) error {
	if _, err := initExtension(g.conn, "MIT-SHM"); err != nil {
		return err
	}
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|0o600)
	if err != nil {
		return fmt.Errorf("x11: shmget: %w", err)
	}
	buf, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		_, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return fmt.Errorf("x11: shmat: %w", err)
	}
	seg, err := shm.NewSegId(g.conn)
	if err == nil {
		err = shm.AttachChecked(g.conn, seg, uint32(id), false).Check()
	}
	// The server has attached or never will: mark the segment for removal
	// now. It lives on until both sides detach, and no crash leaks it.
	_, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if err != nil {
		_ = unix.SysvShmDetach(buf)
		return fmt.Errorf("x11: shm attach: %w", err)
	}
	g.seg, g.shmBuf = seg, buf
	return nil
}

// detachSHM unmaps the segment from this process.
func detachSHM(buf []byte) error { return unix.SysvShmDetach(buf) }
