package vpx

import "fmt"

// Defaults applied to zero fields of an EncoderConfig.
const (
	DefaultFPS         = 30
	DefaultBitrateKbps = 1500
	DefaultThreads     = 2
)

// Limits checked by NewEncoder. The size limit is VP8's: the frame header
// holds 14 bits per dimension, and 16383 is odd. The others keep values
// within what libvpx accepts, so that a bad setting fails here with a
// message naming it rather than deep inside libvpx.
const (
	MaxDimension   = 16382
	MaxFPS         = 1000
	MaxBitrateKbps = 1_000_000
	MaxThreads     = 64
)

// EncoderConfig describes the stream an Encoder produces. Zero FPS,
// BitrateKbps and Threads take the defaults above.
type EncoderConfig struct {
	// Width and Height are the size of the encoded picture in pixels;
	// both must be even (I420 halves them for chroma) and positive.
	// The images given to Encode may be larger; the top-left
	// Width×Height pixels are encoded.
	Width, Height int
	// FPS is the rate at which the caller means to call Encode. Rate
	// control spends BitrateKbps/FPS bits on an average frame, so it
	// should match the capture rate.
	FPS int
	// BitrateKbps is the constant bitrate target in kbit/s.
	BitrateKbps int
	// Threads is how many threads libvpx may use for one frame.
	Threads int
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.BitrateKbps == 0 {
		c.BitrateKbps = DefaultBitrateKbps
	}
	if c.Threads == 0 {
		c.Threads = DefaultThreads
	}
	return c
}

// validate reports the first field of c (after defaults) that libvpx
// cannot use, naming it.
func (c EncoderConfig) validate() error {
	switch {
	case c.Width <= 0 || c.Width%2 != 0 || c.Width > MaxDimension:
		return fmt.Errorf("%w: Width %d must be even and in 2..%d", ErrInvalid, c.Width, MaxDimension)
	case c.Height <= 0 || c.Height%2 != 0 || c.Height > MaxDimension:
		return fmt.Errorf("%w: Height %d must be even and in 2..%d", ErrInvalid, c.Height, MaxDimension)
	case c.FPS < 1 || c.FPS > MaxFPS:
		return fmt.Errorf("%w: FPS %d must be in 1..%d", ErrInvalid, c.FPS, MaxFPS)
	case c.BitrateKbps < 1 || c.BitrateKbps > MaxBitrateKbps:
		return fmt.Errorf("%w: BitrateKbps %d must be in 1..%d", ErrInvalid, c.BitrateKbps, MaxBitrateKbps)
	case c.Threads < 1 || c.Threads > MaxThreads:
		return fmt.Errorf("%w: Threads %d must be in 1..%d", ErrInvalid, c.Threads, MaxThreads)
	}
	return nil
}
