package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory routes pion/turn's logs into a slog.Logger. pion's Trace and
// Debug both map to slog's Debug level.
type slogFactory struct {
	log *slog.Logger
}

var _ logging.LoggerFactory = slogFactory{}

// NewLogger returns a logger for one pion subsystem.
func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return &slogLeveled{log: f.log.With("pion", scope)}
}

// slogLeveled implements logging.LeveledLogger over slog.
type slogLeveled struct {
	log *slog.Logger
}

var _ logging.LeveledLogger = (*slogLeveled)(nil)

func (l *slogLeveled) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *slogLeveled) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l *slogLeveled) Trace(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *slogLeveled) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l *slogLeveled) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *slogLeveled) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// pion/turn logs client mistakes (unknown channel, missing permission,
// denied peer) at Info and Error; they are client input, not server
// faults, so they go to Debug and Info respectively.
func (l *slogLeveled) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *slogLeveled) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *slogLeveled) Warn(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l *slogLeveled) Warnf(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l *slogLeveled) Error(msg string)                  { l.emit(slog.LevelInfo, msg) }
func (l *slogLeveled) Errorf(format string, args ...any) { l.emitf(slog.LevelInfo, format, args...) }
