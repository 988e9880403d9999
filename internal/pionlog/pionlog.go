// Package pionlog routes pion's logs into log/slog, with a per-user choice
// of the slog level each pion level becomes: pion libraries log routine
// events and client mistakes at levels that would mislead an operator.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// Levels maps pion's levels to slog's.
type Levels struct {
	Trace, Debug, Info, Warn, Error slog.Level
}

// Plain maps each pion level to the slog level of the same name (Trace to
// Debug).
var Plain = Levels{Trace: slog.LevelDebug, Debug: slog.LevelDebug, Info: slog.LevelInfo, Warn: slog.LevelWarn, Error: slog.LevelError}

// Factory is a logging.LoggerFactory over a slog.Logger.
type Factory struct {
	Log    *slog.Logger
	Levels Levels
}

var _ logging.LoggerFactory = Factory{}

// NewLogger returns a logger for one pion subsystem, tagged pion=scope.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return &leveled{log: f.Log.With("pion", scope), lv: f.Levels}
}

type leveled struct {
	log *slog.Logger
	lv  Levels
}

var _ logging.LeveledLogger = (*leveled)(nil)

func (l *leveled) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), l.routine(level, msg), msg)
}

// emitf formats only when the level is enabled: pion logs per packet.
func (l *leveled) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	l.log.Log(context.Background(), l.routine(level, msg), msg)
}

// closedErrors end the messages of pion's errors that are a socket or
// pipe closed under a write or read in flight: a peer that left, the
// routine end of every call, not something to wake an operator for.
var closedErrors = []string{"io: read/write on closed pipe", "use of closed network connection"}

// routine lowers an error that only says a connection closed to Info.
func (l *leveled) routine(level slog.Level, msg string) slog.Level {
	if level < slog.LevelError {
		return level
	}
	for _, c := range closedErrors {
		if strings.HasSuffix(msg, c) {
			return min(level, l.lv.Info)
		}
	}
	return level
}

func (l *leveled) Trace(msg string)                  { l.emit(l.lv.Trace, msg) }
func (l *leveled) Tracef(format string, args ...any) { l.emitf(l.lv.Trace, format, args...) }
func (l *leveled) Debug(msg string)                  { l.emit(l.lv.Debug, msg) }
func (l *leveled) Debugf(format string, args ...any) { l.emitf(l.lv.Debug, format, args...) }
func (l *leveled) Info(msg string)                   { l.emit(l.lv.Info, msg) }
func (l *leveled) Infof(format string, args ...any)  { l.emitf(l.lv.Info, format, args...) }
func (l *leveled) Warn(msg string)                   { l.emit(l.lv.Warn, msg) }
func (l *leveled) Warnf(format string, args ...any)  { l.emitf(l.lv.Warn, format, args...) }
func (l *leveled) Error(msg string)                  { l.emit(l.lv.Error, msg) }
func (l *leveled) Errorf(format string, args ...any) { l.emitf(l.lv.Error, format, args...) }
