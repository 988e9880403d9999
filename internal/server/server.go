// Package server assembles a Tandem node from its parts: the SFU, the
// signaling hub, the store, the HTTP API and the web client.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tandemcall/tandem/internal/accounts"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/webhook"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling"
	"github.com/tandemcall/tandem/signaling/protocol"
	"github.com/tandemcall/tandem/turn"
)

// serverStore is what a node keeps outside itself: local files, or the
// Redis its deployment shares.
type serverStore interface {
	signaling.Store
	Close() error
}

// accountStore is what the accounts keep, from the parts of the node's
// store that keep it.
type accountStore struct {
	store.Accounts
	store.RateLimiter
	store.Users
}

// Version is the server version reported by /api/v1/info.
const Version = "0.1.0"

// Server is one running Tandem node.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	authority *auth.Authority
	store     serverStore
	sfu       *sfu.SFU
	turn      *turn.Server
	turnMarks *turnMarks // revocations TURN consults; nil when TURN is off
	metrics   *prometheus.Registry
	hub       *signaling.Hub
	ice       signaling.ICEProvider
	whip      *whipRegistry
	http      *http.Server
	ln        net.Listener   // http.listen
	lns       []net.Listener // it and http.listen_also
	serveErr  chan error
	draining  atomic.Bool         // set once Shutdown has stopped new calls
	node      *cluster.Node       // membership of a deployment; nil on a single node
	dir       store.CallDirectory // the deployment's calls; nil on a single node
	hooks     *webhook.Sender
	// accounts is Tandem's own sign-in (nil when accounts.enabled is
	// off), kept in accountsStore.
	accounts      *accounts.Service
	accountsStore store.Accounts
	setupLink     string
	stopBg        context.CancelFunc // ends the retention and revocation sweepers
	bgDone        chan struct{}

	// HTTP limits (httplimits.go).
	connLimit *limitListener // nil when http.max_conns_per_ip is 0
	// httpLimitsRegistered: the HTTP limits' metrics are registered.
	httpLimitsRegistered bool
	bodyTimeouts         atomic.Uint64
}

// New builds a node and binds its listeners (HTTP and the media UDP port),
// so that Addr and MediaAddr are known before Serve.
func New(cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, serveErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()

	secret := []byte(cfg.Auth.Secret)
	if len(secret) == 0 {
		// Only possible on loopback (Validate): keep a generated key.
		if secret, err = auth.LoadOrCreateKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if s.authority, err = auth.New(secret, cfg.Auth.Issuer, auth.WithMaxTTL(cfg.Auth.MaxTokenTTL)); err != nil {
		return nil, err
	}
	if len(cfg.Redis.Addrs) > 0 {
		r := cfg.Redis
		var rs *store.Redis
		if rs, err = store.OpenRedis(store.RedisConfig{Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username,
			Password: r.Password, DB: r.DB, KeyPrefix: r.KeyPrefix, Timeout: r.Timeout, Limit: cfg.Calls.HistoryLimit}); err != nil {
			return nil, err
		}
		s.store, s.dir = rs, rs
		if cfg.Accounts.Enabled {
			s.accountsStore = rs
		}
		s.node = cluster.New(cluster.Config{Shared: rs, NodeID: cfg.Cluster.NodeID,
			Heartbeat: cfg.Cluster.Heartbeat, DeadAfter: cfg.Cluster.DeadAfter, Timeout: r.Timeout,
			Log: log.With("part", "cluster")})
	} else {
		// A single node keeps everything in its embedded database; the
		// files of an earlier Tandem are moved into it on the first start.
		var db *store.SQLite
		if db, err = store.OpenSQLite(cfg.DataDir, cfg.Calls.HistoryLimit); err != nil {
			return nil, err
		}
		s.store = db
		if cfg.Accounts.Enabled {
			s.accountsStore = db
		}
	}
	if s.sfu, err = sfu.New(sfu.Config{UDPListen: cfg.Media.UDPListen, PublicIPs: cfg.Media.PublicIPs, PionInput: !cfg.Media.DirectInput}, log.With("part", "sfu")); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}

	s.metrics = prometheus.NewRegistry()
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	turnEP, err := s.startTURN(cfg, secret, s.metrics)
	if err != nil {
		return nil, err
	}

	ice := make([]protocol.ICEServer, 0, len(cfg.ICE.Servers))
	for _, is := range cfg.ICE.Servers {
		ice = append(ice, protocol.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	s.ice = iceProvider(ice, turnEP)
	s.whip = newWHIPRegistry()
	s.registerWHIPMetrics(s.metrics)
	sc := cfg.Signaling
	s.hub = signaling.NewHub(signaling.Config{
		RingTimeout: cfg.Calls.RingTimeout, WaitingTimeout: cfg.Calls.WaitingTimeout, HandoffTimeout: cfg.Calls.HandoffTimeout, ReconnectGrace: cfg.Calls.ReconnectGrace,
		AssistRequestTimeout: cfg.Assist.RequestTimeout, AssistControlIdle: cfg.Assist.ControlIdle, MaxTalk: cfg.Calls.PTTMaxTalk,
		MaxMessageBytes: sc.MaxMessageBytes, PingInterval: sc.PingInterval, PongTimeout: sc.PongTimeout,
		HelloTimeout: sc.HelloTimeout, WriteTimeout: sc.WriteTimeout, SendQueue: sc.SendQueue,
		RateLimit: sc.RateLimit, AllowedOrigins: cfg.HTTP.AllowedOrigins, ICE: s.ice,
		InviteLimits: inviteLimits(cfg.Calls), GroupUnansweredWithin: cfg.Calls.GroupUnansweredWithin,
		MaxTokenTTL: cfg.Auth.MaxTokenTTL, ContactsOnly: cfg.Accounts.Enabled && cfg.Accounts.CallsFrom == "contacts",
	}, s.authority, signaling.SFUMedia{SFU: s.sfu}, s.store, log.With("part", "signaling"))
	s.hub.OnRevoke(s.revoked)
	if s.node != nil {
		if err = s.hub.SetCluster(s.node, s.dir); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
	}
	s.hub.RegisterMetrics(s.metrics)
	if s.accountsStore != nil {
		s.accounts = accounts.New(accounts.Config{PublicURL: cfg.Accounts.PublicURL, TokenTTL: cfg.Accounts.TokenTTL,
			InviteTTL: cfg.Accounts.InviteTTL, FamilyCircle: cfg.Accounts.FamilyCircle,
			OIDC: accounts.OIDCConfig{Issuer: cfg.Accounts.OIDC.Issuer, ClientID: cfg.Accounts.OIDC.ClientID,
				ClientSecret: cfg.Accounts.OIDC.ClientSecret, Name: cfg.Accounts.OIDC.Name}}, accountStore{s.accountsStore, s.store, s.store}, s.authority, s.hub,
			log.With("part", "accounts"))
		if cfg.Accounts.Push.Enabled {
			if err = s.accounts.EnablePush(accounts.PushConfig{Secret: secret, Subject: cfg.Accounts.Push.Subject,
				AllowInsecure: cfg.Accounts.Push.AllowLoopback}); err != nil {
				return nil, err
			}
			s.hub.SetPusher(s.accounts)
			s.accounts.OnDecline(func(user, device, callID string) error {
				if err := s.hub.DeclineByPush(user, device, callID); errors.Is(err, signaling.ErrNotRinging) {
					return accounts.ErrCallGone
				} else if err != nil {
					return err
				}
				return nil
			})
		}
		s.accounts.Register(s.metrics)
		s.accounts.OnContact(s.hub.ContactAdded)
		s.hub.SetContactBook(s.accounts)
	}
	s.metrics.MustRegister(newSFUCollector(s.sfu))
	if w := cfg.Webhook; w.URL != "" {
		node := ""
		if s.node != nil {
			node = s.node.ID()
		}
		if s.hooks, err = webhook.New(webhook.Config{URL: w.URL, Secret: []byte(w.Secret), Timeout: w.Timeout,
			MaxAttempts: w.MaxAttempts, Node: node}, log.With("part", "webhook")); err != nil {
			return nil, err // names its key
		}
		s.hooks.Register(s.metrics)
		s.hub.SetNotifier(s.hooks)
	}

	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var tlsCfg *tls.Config
	if cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return nil, &config.KeyError{Key: "http.tls_cert", Err: err}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for i, addr := range append([]string{cfg.HTTP.Listen}, cfg.HTTP.ListenAlso...) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range s.lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("http: %w", err)
		}
		ln = s.limitConns(ln)
		if tlsCfg != nil {
			ln = tls.NewListener(ln, tlsCfg)
		}
		if i == 0 {
			s.ln = ln
		}
		s.lns = append(s.lns, ln)
	}
	return s, nil
}

// Addr is the bound HTTP address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// MediaAddr is the bound media UDP address.
func (s *Server) MediaAddr() *net.UDPAddr { return s.sfu.UDPAddr() }

// SFU returns the media server, for tests and tools that inspect rooms.
func (s *Server) SFU() *sfu.SFU { return s.sfu }

// URL is the base URL of the web client.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	a := s.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(a.Port)))
}

// Authority mints and verifies this node's tokens.
func (s *Server) Authority() *auth.Authority { return s.authority }

// Hub returns the signaling hub.
func (s *Server) Hub() *signaling.Hub { return s.hub }

// Start serves HTTP in the background; Done reports when serving stops.
func (s *Server) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBg, s.bgDone = cancel, make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { s.retention(ctx) })
	if s.node != nil {
		bg.Go(func() { s.sweepRevoked(ctx, s.cfg.Cluster.RevocationSweep) })
	}
	go func() {
		bg.Wait()
		close(s.bgDone)
	}()
	if s.accounts != nil {
		s.announceSetup()
	}
	for _, ln := range s.lns[1:] {
		go func() {
			if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	go func() {
		err := s.http.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
}

// Done yields the error that stopped HTTP serving (nil after Shutdown).
func (s *Server) Done() <-chan error { return s.serveErr }

// Node is the node's membership of a deployment (nil on a single node).
func (s *Server) Node() *cluster.Node { return s.node }

// Shutdown drains: new calls are refused, running calls may continue until
// ctx ends; then, on a node of a deployment, the calls left are handed to
// the other nodes, and on a single node they end. Every part closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.hub.Drain()
	if s.node != nil {
		s.node.SetDraining(true)
	}
	s.draining.Store(true)
	s.log.Info("draining", "calls", s.hub.ActiveCalls())
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.hub.ActiveCalls() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	if s.node != nil && s.hub.ActiveCalls() > 0 {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.hub.Handover(hctx)
		cancel()
	}
	// Close the listener and idle connections; WebSockets are hijacked and
	// are closed by the hub.
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(hctx)
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	err = errors.Join(err, s.hub.Close(cctx))
	return errors.Join(err, s.closeParts())
}

func (s *Server) closeParts() error {
	var errs []error
	if s.stopBg != nil {
		s.stopBg()
		<-s.bgDone
	}
	if s.hooks != nil {
		// What the calls' ends queued goes out, for a few seconds at most.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.hooks.Close(ctx))
		cancel()
	}
	if s.turn != nil {
		errs = append(errs, s.turn.Close())
		s.turnMarks.close()
	}
	if s.sfu != nil {
		errs = append(errs, s.sfu.Close())
	}
	if s.whip != nil {
		// The SFU has closed every session: their watchers end.
		s.whip.close()
	}
	if s.accounts != nil {
		s.accounts.Close() // pushes still queued are dropped
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// inviteLimits are the configured invite limits as the hub takes them.
func inviteLimits(c config.CallsConfig) signaling.InviteLimits {
	return signaling.InviteLimits{
		Caller: store.PerMinute(c.CallerInvitesPerMinute, c.CallerInviteBurst),
		Callee: store.PerMinute(c.CalleeInvitesPerMinute, c.CalleeInviteBurst),
		Pair:   store.PerMinute(c.PairInvitesPerMinute, c.PairInviteBurst),
	}
}
