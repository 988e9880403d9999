//go:build !linux

package hugepage

import "time"

// Mode reports "" where transparent huge pages are not a thing.
func Mode() string { return "" }

// Keep does nothing on this platform.
func Keep(time.Duration, <-chan struct{}) {}
