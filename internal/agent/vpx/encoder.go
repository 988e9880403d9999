//go:build cgo && !novpx

package vpx

/*
#cgo pkg-config: vpx
#include <stdlib.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vp8cx.h>

// The rate-control buffer, in milliseconds of the target bitrate. A small
// buffer keeps latency low: the encoder may run this far ahead of the
// target before it must cut quality.
enum { TANDEM_BUF_INITIAL_MS = 500, TANDEM_BUF_OPTIMAL_MS = 600, TANDEM_BUF_MS = 1000 };

// tandem_enc is one encoder. Everything libvpx keeps between calls lives
// here, in C memory, as cgo's pointer rules require.
typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_enc_cfg_t cfg; // as opened; changed by tandem_enc_set_bitrate
	int ready;              // ctx was initialised and must be destroyed
	vpx_image_t img;        // wraps i420
	unsigned char *i420;    // packed I420 input, filled by Go before each frame
	const char *step;       // what failed, for the error message
	const char *detail;     // libvpx's detail for that failure, if any
	const void *out;        // the last frame, owned by libvpx until the next encode
	size_t out_len;
	int out_key;
} tandem_enc;

// tandem_enc_ctl applies one codec control and names it if it fails.
// vpx_codec_control is a type-checked variadic macro, which Go cannot
// call; each use below goes through this wrapper instead.
#define tandem_enc_ctl(e, id, v) \
	do { \
		vpx_codec_err_t err_ = vpx_codec_control(&(e)->ctx, id, v); \
		if (err_ != VPX_CODEC_OK) { \
			(e)->step = #id; \
			(e)->detail = vpx_codec_error_detail(&(e)->ctx); \
			return err_; \
		} \
	} while (0)

static vpx_codec_err_t tandem_enc_open(tandem_enc *e, int w, int h, int fps, int kbps, int threads) {
	vpx_codec_iface_t *iface = vpx_codec_vp8_cx();
	vpx_codec_enc_cfg_t cfg;
	vpx_codec_err_t err;

	e->step = "vpx_codec_enc_config_default";
	if ((err = vpx_codec_enc_config_default(iface, &cfg, 0)) != VPX_CODEC_OK) return err;
	cfg.g_w = w;
	cfg.g_h = h;
	cfg.g_timebase.num = 1;
	cfg.g_timebase.den = fps;
	cfg.g_threads = threads;
	cfg.g_pass = VPX_RC_ONE_PASS;
	cfg.g_lag_in_frames = 0;                          // one frame in, one frame out: no latency
	cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT; // a lost frame does not spoil later ones
	cfg.rc_end_usage = VPX_CBR;
	cfg.rc_target_bitrate = kbps;
	cfg.rc_min_quantizer = 2;
	cfg.rc_max_quantizer = 56;
	cfg.rc_undershoot_pct = 100;
	cfg.rc_overshoot_pct = 15;
	cfg.rc_buf_initial_sz = TANDEM_BUF_INITIAL_MS;
	cfg.rc_buf_optimal_sz = TANDEM_BUF_OPTIMAL_MS;
	cfg.rc_buf_sz = TANDEM_BUF_MS;
	cfg.rc_resize_allowed = 0;                        // receivers expect the screen's size
	cfg.rc_dropframe_thresh = 0;                      // never drop: a requested keyframe must come out
	cfg.kf_mode = VPX_KF_DISABLED;                    // keyframes only when asked (and the first frame)

	e->cfg = cfg;
	e->step = "vpx_codec_enc_init";
	if ((err = vpx_codec_enc_init(&e->ctx, iface, &cfg, 0)) != VPX_CODEC_OK) {
		e->detail = vpx_codec_error_detail(&e->ctx);
		return err;
	}
	e->ready = 1;

	// Negative: fixed speed 8, fast enough for realtime at desktop sizes.
	tandem_enc_ctl(e, VP8E_SET_CPUUSED, -8);
	// Skip macroblocks that barely changed, as most of a screen does
	// from frame to frame; a changed glyph is far above this.
	tandem_enc_ctl(e, VP8E_SET_STATIC_THRESHOLD, 300u);
	// 1 tunes for screen content without mode 2's frame dropping.
	tandem_enc_ctl(e, VP8E_SET_SCREEN_CONTENT_MODE, 1u);
	tandem_enc_ctl(e, VP8E_SET_NOISE_SENSITIVITY, 0u);
	// Separate token partitions let a receiver decode on several threads.
	tandem_enc_ctl(e, VP8E_SET_TOKEN_PARTITIONS, threads > 1 ? VP8_TWO_TOKENPARTITION : VP8_ONE_TOKENPARTITION);
	// A keyframe may spend half the optimal buffer (900% of an average
	// frame at 30 fps): sharp enough for text, short enough not to stall
	// the stream. Never less than three average frames.
	unsigned int intra = (unsigned int)(TANDEM_BUF_OPTIMAL_MS / 2 * fps / 10);
	tandem_enc_ctl(e, VP8E_SET_MAX_INTRA_BITRATE_PCT, intra < 300 ? 300u : intra);

	e->step = "allocating the input picture";
	e->i420 = malloc((size_t)w * h * 3 / 2);
	if (e->i420 == NULL) return VPX_CODEC_MEM_ERROR;
	if (vpx_img_wrap(&e->img, VPX_IMG_FMT_I420, w, h, 1, e->i420) == NULL) {
		e->step = "vpx_img_wrap";
		return VPX_CODEC_ERROR;
	}
	return VPX_CODEC_OK;
}

// tandem_enc_frame encodes the picture in e->i420 and leaves the result in
// e->out. With no look-ahead VP8 emits at most one frame per input; two
// would not make one decodable frame, so they are an error.
static vpx_codec_err_t tandem_enc_frame(tandem_enc *e, vpx_codec_pts_t pts, int force_key) {
	e->detail = NULL;
	e->out = NULL;
	e->out_len = 0;
	e->out_key = 0;
	e->step = "vpx_codec_encode";
	vpx_codec_err_t err = vpx_codec_encode(&e->ctx, &e->img, pts, 1, force_key ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
	if (err != VPX_CODEC_OK) {
		e->detail = vpx_codec_error_detail(&e->ctx);
		return err;
	}
	vpx_codec_iter_t it = NULL;
	const vpx_codec_cx_pkt_t *p;
	int frames = 0;
	while ((p = vpx_codec_get_cx_data(&e->ctx, &it)) != NULL) {
		if (p->kind != VPX_CODEC_CX_FRAME_PKT) continue;
		frames++;
		e->out = p->data.frame.buf;
		e->out_len = p->data.frame.sz;
		e->out_key = (p->data.frame.flags & VPX_FRAME_IS_KEY) != 0;
	}
	if (frames > 1) {
		e->step = "collecting output (more than one frame for one picture)";
		return VPX_CODEC_ERROR;
	}
	return VPX_CODEC_OK;
}

// tandem_enc_set_bitrate changes the target bitrate between frames.
static vpx_codec_err_t tandem_enc_set_bitrate(tandem_enc *e, unsigned int kbps) {
	e->cfg.rc_target_bitrate = kbps;
	e->step = "vpx_codec_enc_config_set";
	vpx_codec_err_t err = vpx_codec_enc_config_set(&e->ctx, &e->cfg);
	if (err != VPX_CODEC_OK) e->detail = vpx_codec_error_detail(&e->ctx);
	return err;
}

static void tandem_enc_close(tandem_enc *e) {
	if (e->ready) vpx_codec_destroy(&e->ctx);
	free(e->i420);
	free(e);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Encoder turns BGRX screen images into a VP8 stream. It is not safe for
// concurrent use: one capture loop owns it and calls Close when done.
type Encoder struct {
	c    *C.tandem_enc // nil once closed
	cfg  EncoderConfig
	i420 []byte // view of c.i420, C memory
	pts  C.vpx_codec_pts_t
}

// NewEncoder sets up a realtime VP8 encoder for screen content as c
// describes, after applying defaults to zero fields. Width and Height must
// be even and positive; otherwise the error wraps ErrInvalid.
func NewEncoder(c EncoderConfig) (*Encoder, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	ce := (*C.tandem_enc)(C.calloc(1, C.size_t(unsafe.Sizeof(C.tandem_enc{}))))
	if ce == nil {
		return nil, fmt.Errorf("%w: out of memory for the encoder", ErrCodec)
	}
	if rc := C.tandem_enc_open(ce, C.int(c.Width), C.int(c.Height), C.int(c.FPS), C.int(c.BitrateKbps), C.int(c.Threads)); rc != C.VPX_CODEC_OK {
		err := codecError("encoder", ce.step, ce.detail, rc)
		C.tandem_enc_close(ce)
		return nil, err
	}
	return &Encoder{
		c:    ce,
		cfg:  c,
		i420: unsafe.Slice((*byte)(unsafe.Pointer(ce.i420)), i420Size(c.Width, c.Height)),
	}, nil
}

// Encode compresses one picture: the top-left Width×Height pixels of pix,
// a BGRX image (X11 ZPixmap at 32 bits per pixel: bytes B, G, R, unused)
// whose rows are stride bytes apart. pix must hold stride×Height bytes;
// anything shorter, or a stride below 4×Width, is refused with an error
// wrapping ErrInvalid and leaves the encoder usable.
//
// forceKey asks for a keyframe, which a new or recovering receiver can
// decode on its own; otherwise only the first frame is one. key reports
// what was produced.
//
// frame is a fresh copy that the caller owns: it stays valid after later
// calls and after Close, so it can sit in a send queue. It is empty only
// if libvpx produced no frame, which this configuration never asks for.
func (e *Encoder) Encode(pix []byte, stride int, forceKey bool) (frame []byte, key bool, err error) {
	if e == nil || e.c == nil {
		return nil, false, ErrClosed
	}
	if err := bgrxToI420(e.i420, pix, stride, e.cfg.Width, e.cfg.Height); err != nil {
		return nil, false, err
	}
	force := C.int(0)
	if forceKey {
		force = 1
	}
	if rc := C.tandem_enc_frame(e.c, e.pts, force); rc != C.VPX_CODEC_OK {
		return nil, false, codecError("encode", e.c.step, e.c.detail, rc)
	}
	e.pts++
	if e.c.out_len == 0 {
		return nil, false, nil
	}
	// Copied at once: libvpx reuses the buffer on the next call.
	return C.GoBytes(e.c.out, C.int(e.c.out_len)), e.c.out_key != 0, nil
}

// SetBitrate changes the target bitrate, in kbit/s, from the next frame
// on: to follow the bandwidth the network has (the congestion
// controller's estimate). Values under 50 are taken as 50.
func (e *Encoder) SetBitrate(kbps int) error {
	if e == nil || e.c == nil {
		return ErrClosed
	}
	kbps = max(kbps, 50)
	if rc := C.tandem_enc_set_bitrate(e.c, C.uint(kbps)); rc != C.VPX_CODEC_OK {
		return codecError("set bitrate", e.c.step, e.c.detail, rc)
	}
	e.cfg.BitrateKbps = kbps
	return nil
}

// Bitrate is the target bitrate now, in kbit/s.
func (e *Encoder) Bitrate() int { return e.cfg.BitrateKbps }

// Width and Height are the size of the pictures the encoder takes.
func (e *Encoder) Width() int  { return e.cfg.Width }
func (e *Encoder) Height() int { return e.cfg.Height }

// Close frees libvpx's encoder. Calling it again, or after an error, does
// nothing; Encode after Close returns ErrClosed.
func (e *Encoder) Close() {
	if e == nil || e.c == nil {
		return
	}
	C.tandem_enc_close(e.c)
	e.c, e.i420 = nil, nil
}

// codecError describes a failure at step, with libvpx's detail when the
// failing call gave one. The C side records detail at the failure, since
// libvpx keeps a stale one after later successful calls.
func codecError(what string, step, detail *C.char, rc C.vpx_codec_err_t) error {
	msg := C.GoString(C.vpx_codec_err_to_string(rc))
	if detail != nil {
		msg += ": " + C.GoString(detail)
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrCodec, what, C.GoString(step), msg)
}
