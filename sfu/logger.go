package sfu

import (
	"log/slog"

	"github.com/tandemcall/tandem/internal/pionlog"
)

// slogFactory routes pion's logs into slog. pion warns about routine
// events (pings before candidate pairs, reads on closed streams); they are
// logged at Info so that Warn stays for Tandem.
type slogFactory = pionlog.Factory

func newSlogFactory(log *slog.Logger) slogFactory {
	lv := pionlog.Plain
	lv.Warn = slog.LevelInfo
	return pionlog.Factory{Log: log, Levels: lv}
}
