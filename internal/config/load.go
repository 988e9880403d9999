package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix starts every environment variable Tandem reads.
const EnvPrefix = "TANDEM"

// envConfigFile names the config file when --config is not given.
const envConfigFile = "TANDEM_CONFIG"

// defaults lists every key and its default; a key absent here is unknown.
func defaults() map[string]any {
	return map[string]any{
		"dev":                          false,
		"data_dir":                     "",
		"http.listen":                  "",
		"http.listen_also":             []string{},
		"http.tls_cert":                "",
		"http.tls_key":                 "",
		"http.allowed_origins":         []string{},
		"http.max_conns_per_ip":        64,
		"http.body_timeout":            30 * time.Second,
		"auth.secret":                  "",
		"auth.issuer":                  "",
		"auth.dev_token_ttl":           12 * time.Hour,
		"auth.max_token_ttl":           2160 * time.Hour,
		"accounts.enabled":             true,
		"accounts.public_url":          "",
		"accounts.token_ttl":           time.Hour,
		"accounts.invite_ttl":          168 * time.Hour,
		"accounts.calls_from":          "anyone",
		"accounts.family_circle":       false,
		"accounts.oidc.issuer":         "",
		"accounts.oidc.client_id":      "",
		"accounts.oidc.client_secret":  "",
		"accounts.oidc.name":           "",
		"accounts.push.enabled":        true,
		"accounts.push.subject":        "",
		"accounts.push.allow_loopback": false,
		"media.udp_listen":             "",
		"media.public_ips":             []string{},
		"media.direct_input":           true,
		"media.huge_pages":             true,
		"calls.ring_timeout":           45 * time.Second,
		"calls.waiting_timeout":        15 * time.Second,
		"calls.handoff_timeout":        15 * time.Second,
		"calls.reconnect_grace":        20 * time.Second,
		"calls.ptt_max_talk":           60 * time.Second,
		"calls.history_limit":          1000,
		"calls.history_retention":      365 * 24 * time.Hour,
		"assist.request_timeout":       30 * time.Second,
		"assist.control_idle":          2 * time.Minute,
		"assist.log_retention":         365 * 24 * time.Hour,
		"webhook.url":                  "",
		"webhook.secret":               "",
		"webhook.timeout":              5 * time.Second,
		"webhook.max_attempts":         8,
		"redis.addrs":                  []string{},
		"redis.master_name":            "",
		"redis.username":               "",
		"redis.password":               "",
		"redis.db":                     0,
		"redis.key_prefix":             "tandem:",
		"redis.timeout":                time.Second,
		"cluster.node_id":              "",
		"cluster.heartbeat":            time.Second,
		"cluster.dead_after":           5 * time.Second,
		"cluster.revocation_sweep":     30 * time.Second,
		"signaling.max_message_bytes":  64 << 10,
		"signaling.ping_interval":      20 * time.Second,
		"signaling.pong_timeout":       45 * time.Second,
		"signaling.hello_timeout":      10 * time.Second,
		"signaling.write_timeout":      10 * time.Second,
		"signaling.send_queue":         256,
		"signaling.rate_limit":         50,
		"ice.servers":                  []map[string]any{},
		"log.level":                    "info",
		"log.format":                   "text",
		"debug.pprof_listen":           "",
		"shutdown.drain_timeout":       30 * time.Second,

		"calls.caller_invites_per_minute": 10,
		"calls.caller_invite_burst":       10,
		"calls.callee_invites_per_minute": 20,
		"calls.callee_invite_burst":       10,
		"calls.pair_invites_per_minute":   5,
		"calls.pair_invite_burst":         5,
		"calls.group_unanswered_within":   time.Hour,

		"turn.enabled":                        true,
		"turn.realm":                          "tandem",
		"turn.udp_listen":                     "",
		"turn.udp_sockets":                    0,
		"turn.tcp_listen":                     "",
		"turn.tls_listen":                     "",
		"turn.relay_ip":                       "",
		"turn.public_ip":                      "",
		"turn.public_host":                    "",
		"turn.relay_port_min":                 49152,
		"turn.relay_port_max":                 65535,
		"turn.secrets":                        []string{},
		"turn.credential_ttl":                 10 * time.Minute,
		"turn.allow_cidrs":                    []string{},
		"turn.deny_cidrs":                     []string{},
		"turn.max_allocations_per_user":       12,
		"turn.max_allocations":                10000,
		"turn.max_permissions_per_allocation": 32,
		"turn.bandwidth_per_allocation":       1000000,
		"turn.pre_allocate_timeout":           60 * time.Second,
		"turn.tls_handshake_timeout":          10 * time.Second,
		"turn.auth_failures_per_minute":       20,
	}
}

// Flag names bound to keys. Secrets have no flag: command lines are visible
// to every user of the machine.
var flagKeys = map[string]string{
	"dev":       "dev",
	"data-dir":  "data_dir",
	"listen":    "http.listen",
	"media-udp": "media.udp_listen",
	"log-level": "log.level",
}

// RegisterFlags adds the serve flags to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file (default $"+envConfigFile+")")
	fs.Bool("dev", false, "development mode: loopback only, generated signing key, demo sign-in")
	fs.String("data-dir", "", "directory for the signing key and call history (default "+DefaultDataDir()+")")
	fs.String("listen", "", "HTTP listen address (default 127.0.0.1:7880 in dev mode, :7880 otherwise)")
	fs.String("media-udp", "", "UDP address shared by all media (default 127.0.0.1:7882 in dev mode, :7882 otherwise)")
	fs.String("log-level", "", "debug, info, warn or error")
}

// Load builds a Config from defaults, the config file, the environment
// (environ, as from os.Environ) and the flags in fs (already parsed).
func Load(fs *pflag.FlagSet, environ []string) (Config, error) {
	v := viper.New()
	known := defaults()
	for k, d := range known {
		v.SetDefault(k, d)
	}

	path := ""
	for _, kv := range environ {
		if p, ok := strings.CutPrefix(kv, envConfigFile+"="); ok {
			path = p
		}
	}
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	// origin says where each key's value came from, for error messages.
	origin := map[string]string{}
	if path != "" {
		keys, err := mergeFile(v, path, known)
		if err != nil {
			return Config{}, err
		}
		for _, k := range keys {
			origin[k] = path
		}
	}

	if err := applyEnv(v, environ, known, origin); err != nil {
		return Config{}, err
	}

	if fs != nil {
		for name, key := range flagKeys {
			if f := fs.Lookup(name); f != nil && f.Changed {
				v.Set(key, f.Value.String())
				origin[key] = "--" + name
			}
		}
	}

	var c Config
	err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return Config{}, decodeError(v, origin, err)
	}
	c.fillDerived()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decodeError turns a failure to decode the merged settings into a
// *KeyError naming the key, its value and where that value came from.
func decodeError(v *viper.Viper, origin map[string]string, err error) error {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) || de.Name() == "" {
		return &KeyError{Key: "(config)", Err: err}
	}
	key := de.Name()
	from := ""
	if o, ok := origin[key]; ok {
		from = " (from " + o + ")"
	}
	if v.IsSet(key) && key != "auth.secret" && key != "webhook.secret" && key != "accounts.oidc.client_secret" { // never echo a secret
		return &KeyError{Key: key, Err: fmt.Errorf("invalid value %q%s: %w", fmt.Sprint(v.Get(key)), from, de.Unwrap())}
	}
	return &KeyError{Key: key, Err: fmt.Errorf("invalid value%s: %w", from, de.Unwrap())}
}

// mergeFile merges the YAML file at path into v and returns the keys it set.
func mergeFile(v *viper.Viper, path string, known map[string]any) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	fv := viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	keys := fv.AllKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := known[k]; !ok {
			return nil, &KeyError{Key: k, Err: fmt.Errorf("unknown key in %s", path)}
		}
	}
	if err := v.MergeConfigMap(fv.AllSettings()); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return keys, nil
}

// applyEnv sets keys from TANDEM_* variables; a variable that names no key
// is an error, so a typo does not silently keep a default. origin records
// the variable that set each key.
func applyEnv(v *viper.Viper, environ []string, known map[string]any, origin map[string]string) error {
	byEnv := make(map[string]string, len(known))
	for k := range known {
		byEnv[EnvPrefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = k
	}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix+"_") || name == envConfigFile {
			continue
		}
		key, ok := byEnv[name]
		if !ok {
			return &KeyError{Key: name, Err: errors.New("unknown environment variable")}
		}
		if key == "ice.servers" {
			return &KeyError{Key: name, Err: errors.New("ice.servers can only be set in the config file")}
		}
		v.Set(key, val)
		origin[key] = name
	}
	return nil
}

func (c *Config) fillDerived() {
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = ":7880"
		if c.Dev {
			c.HTTP.Listen = "127.0.0.1:7880"
		}
	}
	if c.Media.UDPListen == "" {
		c.Media.UDPListen = ":7882"
		if c.Dev {
			c.Media.UDPListen = "127.0.0.1:7882"
		}
	}
	if c.TURN.UDPListen == "" && c.TURN.TCPListen == "" {
		c.TURN.UDPListen, c.TURN.TCPListen = ":3478", ":3478"
		if c.Dev {
			c.TURN.UDPListen, c.TURN.TCPListen = "127.0.0.1:3478", "127.0.0.1:3478"
		}
	}
	if c.TURN.RelayIP == "" {
		c.TURN.RelayIP = "0.0.0.0"
		if c.Dev {
			c.TURN.RelayIP = "127.0.0.1"
		}
	}
}

// Default returns the defaults with derived values filled in, for tests
// and tools; it is not validated.
func Default(dev bool) Config {
	v := viper.New()
	for k, d := range defaults() {
		v.SetDefault(k, d)
	}
	v.Set("dev", dev)
	var c Config
	_ = v.Unmarshal(&c)
	c.fillDerived()
	return c
}
