package server

import (
	"context"
	"fmt"
	"os"
	"time"
)

// announceSetup prints, when nobody has an account yet, the link that
// makes the first person the server's owner: the first step of setting
// up a server (docs/operations.md, "Setting up a server for your family").
func (s *Server) announceSetup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.accounts.JoinFamily(ctx); err != nil {
		s.log.Error("the family circle could not be linked", "err", err)
	}
	link, err := s.accounts.SetupLink(ctx, s.URL())
	if err != nil {
		s.log.Error("the setup link could not be made", "err", err)
		return
	}
	if link == "" {
		return
	}
	s.setupLink = link
	s.log.Info("nobody has an account yet: open the setup link to become this server's owner", "link", link)
	if !s.cfg.Dev {
		fmt.Fprintf(os.Stderr, "\nNobody has an account on this server yet. Open this link to become its owner\n(it works once, for 7 days; `tandem admin invite --owner` makes another):\n\n  %s\n\n", link)
	}
}

// SetupLink is the first-run link announced at Start; "" if someone
// already had an account.
func (s *Server) SetupLink() string { return s.setupLink }
