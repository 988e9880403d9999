// Package config loads Tandem's configuration: defaults, then a YAML file
// (unknown keys rejected), then TANDEM_* environment variables, then flags,
// then Validate. It is the only package that imports viper.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole server configuration. Field tags name the YAML keys.
type Config struct {
	Dev       bool            `mapstructure:"dev"`
	DataDir   string          `mapstructure:"data_dir"`
	HTTP      HTTPConfig      `mapstructure:"http"`
	Auth      AuthConfig      `mapstructure:"auth"`
	Accounts  AccountsConfig  `mapstructure:"accounts"`
	Media     MediaConfig     `mapstructure:"media"`
	Calls     CallsConfig     `mapstructure:"calls"`
	Assist    AssistConfig    `mapstructure:"assist"`
	Redis     RedisConfig     `mapstructure:"redis"`
	Cluster   ClusterConfig   `mapstructure:"cluster"`
	Signaling SignalingConfig `mapstructure:"signaling"`
	ICE       ICEConfig       `mapstructure:"ice"`
	Log       LogConfig       `mapstructure:"log"`
	Webhook   WebhookConfig   `mapstructure:"webhook"`
	Debug     DebugConfig     `mapstructure:"debug"`
	Shutdown  ShutdownConfig  `mapstructure:"shutdown"`
	TURN      TURNConfig      `mapstructure:"turn"`
}

// TURNConfig is the embedded TURN server.
type TURNConfig struct {
	Enabled                     bool          `mapstructure:"enabled"`
	Realm                       string        `mapstructure:"realm"`
	UDPListen                   string        `mapstructure:"udp_listen"`
	UDPSockets                  int           `mapstructure:"udp_sockets"`
	TCPListen                   string        `mapstructure:"tcp_listen"`
	TLSListen                   string        `mapstructure:"tls_listen"`
	RelayIP                     string        `mapstructure:"relay_ip"`
	PublicIP                    string        `mapstructure:"public_ip"`
	PublicHost                  string        `mapstructure:"public_host"`
	RelayPortMin                int           `mapstructure:"relay_port_min"`
	RelayPortMax                int           `mapstructure:"relay_port_max"`
	Secrets                     []string      `mapstructure:"secrets"`
	CredentialTTL               time.Duration `mapstructure:"credential_ttl"`
	AllowCIDRs                  []string      `mapstructure:"allow_cidrs"`
	DenyCIDRs                   []string      `mapstructure:"deny_cidrs"`
	MaxAllocationsPerUser       int           `mapstructure:"max_allocations_per_user"`
	MaxAllocations              int           `mapstructure:"max_allocations"`
	MaxPermissionsPerAllocation int           `mapstructure:"max_permissions_per_allocation"`
	BandwidthPerAllocation      int64         `mapstructure:"bandwidth_per_allocation"`
	PreAllocateTimeout          time.Duration `mapstructure:"pre_allocate_timeout"`
	TLSHandshakeTimeout         time.Duration `mapstructure:"tls_handshake_timeout"`
	AuthFailuresPerMinute       int           `mapstructure:"auth_failures_per_minute"`
}

// ParsedCIDRs parses a list of CIDRs (a bare address means a single host).
func ParsedCIDRs(key string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, keyErr(key, "%q is not a CIDR or an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t *TURNConfig) validate(dev bool, tlsCert string) error {
	if !t.Enabled {
		return nil
	}
	if t.Realm == "" {
		return keyErr("turn.realm", "must not be empty")
	}
	for key, v := range map[string]string{"turn.udp_listen": t.UDPListen, "turn.tcp_listen": t.TCPListen, "turn.tls_listen": t.TLSListen} {
		if v == "" {
			continue
		}
		host, err := checkHostPort(key, v)
		if err != nil {
			return err
		}
		if dev && !isLoopbackHost(host) {
			return keyErr(key, "dev mode binds to loopback only, not %q", v)
		}
	}
	if t.TLSListen != "" && tlsCert == "" {
		return keyErr("turn.tls_listen", "needs http.tls_cert and http.tls_key")
	}
	if t.UDPSockets < 0 || t.UDPSockets > 256 {
		return keyErr("turn.udp_sockets", "must be 0 (one per CPU) to 256")
	}
	relay, err := netip.ParseAddr(t.RelayIP)
	if err != nil {
		return keyErr("turn.relay_ip", "%q is not an IP address", t.RelayIP)
	}
	if dev && !relay.IsLoopback() {
		return keyErr("turn.relay_ip", "dev mode relays on loopback only, not %q", t.RelayIP)
	}
	if t.PublicIP != "" {
		if _, err := netip.ParseAddr(t.PublicIP); err != nil {
			return keyErr("turn.public_ip", "%q is not an IP address", t.PublicIP)
		}
	}
	if t.RelayPortMin < 1024 || t.RelayPortMax > 65535 || t.RelayPortMin > t.RelayPortMax {
		return keyErr("turn.relay_port_min", "relay ports must satisfy 1024 ≤ min ≤ max ≤ 65535")
	}
	for _, s := range t.Secrets {
		if len(s) < 16 {
			return keyErr("turn.secrets", "every secret must be at least 16 bytes")
		}
	}
	if t.CredentialTTL < time.Second || t.CredentialTTL > 24*time.Hour {
		return keyErr("turn.credential_ttl", "must be between 1s and 24h (minutes in production)")
	}
	if _, err := ParsedCIDRs("turn.allow_cidrs", t.AllowCIDRs); err != nil {
		return err
	}
	if _, err := ParsedCIDRs("turn.deny_cidrs", t.DenyCIDRs); err != nil {
		return err
	}
	switch {
	case t.MaxAllocationsPerUser < 1:
		return keyErr("turn.max_allocations_per_user", "must be at least 1")
	case t.MaxAllocations < 1:
		return keyErr("turn.max_allocations", "must be at least 1")
	case t.MaxPermissionsPerAllocation < 1:
		return keyErr("turn.max_permissions_per_allocation", "must be at least 1")
	case t.BandwidthPerAllocation < 0:
		return keyErr("turn.bandwidth_per_allocation", "must be 0 (unlimited) or positive")
	case t.PreAllocateTimeout <= 0:
		return keyErr("turn.pre_allocate_timeout", "must be positive")
	case t.TLSHandshakeTimeout <= 0:
		return keyErr("turn.tls_handshake_timeout", "must be positive")
	case t.AuthFailuresPerMinute < 1:
		return keyErr("turn.auth_failures_per_minute", "must be at least 1")
	}
	return nil
}

// HTTPConfig is the web, API and signaling listener.
type HTTPConfig struct {
	Listen string `mapstructure:"listen"`
	// ListenAlso are more addresses served the same way (another address
	// family, say).
	ListenAlso     []string `mapstructure:"listen_also"`
	TLSCert        string   `mapstructure:"tls_cert"`
	TLSKey         string   `mapstructure:"tls_key"`
	AllowedOrigins []string `mapstructure:"allowed_origins"`

	// MaxConnsPerIP bounds the connections one source address (an IPv6
	// /64) holds open at once; 0 means no limit. Behind a reverse proxy
	// every client has the proxy's address.
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
	// BodyTimeout is how long a request body may take to arrive after its
	// headers; 0 means no limit. WebSockets have no body and are not cut.
	BodyTimeout time.Duration `mapstructure:"body_timeout"`
}

// AuthConfig is how access tokens are verified and, in dev mode, minted.
type AuthConfig struct {
	Secret      string        `mapstructure:"secret"`
	Issuer      string        `mapstructure:"issuer"`
	DevTokenTTL time.Duration `mapstructure:"dev_token_ttl"`
	// MaxTokenTTL is the longest lifetime a token may have (exp - iat).
	MaxTokenTTL time.Duration `mapstructure:"max_token_ttl"`
}

// AccountsConfig is Tandem's own sign-in (internal/accounts).
type AccountsConfig struct {
	Enabled   bool          `mapstructure:"enabled"`
	PublicURL string        `mapstructure:"public_url"`
	TokenTTL  time.Duration `mapstructure:"token_ttl"`
	InviteTTL time.Duration `mapstructure:"invite_ttl"`
	// CallsFrom is who may ring a person with an account: "anyone" on
	// this server, or only their "contacts".
	CallsFrom string `mapstructure:"calls_from"`
	// FamilyCircle makes everyone with an account everyone's contact.
	FamilyCircle bool `mapstructure:"family_circle"`
	// OIDC is an identity provider people may sign in with.
	OIDC OIDCConfig `mapstructure:"oidc"`
	// Push rings devices whose app is closed (Web Push).
	Push PushConfig `mapstructure:"push"`
}

// PushConfig is Web Push (accounts.push).
type PushConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Subject is the VAPID contact push services may write to (mailto:
	// or https:); default the public URL.
	Subject string `mapstructure:"subject"`
	// AllowLoopback lets push endpoints on loopback through: for tests
	// with a local push service only.
	AllowLoopback bool `mapstructure:"allow_loopback"`
}

// OIDCConfig is an OpenID Connect identity provider (accounts.oidc).
type OIDCConfig struct {
	Issuer       string `mapstructure:"issuer"`
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret"`
	Name         string `mapstructure:"name"`
}

// MediaConfig is the SFU's network side.
type MediaConfig struct {
	UDPListen string   `mapstructure:"udp_listen"`
	PublicIPs []string `mapstructure:"public_ips"`
	// DirectInput takes publishers' SRTP at the shared socket instead of
	// through pion's receive path (false: sfu.Config.PionInput).
	DirectInput bool `mapstructure:"direct_input"`
	// HugePages asks for transparent huge pages for the process's memory
	// where the system's THP mode is "madvise" (internal/hugepage).
	HugePages bool `mapstructure:"huge_pages"`
}

// RedisConfig is the Redis that nodes of one deployment share; no
// addresses means a single node with its own local store.
type RedisConfig struct {
	// Addrs: one address for a single server, several for a Cluster, or
	// the Sentinels' with MasterName.
	Addrs      []string      `mapstructure:"addrs"`
	MasterName string        `mapstructure:"master_name"`
	Username   string        `mapstructure:"username"`
	Password   string        `mapstructure:"password"`
	DB         int           `mapstructure:"db"`
	KeyPrefix  string        `mapstructure:"key_prefix"`
	Timeout    time.Duration `mapstructure:"timeout"`
}

// ClusterConfig is a node's membership of a deployment (used when
// redis.addrs is set).
type ClusterConfig struct {
	// NodeID names the node in the registry; each start adds a random
	// part, so that a node restarted after a crash is a new member.
	NodeID string `mapstructure:"node_id"`
	// Heartbeat is how often the node says it is alive.
	Heartbeat time.Duration `mapstructure:"heartbeat"`
	// DeadAfter is how long a silent node is waited for before its calls
	// are taken over by the others.
	DeadAfter time.Duration `mapstructure:"dead_after"`
	// RevocationSweep is how often the node checks the tokens of its
	// long-lived sessions against the shared revocation marks, in case it
	// missed another node's broadcast of a revocation.
	RevocationSweep time.Duration `mapstructure:"revocation_sweep"`
}

// AssistConfig holds remote assistance's timers.
type AssistConfig struct {
	// RequestTimeout is how long a helper's request for grants waits for
	// the helped device; unanswered, it is denied.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// ControlIdle ends a control grant the helper has not used this long.
	ControlIdle time.Duration `mapstructure:"control_idle"`
	// LogRetention is how long assistance audit entries are kept; 0
	// keeps them (up to calls.history_limit per user).
	LogRetention time.Duration `mapstructure:"log_retention"`
}

// WebhookConfig is where call events are POSTed (docs/webhooks.md).
type WebhookConfig struct {
	URL         string        `mapstructure:"url"` // empty: no webhooks
	Secret      string        `mapstructure:"secret"`
	Timeout     time.Duration `mapstructure:"timeout"`
	MaxAttempts int           `mapstructure:"max_attempts"`
}

// CallsConfig holds the call state machine's timers.
type CallsConfig struct {
	RingTimeout    time.Duration `mapstructure:"ring_timeout"`
	WaitingTimeout time.Duration `mapstructure:"waiting_timeout"`
	HandoffTimeout time.Duration `mapstructure:"handoff_timeout"`
	ReconnectGrace time.Duration `mapstructure:"reconnect_grace"`
	PTTMaxTalk     time.Duration `mapstructure:"ptt_max_talk"`
	HistoryLimit   int           `mapstructure:"history_limit"`
	// HistoryRetention is how long call history entries are kept; 0
	// keeps them (up to HistoryLimit per user).
	HistoryRetention time.Duration `mapstructure:"history_retention"`
	// Invite limits, per minute with a burst; 0 per minute is no limit.
	// Caller: invites one user sends (new calls and invites into a running
	// call), from all their devices; callee: invites one user receives,
	// from everyone; pair: from one user to one other.
	CallerInvitesPerMinute int `mapstructure:"caller_invites_per_minute"`
	CallerInviteBurst      int `mapstructure:"caller_invite_burst"`
	CalleeInvitesPerMinute int `mapstructure:"callee_invites_per_minute"`
	CalleeInviteBurst      int `mapstructure:"callee_invite_burst"`
	PairInvitesPerMinute   int `mapstructure:"pair_invites_per_minute"`
	PairInviteBurst        int `mapstructure:"pair_invite_burst"`
	// GroupUnansweredWithin makes a user's unanswered calls with the same
	// person, each within this of the one before, one history entry with a
	// count; 0 keeps an entry per call.
	GroupUnansweredWithin time.Duration `mapstructure:"group_unanswered_within"`
}

// validateInviteLimits checks the invite limits: a limit that is on
// needs a burst of at least one.
func (c *CallsConfig) validateInviteLimits() error {
	for _, l := range []struct {
		name          string
		perMin, burst int
	}{
		{"caller", c.CallerInvitesPerMinute, c.CallerInviteBurst},
		{"callee", c.CalleeInvitesPerMinute, c.CalleeInviteBurst},
		{"pair", c.PairInvitesPerMinute, c.PairInviteBurst},
	} {
		switch {
		case l.perMin < 0 || l.perMin > 60_000:
			return keyErr("calls."+l.name+"_invites_per_minute", "must be between 0 (no limit) and 60000")
		case l.perMin > 0 && (l.burst < 1 || l.burst > 1000):
			return keyErr("calls."+l.name+"_invite_burst", "must be between 1 and 1000 while calls.%s_invites_per_minute is set", l.name)
		}
	}
	if c.GroupUnansweredWithin < 0 {
		return keyErr("calls.group_unanswered_within", "must be 0 (no grouping) or positive")
	}
	return nil
}

// SignalingConfig bounds each WebSocket session.
type SignalingConfig struct {
	MaxMessageBytes int64         `mapstructure:"max_message_bytes"`
	PingInterval    time.Duration `mapstructure:"ping_interval"`
	PongTimeout     time.Duration `mapstructure:"pong_timeout"`
	HelloTimeout    time.Duration `mapstructure:"hello_timeout"`
	WriteTimeout    time.Duration `mapstructure:"write_timeout"`
	SendQueue       int           `mapstructure:"send_queue"`
	RateLimit       int           `mapstructure:"rate_limit"`
}

// ICEServer is one STUN or TURN server handed to clients.
type ICEServer struct {
	URLs       []string `mapstructure:"urls"`
	Username   string   `mapstructure:"username"`
	Credential string   `mapstructure:"credential"`
}

// ICEConfig lists the ICE servers clients are told to use.
type ICEConfig struct {
	Servers []ICEServer `mapstructure:"servers"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// DebugConfig holds tools for operators investigating a node.
type DebugConfig struct {
	// PprofListen, when set, serves Go's net/http/pprof there; it must be
	// a loopback address.
	PprofListen string `mapstructure:"pprof_listen"`
}

// ShutdownConfig bounds the drain on SIGTERM.
type ShutdownConfig struct {
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
}

// MinSecretBytes is the shortest signing secret Tandem accepts.
const MinSecretBytes = 32

// KeyError is a configuration value that is not acceptable; Key names it.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("config: %s: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

func keyErr(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// DefaultDataDir is where state lives when data_dir is empty.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tandem")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "tandem")
	}
	return "tandem-data"
}

// Validate checks every value and fills in derived ones. It returns a
// *KeyError naming the first bad key.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	httpHost, err := checkHostPort("http.listen", c.HTTP.Listen)
	if err != nil {
		return err
	}
	for _, a := range c.HTTP.ListenAlso {
		h, err := checkHostPort("http.listen_also", a)
		if err != nil {
			return err
		}
		if c.Dev && !isLoopbackHost(h) {
			return keyErr("http.listen_also", "dev mode binds to loopback only, not %q", a)
		}
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return keyErr("http.tls_cert", "tls_cert and tls_key must be set together")
	}
	for _, o := range c.HTTP.AllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return keyErr("http.allowed_origins", "%q must be an origin like https://example.com", o)
		}
	}
	if c.HTTP.MaxConnsPerIP < 0 {
		return keyErr("http.max_conns_per_ip", "must be 0 (no limit) or positive")
	}
	if c.HTTP.BodyTimeout < 0 {
		return keyErr("http.body_timeout", "must be 0 (no limit) or positive")
	}
	udpHost, err := checkHostPort("media.udp_listen", c.Media.UDPListen)
	if err != nil {
		return err
	}
	for _, ip := range c.Media.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return keyErr("media.public_ips", "%q is not an IP address", ip)
		}
	}
	if c.Dev {
		if !isLoopbackHost(httpHost) {
			return keyErr("http.listen", "dev mode binds to loopback only, not %q", c.HTTP.Listen)
		}
		if !isLoopbackHost(udpHost) {
			return keyErr("media.udp_listen", "dev mode binds to loopback only, not %q", c.Media.UDPListen)
		}
	} else {
		if len(c.Auth.Secret) < MinSecretBytes && !(isLoopbackHost(httpHost) && c.Auth.Secret == "") {
			if c.Auth.Secret == "" {
				return keyErr("auth.secret", "a signing secret of at least %d bytes is required to listen on %q (or use --dev on loopback)", MinSecretBytes, c.HTTP.Listen)
			}
			return keyErr("auth.secret", "must be at least %d bytes, got %d", MinSecretBytes, len(c.Auth.Secret))
		}
	}
	if c.Auth.DevTokenTTL <= 0 {
		return keyErr("auth.dev_token_ttl", "must be positive")
	}
	if c.Auth.MaxTokenTTL <= 0 {
		return keyErr("auth.max_token_ttl", "must be positive")
	}
	if c.Auth.DevTokenTTL > c.Auth.MaxTokenTTL {
		return keyErr("auth.dev_token_ttl", "must not exceed auth.max_token_ttl (%v)", c.Auth.MaxTokenTTL)
	}
	if c.Accounts.TokenTTL <= 0 || c.Accounts.TokenTTL > c.Auth.MaxTokenTTL {
		return keyErr("accounts.token_ttl", "must be positive and at most auth.max_token_ttl (%v)", c.Auth.MaxTokenTTL)
	}
	if c.Accounts.InviteTTL <= 0 || c.Accounts.InviteTTL > 90*24*time.Hour {
		return keyErr("accounts.invite_ttl", "must be positive and at most 90 days (2160h)")
	}
	if o := c.Accounts.OIDC; o.Issuer != "" {
		if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return keyErr("accounts.oidc.issuer", "must be the identity provider's issuer URL, got %q", o.Issuer)
		}
		if o.ClientID == "" {
			return keyErr("accounts.oidc.client_id", "must be set with accounts.oidc.issuer")
		}
	}
	if c.Accounts.CallsFrom != "anyone" && c.Accounts.CallsFrom != "contacts" {
		return keyErr("accounts.calls_from", "must be anyone or contacts, got %q", c.Accounts.CallsFrom)
	}
	if u := c.Accounts.PublicURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || (pu.Path != "" && pu.Path != "/") {
			return keyErr("accounts.public_url", "must be the server's address such as https://call.example.org, got %q", u)
		}
	}
	if c.Calls.RingTimeout <= 0 {
		return keyErr("calls.ring_timeout", "must be positive")
	}
	if c.Calls.WaitingTimeout <= 0 {
		return keyErr("calls.waiting_timeout", "must be positive")
	}
	if c.Calls.HandoffTimeout <= 0 {
		return keyErr("calls.handoff_timeout", "must be positive")
	}
	if len(c.Redis.Addrs) > 0 && c.Auth.Secret == "" {
		return keyErr("auth.secret", "must be set when redis.addrs is: every node signs and checks tokens with the same key")
	}
	if c.Redis.Timeout <= 0 {
		return keyErr("redis.timeout", "must be positive")
	}
	if c.Cluster.Heartbeat <= 0 {
		return keyErr("cluster.heartbeat", "must be positive")
	}
	if c.Cluster.DeadAfter < 2*c.Cluster.Heartbeat {
		return keyErr("cluster.dead_after", "must be at least two heartbeats (%s)", 2*c.Cluster.Heartbeat)
	}
	if c.Cluster.RevocationSweep <= 0 {
		return keyErr("cluster.revocation_sweep", "must be positive")
	}
	if c.Assist.RequestTimeout <= 0 {
		return keyErr("assist.request_timeout", "must be positive")
	}
	if c.Assist.ControlIdle <= 0 {
		return keyErr("assist.control_idle", "must be positive")
	}
	if c.Calls.ReconnectGrace <= 0 {
		return keyErr("calls.reconnect_grace", "must be positive")
	}
	if c.Calls.PTTMaxTalk <= 0 {
		return keyErr("calls.ptt_max_talk", "must be positive")
	}
	if c.Calls.HistoryLimit <= 0 {
		return keyErr("calls.history_limit", "must be positive")
	}
	if c.Calls.HistoryRetention < 0 {
		return keyErr("calls.history_retention", "must be 0 (keep) or positive")
	}
	if err := c.Calls.validateInviteLimits(); err != nil {
		return err
	}
	if c.Assist.LogRetention < 0 {
		return keyErr("assist.log_retention", "must be 0 (keep) or positive")
	}
	if w := c.Webhook; w.URL != "" {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keyErr("webhook.url", "must be an http or https URL, not %q", w.URL)
		}
		if len(w.Secret) < 16 {
			return keyErr("webhook.secret", "must be at least 16 characters when webhook.url is set")
		}
		if w.Timeout <= 0 {
			return keyErr("webhook.timeout", "must be positive")
		}
		if w.MaxAttempts < 1 {
			return keyErr("webhook.max_attempts", "must be at least 1")
		}
	}
	s := c.Signaling
	switch {
	case s.MaxMessageBytes < 4096 || s.MaxMessageBytes > 16<<20:
		return keyErr("signaling.max_message_bytes", "must be between 4096 and 16777216")
	case s.PingInterval <= 0:
		return keyErr("signaling.ping_interval", "must be positive")
	case s.PongTimeout <= s.PingInterval:
		return keyErr("signaling.pong_timeout", "must be longer than signaling.ping_interval")
	case s.HelloTimeout <= 0:
		return keyErr("signaling.hello_timeout", "must be positive")
	case s.WriteTimeout <= 0:
		return keyErr("signaling.write_timeout", "must be positive")
	case s.SendQueue < 8:
		return keyErr("signaling.send_queue", "must be at least 8")
	case s.RateLimit <= 0:
		return keyErr("signaling.rate_limit", "must be positive")
	}
	for _, srv := range c.ICE.Servers {
		if len(srv.URLs) == 0 {
			return keyErr("ice.servers", "every server needs urls")
		}
		for _, u := range srv.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				return keyErr("ice.servers", "%q is not a stun:, turn: or turns: URL", u)
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return keyErr("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return keyErr("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if a := c.Debug.PprofListen; a != "" {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return keyErr("debug.pprof_listen", "must be a loopback host:port, not %q", a)
		}
	}
	if c.Shutdown.DrainTimeout <= 0 {
		return keyErr("shutdown.drain_timeout", "must be positive")
	}
	return c.TURN.validate(c.Dev, c.HTTP.TLSCert)
}

func checkHostPort(key, v string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", keyErr(key, "%q is not host:port", v)
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 0 || p > 65535 || fmt.Sprint(p) != port {
		return "", keyErr(key, "%q has no valid port", v)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", keyErr(key, "%q: host must be an IP address or localhost", v)
		}
	}
	return host, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// ErrHelp is returned by Load when --help was asked for.
var ErrHelp = errors.New("help requested")
