//go:build !linux

package x11

import "errors"

// attachSHM is Linux-only: elsewhere the Grabber reads with GetImage.
func (g *Grabber) attachSHM(size int) error {
	return errors.New("x11: MIT-SHM grabs need Linux")
}

func detachSHM(buf []byte) error { return nil }
