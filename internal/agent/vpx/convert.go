//go:build cgo && !novpx

package vpx

/*
#include <stddef.h>
#include <stdint.h>

// The conversions use BT.601 coefficients with limited ("studio") range,
// Y in 16..235 and Cb/Cr in 16..240, in 8-bit fixed point: that is what a
// VP8 stream without colour metadata is assumed to carry, so browsers show
// the colours the agent captured. Offsets are added before each shift so
// that only non-negative values are shifted.

static inline uint8_t tandem_luma(int r, int g, int b) {
	return (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
}

// tandem_bgrx_to_i420 converts a w×h BGRX image (bytes B, G, R, unused) to
// packed I420: the Y plane (stride w), then U and V (stride w/2). w and h
// must be even; each chroma sample averages a 2×2 block.
static void tandem_bgrx_to_i420(const uint8_t *src, size_t stride, uint8_t *dst, int w, int h) {
	const size_t cw = (size_t)w / 2;
	uint8_t *py = dst, *pu = dst + (size_t)w * h, *pv = pu + cw * ((size_t)h / 2);
	for (int row = 0; row < h; row += 2) {
		const uint8_t *s0 = src + (size_t)row * stride, *s1 = s0 + stride;
		uint8_t *y0 = py + (size_t)row * w, *y1 = y0 + w;
		uint8_t *u = pu + (size_t)(row / 2) * cw, *v = pv + (size_t)(row / 2) * cw;
		for (int x = 0; x < w; x += 2) {
			const uint8_t *p = s0 + 4 * (size_t)x, *q = s1 + 4 * (size_t)x;
			y0[x] = tandem_luma(p[2], p[1], p[0]);
			y0[x + 1] = tandem_luma(p[6], p[5], p[4]);
			y1[x] = tandem_luma(q[2], q[1], q[0]);
			y1[x + 1] = tandem_luma(q[6], q[5], q[4]);
			int r = (p[2] + p[6] + q[2] + q[6] + 2) >> 2;
			int g = (p[1] + p[5] + q[1] + q[5] + 2) >> 2;
			int b = (p[0] + p[4] + q[0] + q[4] + 2) >> 2;
			u[x / 2] = (uint8_t)((-38 * r - 74 * g + 112 * b + 32896) >> 8);
			v[x / 2] = (uint8_t)((112 * r - 94 * g - 18 * b + 32896) >> 8);
		}
	}
}

static inline uint8_t tandem_clamp(int v) {
	v = ((v + 128 + (512 << 8)) >> 8) - 512;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// tandem_i420_to_rgba converts a w×h I420 picture (any size, chroma
// rounded up) to RGBA with opaque alpha.
static void tandem_i420_to_rgba(const uint8_t *py, size_t ys, const uint8_t *pu, size_t us,
                                const uint8_t *pv, size_t vs, uint8_t *dst, size_t ds, int w, int h) {
	for (int row = 0; row < h; row++) {
		const uint8_t *y = py + (size_t)row * ys;
		const uint8_t *u = pu + (size_t)(row / 2) * us, *v = pv + (size_t)(row / 2) * vs;
		uint8_t *o = dst + (size_t)row * ds;
		for (int x = 0; x < w; x++, o += 4) {
			int c = 298 * (y[x] - 16), d = u[x / 2] - 128, e = v[x / 2] - 128;
			o[0] = tandem_clamp(c + 409 * e);
			o[1] = tandem_clamp(c - 100 * d - 208 * e);
			o[2] = tandem_clamp(c + 516 * d);
			o[3] = 255;
		}
	}
}
*/
import "C"

import (
	"fmt"
	"image"
	"math"
	"unsafe"
)

// i420Size is the length of a packed w×h I420 picture (w and h even).
func i420Size(w, h int) int { return w * h * 3 / 2 }

// checkBGRX reports whether a w×h BGRX image of n bytes with this row
// stride can be read without going out of bounds: a whole stride for
// every row but the last, which needs only its w pixels. It keeps stride
// within a C int so that the C side cannot overflow.
func checkBGRX(n, stride, w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: image size %d×%d", ErrInvalid, w, h)
	}
	if stride < 4*w || stride > math.MaxInt32 {
		return fmt.Errorf("%w: stride %d for a %d-pixel-wide BGRX image", ErrInvalid, stride, w)
	}
	// The last row needs only its pixels: a picture cut from a larger
	// one (one monitor of a desktop) ends where its last pixel does.
	if stride > math.MaxInt/h || n < stride*(h-1)+4*w {
		return fmt.Errorf("%w: %d bytes is less than stride %d × %d rows and a last row of %d pixels", ErrInvalid, n, stride, h-1, w)
	}
	return nil
}

// bgrxToI420 converts the top-left w×h pixels of src into dst, packed
// I420. The C code reads src and writes dst only during the call, so
// either may be Go or C memory.
func bgrxToI420(dst, src []byte, stride, w, h int) error {
	if w%2 != 0 || h%2 != 0 {
		return fmt.Errorf("%w: I420 needs even sizes, not %d×%d", ErrInvalid, w, h)
	}
	if err := checkBGRX(len(src), stride, w, h); err != nil {
		return err
	}
	if len(dst) < i420Size(w, h) {
		return fmt.Errorf("%w: I420 buffer of %d bytes for %d×%d", ErrInvalid, len(dst), w, h)
	}
	C.tandem_bgrx_to_i420((*C.uint8_t)(unsafe.Pointer(&src[0])), C.size_t(stride),
		(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(w), C.int(h))
	return nil
}

// plane is one plane of a YUV picture: its bytes and row stride.
type plane struct {
	pix    []byte
	stride int
}

// i420ToRGBA converts an I420 picture the size of dst's bounds into dst.
// Chroma planes cover (w+1)/2 × (h+1)/2 samples.
func i420ToRGBA(dst *image.RGBA, y, u, v plane) error {
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	cw, ch := (w+1)/2, (h+1)/2
	if w <= 0 || h <= 0 || dst.Stride < 4*w || len(dst.Pix) < dst.Stride*(h-1)+4*w {
		return fmt.Errorf("%w: RGBA image %v with stride %d", ErrInvalid, dst.Rect, dst.Stride)
	}
	for _, p := range []struct {
		plane
		w, h int
	}{{y, w, h}, {u, cw, ch}, {v, cw, ch}} {
		if p.stride < p.w || len(p.pix) < p.stride*(p.h-1)+p.w {
			return fmt.Errorf("%w: %d-byte plane with stride %d for %d×%d samples", ErrInvalid, len(p.pix), p.stride, p.w, p.h)
		}
	}
	C.tandem_i420_to_rgba(
		(*C.uint8_t)(unsafe.Pointer(&y.pix[0])), C.size_t(y.stride),
		(*C.uint8_t)(unsafe.Pointer(&u.pix[0])), C.size_t(u.stride),
		(*C.uint8_t)(unsafe.Pointer(&v.pix[0])), C.size_t(v.stride),
		(*C.uint8_t)(unsafe.Pointer(&dst.Pix[0])), C.size_t(dst.Stride), C.int(w), C.int(h))
	return nil
}
