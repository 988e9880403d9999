package client

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs sends pion's logs to a slog.Logger. pion's Trace, Debug and Info
// become Debug: they are per-connection chatter, not events of the client.
type pionLogs struct{ log *slog.Logger }

var _ logging.LoggerFactory = pionLogs{}

// NewLogger returns a logger for one pion subsystem.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) Trace(msg string) { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	l.emit(slog.LevelDebug-4, fmt.Sprintf(format, args...))
}
func (l pionLogger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Warn(msg string) { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.emit(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.emit(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, fmt.Sprintf(format, args...))
}
