package turn

import (
	"log/slog"

	"github.com/tandemcall/tandem/internal/pionlog"
)

// newSlogFactory routes pion/turn's logs into slog. pion/turn logs client
// mistakes (unknown channel, missing permission, denied peer) at Info and
// Error; they are client input, not server faults, so they go to Debug
// and Info respectively.
func newSlogFactory(log *slog.Logger) pionlog.Factory {
	lv := pionlog.Plain
	lv.Info, lv.Error = slog.LevelDebug, slog.LevelInfo
	return pionlog.Factory{Log: log, Levels: lv}
}
