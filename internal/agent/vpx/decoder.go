//go:build cgo && !novpx

package vpx

/*
#cgo pkg-config: vpx
#include <stdlib.h>
#include <string.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8dx.h>

// tandem_dec is one decoder, in C memory like the encoder. Input is
// copied into in so that libvpx never sees Go memory.
typedef struct {
	vpx_codec_ctx_t ctx;
	int ready;
	unsigned char *in;
	size_t in_cap;
	vpx_image_t *img;       // the last picture, owned by libvpx
	const char *step;       // what failed, for the error message
	const char *detail;     // libvpx's detail for that failure, if any
} tandem_dec;

static vpx_codec_err_t tandem_dec_open(tandem_dec *d) {
	d->step = "vpx_codec_dec_init";
	vpx_codec_err_t err = vpx_codec_dec_init(&d->ctx, vpx_codec_vp8_dx(), NULL, 0);
	if (err != VPX_CODEC_OK) {
		d->detail = vpx_codec_error_detail(&d->ctx);
		return err;
	}
	d->ready = 1;
	return VPX_CODEC_OK;
}

// tandem_dec_frame copies n bytes from data (Go memory, read only during
// the call) and decodes them. A frame libvpx flags as corrupt is an
// error, since its picture is not what was sent.
static vpx_codec_err_t tandem_dec_frame(tandem_dec *d, const unsigned char *data, size_t n) {
	d->img = NULL;
	d->detail = NULL;
	if (n > d->in_cap) {
		d->step = "allocating the input buffer";
		unsigned char *in = realloc(d->in, n);
		if (in == NULL) return VPX_CODEC_MEM_ERROR;
		d->in = in;
		d->in_cap = n;
	}
	memcpy(d->in, data, n);
	d->step = "vpx_codec_decode";
	vpx_codec_err_t err = vpx_codec_decode(&d->ctx, d->in, (unsigned int)n, NULL, 0);
	if (err == VPX_CODEC_OK) {
		d->step = "VP8D_GET_FRAME_CORRUPTED";
		int corrupt = 0;
		err = vpx_codec_control(&d->ctx, VP8D_GET_FRAME_CORRUPTED, &corrupt);
		if (err == VPX_CODEC_OK && corrupt) {
			d->step = "frame is corrupt";
			return VPX_CODEC_CORRUPT_FRAME;
		}
	}
	if (err != VPX_CODEC_OK) {
		d->detail = vpx_codec_error_detail(&d->ctx);
		return err;
	}
	vpx_codec_iter_t it = NULL;
	d->img = vpx_codec_get_frame(&d->ctx, &it);
	return VPX_CODEC_OK;
}

static void tandem_dec_close(tandem_dec *d) {
	if (d->ready) vpx_codec_destroy(&d->ctx);
	free(d->in);
	free(d);
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"image"
	"unsafe"
)

// Bounds on what Decode accepts. maxDecodePixels is an 8K UHD screen
// (7680×4320): more than any display the agent shares. Checking it before
// libvpx sees a keyframe caps what a hostile header can make libvpx
// allocate at a few hundred megabytes; 16383×16383 would take gigabytes.
// maxFrameBytes is far above any real VP8 frame and keeps the length
// within the unsigned int libvpx takes.
const (
	maxDecodePixels = 7680 * 4320
	maxFrameBytes   = 1 << 28
)

// Decoder turns VP8 frames back into pictures, as a receiver would. It
// is not safe for concurrent use.
type Decoder struct {
	c *C.tandem_dec // nil once closed
}

// NewDecoder sets up a VP8 decoder.
func NewDecoder() (*Decoder, error) {
	cd := (*C.tandem_dec)(C.calloc(1, C.size_t(unsafe.Sizeof(C.tandem_dec{}))))
	if cd == nil {
		return nil, fmt.Errorf("%w: out of memory for the decoder", ErrCodec)
	}
	if rc := C.tandem_dec_open(cd); rc != C.VPX_CODEC_OK {
		err := codecError("decoder", cd.step, cd.detail, rc)
		C.tandem_dec_close(cd)
		return nil, err
	}
	return &Decoder{c: cd}, nil
}

// Decode decodes one VP8 frame, as Encode produces or an RTP depacketizer
// reassembles, and returns its picture as a new RGBA image. A stream
// starts at a keyframe, and after an error pictures are only right again
// from the next one, so a receiver asks for a keyframe then. Malformed input never crashes: an empty frame, or one larger than
// maxFrameBytes or maxDecodePixels, returns an error wrapping ErrInvalid;
// one libvpx rejects or flags as corrupt, ErrCodec. A frame that decodes
// but is hidden returns ErrNoFrame.
func (d *Decoder) Decode(frame []byte) (*image.RGBA, error) {
	if d == nil || d.c == nil {
		return nil, ErrClosed
	}
	if len(frame) == 0 || len(frame) > maxFrameBytes {
		return nil, fmt.Errorf("%w: %d-byte VP8 frame", ErrInvalid, len(frame))
	}
	if w, h, ok := keyframeSize(frame); ok && w*h > maxDecodePixels {
		return nil, fmt.Errorf("%w: %d×%d keyframe is larger than the decoder accepts", ErrInvalid, w, h)
	}
	rc := C.tandem_dec_frame(d.c, (*C.uchar)(unsafe.Pointer(&frame[0])), C.size_t(len(frame)))
	if rc != C.VPX_CODEC_OK {
		return nil, codecError("decode", d.c.step, d.c.detail, rc)
	}
	img := d.c.img
	if img == nil {
		return nil, ErrNoFrame
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("%w: decoded picture has format %d, not I420", ErrCodec, int(img.fmt))
	}
	w, h := int(img.d_w), int(img.d_h)
	if w <= 0 || h <= 0 || w*h > maxDecodePixels {
		return nil, fmt.Errorf("%w: decoded picture is %d×%d", ErrCodec, w, h)
	}
	ch := (h + 1) / 2
	planeOf := func(i, rows int) plane {
		s := int(img.stride[i])
		if s <= 0 {
			return plane{}
		}
		return plane{pix: unsafe.Slice((*byte)(unsafe.Pointer(img.planes[i])), s*rows), stride: s}
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	if err := i420ToRGBA(out, planeOf(0, h), planeOf(1, ch), planeOf(2, ch)); err != nil {
		return nil, fmt.Errorf("%w: decoded picture: %w", ErrCodec, err)
	}
	return out, nil
}

// Close frees libvpx's decoder. Calling it again does nothing; Decode
// after Close returns ErrClosed.
func (d *Decoder) Close() {
	if d == nil || d.c == nil {
		return
	}
	C.tandem_dec_close(d.c)
	d.c = nil
}

// keyframeSize reads the picture size from a VP8 keyframe header (RFC
// 6386, 9.1): a 3-byte frame tag whose low bit is clear, the start code
// 9d 01 2a, then 14-bit width and height. ok is false for anything else.
func keyframeSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff), true
}
