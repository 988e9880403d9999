package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	_ "image/gif"  // pictures people upload
	_ "image/jpeg" // pictures people upload

	"github.com/tandemcall/tandem/internal/store"
)

// A person's picture: optional (their initials stand in), at most
// MaxAvatarBytes uploaded, and never kept as uploaded: it is decoded,
// scaled down to fit avatarSize and written anew as a PNG, so that
// nothing of the original file (its camera's metadata, where it was
// taken) is kept or shown.

// Limits on an uploaded picture.
const (
	MaxAvatarBytes  = 2 << 20 // the file
	maxAvatarPixels = 25e6    // its decoded size: no image bomb
	avatarSize      = 256     // the longer side kept
)

// ErrAvatar is a picture that cannot be used.
var ErrAvatar = errors.New("that picture cannot be used: send a JPEG, PNG or GIF of at most 2 MB")

// cleanAvatar decodes an uploaded picture and returns it as a PNG of at
// most avatarSize a side, with nothing of the original file but its
// pixels.
func cleanAvatar(b []byte) ([]byte, error) {
	if len(b) == 0 || len(b) > MaxAvatarBytes {
		return nil, ErrAvatar
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || float64(cfg.Width)*float64(cfg.Height) > maxAvatarPixels {
		return nil, ErrAvatar
	}
	src, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, ErrAvatar
	}
	var out bytes.Buffer
	if err := png.Encode(&out, scaleDown(src, avatarSize)); err != nil {
		return nil, fmt.Errorf("accounts: encode a picture: %w", err)
	}
	return out.Bytes(), nil
}

// scaleDown returns src fitted into side×side, each pixel the mean of the
// source pixels it covers (a box filter: good enough for a face at
// 256 pixels, and no dependency).
func scaleDown(src image.Image, side int) *image.NRGBA {
	sb := src.Bounds()
	w, h := sb.Dx(), sb.Dy()
	dw, dh := w, h
	if w > side || h > side {
		if w >= h {
			dw, dh = side, (h*side+w/2)/w
		} else {
			dw, dh = (w*side+h/2)/h, side
		}
	}
	dw, dh = max(dw, 1), max(dh, 1)
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		y0, y1 := sb.Min.Y+y*h/dh, sb.Min.Y+max((y+1)*h/dh, y*h/dh+1)
		for x := range dw {
			x0, x1 := sb.Min.X+x*w/dw, sb.Min.X+max((x+1)*w/dw, x*w/dw+1)
			var r, g, b, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					c := color.NRGBAModel.Convert(src.At(sx, sy)).(color.NRGBA)
					r, g, b, a, n = r+uint64(c.R), g+uint64(c.G), b+uint64(c.B), a+uint64(c.A), n+1
				}
			}
			dst.SetNRGBA(x, y, color.NRGBA{R: uint8(r / n), G: uint8(g / n), B: uint8(b / n), A: uint8(a / n)})
		}
	}
	return dst
}

// SetAvatar sets actor's picture from an uploaded file; nil removes it.
func (s *Service) SetAvatar(ctx context.Context, actor string, upload []byte) error {
	if _, err := s.active(ctx, actor); err != nil {
		return err
	}
	if upload == nil {
		return s.store.SetAvatar(ctx, actor, nil)
	}
	clean, err := cleanAvatar(upload)
	if err != nil {
		return err
	}
	return s.store.SetAvatar(ctx, actor, clean)
}

// Avatar is user's picture as actor may see it: their own, or a
// contact's.
func (s *Service) Avatar(ctx context.Context, actor, user string) ([]byte, error) {
	if actor != user {
		ok, err := s.isContact(ctx, actor, user)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrForbidden
		}
	}
	b, err := s.store.Avatar(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoAvatar
	}
	return b, err
}

// ErrNoAvatar: the person has no picture; their initials stand in.
var ErrNoAvatar = errors.New("no picture")
