package client

import (
	"log/slog"

	"github.com/tandemcall/tandem/internal/pionlog"
)

// pionLogs sends pion's logs to a slog.Logger. pion's Trace, Debug and Info
// become Debug: they are per-connection chatter, not events of the client.
func pionLogs(log *slog.Logger) pionlog.Factory {
	lv := pionlog.Plain
	lv.Trace, lv.Info = slog.LevelDebug-4, slog.LevelDebug
	return pionlog.Factory{Log: log, Levels: lv}
}
