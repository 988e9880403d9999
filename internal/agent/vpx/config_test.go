package vpx

import (
	"errors"
	"testing"
)

func TestEncoderConfigDefaults(t *testing.T) {
	got := EncoderConfig{Width: 640, Height: 360}.withDefaults()
	want := EncoderConfig{Width: 640, Height: 360, FPS: 30, BitrateKbps: 1500, Threads: 2}
	if got != want {
		t.Fatalf("defaults: got %+v, want %+v", got, want)
	}
	set := EncoderConfig{Width: 2, Height: 2, FPS: 5, BitrateKbps: 300, Threads: 1}
	if got := set.withDefaults(); got != set {
		t.Fatalf("defaults overwrote set fields: got %+v, want %+v", got, set)
	}
}

func TestEncoderConfigValidate(t *testing.T) {
	ok := EncoderConfig{Width: 1280, Height: 720}.withDefaults()
	with := func(f func(*EncoderConfig)) EncoderConfig {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		cfg   EncoderConfig
		valid bool
	}{
		{"defaults", ok, true},
		{"smallest", with(func(c *EncoderConfig) { c.Width, c.Height = 2, 2 }), true},
		{"largest", with(func(c *EncoderConfig) { c.Width, c.Height = MaxDimension, MaxDimension }), true},
		{"odd width", with(func(c *EncoderConfig) { c.Width = 1279 }), false},
		{"odd height", with(func(c *EncoderConfig) { c.Height = 719 }), false},
		{"zero width", with(func(c *EncoderConfig) { c.Width = 0 }), false},
		{"negative height", with(func(c *EncoderConfig) { c.Height = -720 }), false},
		{"too wide", with(func(c *EncoderConfig) { c.Width = MaxDimension + 2 }), false},
		{"negative fps", with(func(c *EncoderConfig) { c.FPS = -1 }), false},
		{"fps too high", with(func(c *EncoderConfig) { c.FPS = MaxFPS + 1 }), false},
		{"negative bitrate", with(func(c *EncoderConfig) { c.BitrateKbps = -1 }), false},
		{"bitrate too high", with(func(c *EncoderConfig) { c.BitrateKbps = MaxBitrateKbps + 1 }), false},
		{"negative threads", with(func(c *EncoderConfig) { c.Threads = -2 }), false},
		{"too many threads", with(func(c *EncoderConfig) { c.Threads = MaxThreads + 1 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if tt.valid && err != nil {
				t.Fatalf("validate(%+v) = %v, want nil", tt.cfg, err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate(%+v) = %v, want ErrInvalid", tt.cfg, err)
			}
		})
	}
}
