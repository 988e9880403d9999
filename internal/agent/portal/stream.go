//go:build cgo && linux && !nopipewire

package portal

/*
#cgo pkg-config: libpipewire-0.3
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipewire/pipewire.h>
#include <spa/param/video/format-utils.h>
#include <spa/param/buffers.h>

// tandem_pw is one PipeWire video stream, read on PipeWire's own thread.
// The latest picture is kept as BGRx, tightly packed, under mu; seq
// counts the pictures.
typedef struct {
	struct pw_thread_loop *loop;
	struct pw_context *ctx;
	struct pw_core *core;
	struct pw_stream *stream;
	struct spa_hook listener;
	struct spa_video_info_raw info;

	pthread_mutex_t mu;
	unsigned char *pix;
	size_t cap;
	int w, h;
	unsigned long long seq;
	int failed;
	char err[256];
} tandem_pw;

static void tandem_pw_fail(tandem_pw *p, const char *what, const char *detail) {
	pthread_mutex_lock(&p->mu);
	if (!p->failed) {
		p->failed = 1;
		snprintf(p->err, sizeof p->err, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	}
	pthread_mutex_unlock(&p->mu);
}

static void on_state(void *d, enum pw_stream_state old, enum pw_stream_state st, const char *error) {
	tandem_pw *p = d;
	if (st == PW_STREAM_STATE_ERROR)
		tandem_pw_fail(p, "stream failed", error);
	else if (st == PW_STREAM_STATE_UNCONNECTED)
		tandem_pw_fail(p, "stream disconnected", error);
}

static void on_param_changed(void *d, uint32_t id, const struct spa_pod *param) {
	tandem_pw *p = d;
	if (param == NULL || id != SPA_PARAM_Format) return;
	uint32_t mt, mst;
	if (spa_format_parse(param, &mt, &mst) < 0 || mt != SPA_MEDIA_TYPE_video || mst != SPA_MEDIA_SUBTYPE_raw) return;
	if (spa_format_video_raw_parse(param, &p->info) < 0) return;
	// Buffers in memory this process can map: no DMA-BUF, which would
	// need a GPU to read.
	uint8_t buf[256];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
	const struct spa_pod *bp = spa_pod_builder_add_object(&b,
		SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers,
		SPA_PARAM_BUFFERS_buffers, SPA_POD_CHOICE_RANGE_Int(4, 2, 16),
		SPA_PARAM_BUFFERS_dataType, SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemPtr) | (1 << SPA_DATA_MemFd)));
	pw_stream_update_params(p->stream, &bp, 1);
}

// tandem_pw_store copies one picture into p->pix as BGRx.
static void tandem_pw_store(tandem_pw *p, const uint8_t *src, int w, int h, int stride) {
	size_t n = (size_t)w * h * 4;
	pthread_mutex_lock(&p->mu);
	if (p->cap < n) {
		unsigned char *np = realloc(p->pix, n);
		if (np == NULL) { pthread_mutex_unlock(&p->mu); return; }
		p->pix = np;
		p->cap = n;
	}
	uint32_t f = p->info.format;
	for (int y = 0; y < h; y++) {
		const uint8_t *s = src + (size_t)y * stride;
		uint8_t *o = p->pix + (size_t)y * w * 4;
		if (f == SPA_VIDEO_FORMAT_BGRx || f == SPA_VIDEO_FORMAT_BGRA) {
			memcpy(o, s, (size_t)w * 4);
		} else if (f == SPA_VIDEO_FORMAT_RGBx || f == SPA_VIDEO_FORMAT_RGBA) {
			for (int x = 0; x < w; x++, s += 4, o += 4) { o[0] = s[2]; o[1] = s[1]; o[2] = s[0]; o[3] = 0; }
		} else { // xRGB
			for (int x = 0; x < w; x++, s += 4, o += 4) { o[0] = s[3]; o[1] = s[2]; o[2] = s[1]; o[3] = 0; }
		}
	}
	p->w = w;
	p->h = h;
	p->seq++;
	pthread_mutex_unlock(&p->mu);
}

static void on_process(void *d) {
	tandem_pw *p = d;
	// Only the newest buffer matters: give older ones straight back.
	struct pw_buffer *b = NULL, *next;
	while ((next = pw_stream_dequeue_buffer(p->stream)) != NULL) {
		if (b) pw_stream_queue_buffer(p->stream, b);
		b = next;
	}
	if (b == NULL) return;
	struct spa_data *dd = &b->buffer->datas[0];
	int w = p->info.size.width, h = p->info.size.height;
	if (dd->data != NULL && dd->chunk->size > 0 && !(dd->chunk->flags & SPA_CHUNK_FLAG_CORRUPTED) && w > 0 && h > 0) {
		int stride = dd->chunk->stride > 0 ? dd->chunk->stride : w * 4;
		if ((size_t)dd->chunk->offset + (size_t)stride * (h - 1) + (size_t)w * 4 <= dd->maxsize)
			tandem_pw_store(p, (const uint8_t *)dd->data + dd->chunk->offset, w, h, stride);
	}
	pw_stream_queue_buffer(p->stream, b);
}

static const struct pw_stream_events tandem_pw_events = {
	PW_VERSION_STREAM_EVENTS,
	.state_changed = on_state,
	.param_changed = on_param_changed,
	.process = on_process,
};

static void tandem_pw_free(tandem_pw *p) {
	if (p->loop) pw_thread_loop_stop(p->loop);
	if (p->stream) pw_stream_destroy(p->stream);
	if (p->core) pw_core_disconnect(p->core);
	if (p->ctx) pw_context_destroy(p->ctx);
	if (p->loop) pw_thread_loop_destroy(p->loop);
	pthread_mutex_destroy(&p->mu);
	free(p->pix);
	free(p);
}

// tandem_pw_open connects to the PipeWire remote fd (or the user's default
// remote if fd < 0) and links a stream to node. It returns NULL and an
// error text in err on failure. fd is PipeWire's from the call on.
static tandem_pw *tandem_pw_open(int fd, uint32_t node, char *err, size_t errlen) {
	pw_init(NULL, NULL);
	tandem_pw *p = calloc(1, sizeof *p);
	if (p == NULL) { snprintf(err, errlen, "out of memory"); return NULL; }
	pthread_mutex_init(&p->mu, NULL);
	p->loop = pw_thread_loop_new("tandem-screen", NULL);
	if (p->loop == NULL) { snprintf(err, errlen, "no PipeWire loop"); tandem_pw_free(p); return NULL; }
	p->ctx = pw_context_new(pw_thread_loop_get_loop(p->loop), NULL, 0);
	if (p->ctx == NULL) { snprintf(err, errlen, "no PipeWire context"); tandem_pw_free(p); return NULL; }
	if (pw_thread_loop_start(p->loop) < 0) { snprintf(err, errlen, "PipeWire loop did not start"); tandem_pw_free(p); return NULL; }
	pw_thread_loop_lock(p->loop);
	p->core = fd >= 0 ? pw_context_connect_fd(p->ctx, fd, NULL, 0) : pw_context_connect(p->ctx, NULL, 0);
	if (p->core == NULL) {
		pw_thread_loop_unlock(p->loop);
		snprintf(err, errlen, "cannot connect to PipeWire");
		tandem_pw_free(p);
		return NULL;
	}
	p->stream = pw_stream_new(p->core, "tandem-screen", pw_properties_new(
		PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY, "Capture", PW_KEY_MEDIA_ROLE, "Screen", NULL));
	if (p->stream == NULL) {
		pw_thread_loop_unlock(p->loop);
		snprintf(err, errlen, "cannot make a PipeWire stream");
		tandem_pw_free(p);
		return NULL;
	}
	pw_stream_add_listener(p->stream, &p->listener, &tandem_pw_events, p);
	uint8_t buf[1024];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
	const struct spa_pod *params[1];
	params[0] = spa_pod_builder_add_object(&b,
		SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat,
		SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
		SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw),
		SPA_FORMAT_VIDEO_format, SPA_POD_CHOICE_ENUM_Id(6,
			SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_RGBx,
			SPA_VIDEO_FORMAT_BGRA, SPA_VIDEO_FORMAT_RGBA, SPA_VIDEO_FORMAT_xRGB),
		SPA_FORMAT_VIDEO_size, SPA_POD_CHOICE_RANGE_Rectangle(
			&SPA_RECTANGLE(1920, 1080), &SPA_RECTANGLE(1, 1), &SPA_RECTANGLE(8192, 8192)),
		SPA_FORMAT_VIDEO_framerate, SPA_POD_CHOICE_RANGE_Fraction(
			&SPA_FRACTION(30, 1), &SPA_FRACTION(0, 1), &SPA_FRACTION(1000, 1)));
	int rc = pw_stream_connect(p->stream, PW_DIRECTION_INPUT, node,
		PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS, params, 1);
	pw_thread_loop_unlock(p->loop);
	if (rc < 0) {
		snprintf(err, errlen, "cannot link to PipeWire node %u", node);
		tandem_pw_free(p);
		return NULL;
	}
	return p;
}

// tandem_pw_latest copies the latest picture into dst (cap bytes) if it is
// newer than *seq. It returns 1 if it copied, 0 if nothing is newer, -1
// if the stream failed (err holds why), -2 if dst is too small (*w, *h
// say what is needed).
static int tandem_pw_latest(tandem_pw *p, unsigned char *dst, size_t cap, int *w, int *h,
	unsigned long long *seq, char *err, size_t errlen) {
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	if (p->failed) {
		snprintf(err, errlen, "%s", p->err);
		rc = -1;
	} else if (p->seq != *seq && p->seq > 0) {
		*w = p->w;
		*h = p->h;
		size_t n = (size_t)p->w * p->h * 4;
		if (n > cap) {
			rc = -2;
		} else {
			memcpy(dst, p->pix, n);
			*seq = p->seq;
			rc = 1;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// Stream is the screen as PipeWire sends it. PipeWire's own thread keeps
// the latest picture; Latest copies it out.
type Stream struct {
	mu     sync.Mutex
	p      *C.tandem_pw
	seq    C.ulonglong
	pix    []byte
	w, h   int
	closed bool
}

// OpenStream links a stream to PipeWire node node over the remote fd (as
// OpenPipeWireRemote gives it; the stream owns it from now on), or over
// the user's default PipeWire remote if fd is negative.
func OpenStream(fd int, node uint32) (*Stream, error) {
	var errbuf [256]C.char
	p := C.tandem_pw_open(C.int(fd), C.uint32_t(node), &errbuf[0], C.size_t(len(errbuf)))
	if p == nil {
		return nil, fmt.Errorf("portal: %s", C.GoString(&errbuf[0]))
	}
	return &Stream{p: p}, nil
}

// Latest returns the newest picture as BGRx, Width×4 bytes a row, and
// whether it changed since the last call. The pixels stay valid until
// the next call. Before the first picture arrives it returns
// ErrNoFrame.
func (s *Stream) Latest() (pix []byte, w, h int, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, 0, false, ErrClosed
	}
	for {
		var errbuf [256]C.char
		var cw, ch C.int
		var ptr *C.uchar
		if len(s.pix) > 0 {
			ptr = (*C.uchar)(unsafe.Pointer(&s.pix[0]))
		}
		rc := C.tandem_pw_latest(s.p, ptr, C.size_t(len(s.pix)), &cw, &ch, &s.seq, &errbuf[0], C.size_t(len(errbuf)))
		switch rc {
		case -1:
			return nil, 0, 0, false, fmt.Errorf("%w: %s", ErrStream, C.GoString(&errbuf[0]))
		case -2:
			s.pix = make([]byte, int(cw)*int(ch)*4)
			continue
		case 1:
			s.w, s.h, changed = int(cw), int(ch), true
		}
		if s.w == 0 {
			return nil, 0, 0, false, ErrNoFrame
		}
		return s.pix[:s.w*s.h*4], s.w, s.h, changed, nil
	}
}

// WaitFirst waits for the first picture, which tells the screen's size.
func (s *Stream) WaitFirst(ctx context.Context) (w, h int, err error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		_, w, h, _, err := s.Latest()
		if !errors.Is(err, ErrNoFrame) {
			return w, h, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("portal: no picture from the screen: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Close ends the stream.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	C.tandem_pw_free(s.p)
	s.p = nil
	return nil
}

// HasPipeWire reports whether this build can read the screen (libpipewire
// through cgo).
const HasPipeWire = true
