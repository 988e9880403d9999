package server

import (
	"context"
	"time"
)

// retention deletes call history and assistance audit entries older than
// configured, now and then every sweep, until ctx ends.
func (s *Server) retention(ctx context.Context) {
	calls, assist := s.cfg.Calls.HistoryRetention, s.cfg.Assist.LogRetention
	if calls <= 0 && assist <= 0 {
		return
	}
	// Often enough that nothing outlives its retention by more than a
	// tenth of it, at most hourly.
	sweep := time.Hour
	for _, r := range []time.Duration{calls, assist} {
		if r > 0 {
			sweep = min(sweep, max(r/10, 100*time.Millisecond))
		}
	}
	t := time.NewTicker(sweep)
	defer t.Stop()
	for {
		s.prune(ctx, calls, assist)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) prune(ctx context.Context, calls, assist time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	now := time.Now()
	if calls > 0 {
		if n, err := s.store.PruneCalls(ctx, now.Add(-calls)); err != nil {
			s.log.Warn("call history retention", "err", err)
		} else if n > 0 {
			s.log.Info("call history past retention deleted", "entries", n)
		}
	}
	if assist > 0 {
		if n, err := s.store.PruneAssist(ctx, now.Add(-assist)); err != nil {
			s.log.Warn("assistance log retention", "err", err)
		} else if n > 0 {
			s.log.Info("assistance log past retention deleted", "entries", n)
		}
	}
}
