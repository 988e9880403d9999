package main

// `tandem admin` is the operator's client for a node's admin API
// (docs/operations.md, "Admin API"): it lists and ends calls, removes a
// participant, exports or erases a user's data, and revokes tokens.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/config"
)

const adminUsage = `Usage:
  tandem admin [--server URL] [--token TOKEN | --token-file FILE] COMMAND [ARGS]

Commands:
  rooms [--json]            list calls and rooms with members, tracks and live quality
  room ID                   one call or room, as JSON
  end ID                    end a call or room for everyone
  remove ID USER            take USER out of call or room ID
  sessions USER [--json]    USER's signed-in devices
  export USER [-o FILE]     USER's data archive (JSON) to stdout or FILE (mode 0600)
  erase USER --yes          erase USER's data and sign their devices out
  revoke user USER          revoke every token of USER issued until now
  revoke device USER DEVICE revoke the tokens of USER's DEVICE issued until now
  revoke token [--] ID      revoke the token with id ID (tandem token prints it; -- before an ID that starts with -)
  invite [--for NAME] [--uses N] [--ttl DURATION] [--owner]
                            make an invite link: whoever opens it picks a name and
                            a passkey (--owner: the account is an owner's)
  people [--json]           everyone with an account, and their devices
  disable USER | enable USER
                            disabling signs every device of theirs out at once
  role USER ROLE            make USER an owner, admin or member
  can-invite USER yes|no    let a member make invite links, or not
  remove-device USER DEVICE sign USER's DEVICE out everywhere and forget it

A revocation ends the sessions of the tokens it covers on every node of a
deployment: signaling, WHIP and WHEP, and for a user's tokens their TURN
allocations; it erases nothing.

Without --token or --token-file, a 5-minute admin token is minted with the
node's signing key, found as "tandem serve" finds it (--config, --data-dir,
--dev, TANDEM_* environment).

The admin API shows what one node holds: on a deployment of several, ask
each node.

Flags:
`

const (
	defaultAdminServer = "http://127.0.0.1:7880"
	adminTimeout       = 30 * time.Second
	// mintedTokenTTL bounds the token minted for one command.
	mintedTokenTTL = 5 * time.Minute
	// maxErrorBody bounds how much of an error answer is read.
	maxErrorBody = 64 << 10
)

// adminFlags are the flags of `tandem admin`, global and per command.
type adminFlags struct {
	server    string
	token     string
	tokenFile string
	json      bool
	out       string
	yes       bool
	// invite
	owner   bool
	forName string
	uses    int
	ttl     time.Duration
}

// adminClient talks to one node's admin API.
type adminClient struct {
	base  string // without a trailing slash
	token string
	http  *http.Client
}

// adminAPIError is an error answer of the API.
type adminAPIError struct {
	Status  int
	Code    string
	Message string
}

func (e *adminAPIError) Error() string {
	switch {
	case e.Code != "" && e.Message != "":
		return e.Code + ": " + e.Message
	case e.Code != "":
		return e.Code
	}
	return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
}

func adminCmd(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("admin", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, adminUsage)
		fs.PrintDefaults()
	}
	config.RegisterFlags(fs)
	var f adminFlags
	fs.StringVar(&f.server, "server", defaultAdminServer, "base URL of the node")
	fs.StringVar(&f.token, "token", "", "access token with the admin grant")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the access token")
	fs.BoolVar(&f.json, "json", false, "rooms, sessions: print the server's JSON")
	fs.StringVarP(&f.out, "output", "o", "", "export: write the archive to this file (mode 0600)")
	fs.BoolVar(&f.yes, "yes", false, "erase: confirm the erasure")
	fs.BoolVar(&f.owner, "owner", false, "invite: the account it makes is an owner's")
	fs.StringVar(&f.forName, "for", "", "invite: who it is for, shown to them as the name to start from")
	fs.IntVar(&f.uses, "uses", 1, "invite: how many accounts it may make")
	fs.DurationVar(&f.ttl, "ttl", 0, "invite: how long it holds (default accounts.invite_ttl, 7 days)")
	for _, name := range []string{"listen", "media-udp", "log-level"} {
		_ = fs.MarkHidden(name) // the node's, not this client's
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("admin: missing command")
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "revoke" && len(rest) > 0 {
		cmd, rest = "revoke "+rest[0], rest[1:] // revoke user, revoke device, revoke token
	}
	if err := checkAdminArgs(fs, cmd, rest); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if cmd == "erase" && !f.yes {
		return fmt.Errorf("admin: erase deletes %s's call history, assistance log and sign-in record, takes them out of their calls and signs out all their devices; nothing was done: add --yes to erase", rest[0])
	}

	tok, err := adminToken(fs, f)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	c, err := newAdminClient(f.server, tok)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	ctx := context.Background()
	switch cmd {
	case "rooms":
		err = c.rooms(ctx, stdout, f.json)
	case "room":
		err = c.room(ctx, stdout, rest[0])
	case "end":
		err = c.end(ctx, stdout, rest[0])
	case "remove":
		err = c.remove(ctx, stdout, rest[0], rest[1])
	case "sessions":
		err = c.sessions(ctx, stdout, rest[0], f.json)
	case "export":
		err = c.export(ctx, stdout, rest[0], f.out)
	case "erase":
		err = c.erase(ctx, stdout, rest[0])
	case "revoke user":
		err = c.revoke(ctx, stdout, "/api/v1/admin/users/"+url.PathEscape(rest[0])+"/revoke")
	case "revoke device":
		err = c.revoke(ctx, stdout, "/api/v1/admin/users/"+url.PathEscape(rest[0])+"/devices/"+url.PathEscape(rest[1])+"/revoke")
	case "revoke token":
		err = c.revoke(ctx, stdout, "/api/v1/admin/tokens/"+url.PathEscape(rest[0])+"/revoke")
	case "invite":
		err = c.invite(ctx, stdout, adminapi.InviteRequest{For: f.forName, Uses: f.uses,
			TTLHours: int((f.ttl + time.Hour - 1) / time.Hour), Owner: f.owner})
	case "people":
		err = c.people(ctx, stdout, f.json)
	case "disable", "enable":
		disabled := cmd == "disable"
		err = c.changePerson(ctx, stdout, rest[0], adminapi.PersonChange{Disabled: &disabled})
	case "role":
		err = c.changePerson(ctx, stdout, rest[0], adminapi.PersonChange{Role: &rest[1]})
	case "can-invite":
		var yes bool
		switch rest[1] {
		case "yes":
			yes = true
		case "no":
		default:
			return errors.New("admin: usage: tandem admin can-invite USER yes|no")
		}
		err = c.changePerson(ctx, stdout, rest[0], adminapi.PersonChange{CanInvite: &yes})
	case "remove-device":
		if err = c.del(ctx, "/api/v1/admin/people/"+url.PathEscape(rest[0])+"/devices/"+url.PathEscape(rest[1])); err == nil {
			_, err = fmt.Fprintf(stdout, "removed %s's device %s and signed it out everywhere\n", rest[0], rest[1])
		}
	}
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// adminCommands gives each command's positional arguments and the
// command-specific flags it takes.
var adminCommands = map[string]struct {
	args  []string
	flags []string
}{
	"rooms":    {nil, []string{"json"}},
	"room":     {[]string{"ID"}, []string{"json"}}, // always JSON
	"end":      {[]string{"ID"}, nil},
	"remove":   {[]string{"ID", "USER"}, nil},
	"sessions": {[]string{"USER"}, []string{"json"}},
	"export":   {[]string{"USER"}, []string{"output"}},
	"erase":    {[]string{"USER"}, []string{"yes"}},

	"invite":        {nil, []string{"owner", "for", "uses", "ttl"}},
	"people":        {nil, []string{"json"}},
	"disable":       {[]string{"USER"}, nil},
	"enable":        {[]string{"USER"}, nil},
	"role":          {[]string{"USER", "ROLE"}, nil},
	"can-invite":    {[]string{"USER", "yes|no"}, nil},
	"remove-device": {[]string{"USER", "DEVICE"}, nil},

	"revoke user":   {[]string{"USER"}, nil},
	"revoke device": {[]string{"USER", "DEVICE"}, nil},
	"revoke token":  {[]string{"ID"}, nil},
}

// checkAdminArgs checks that cmd exists, has its arguments, and that no
// other command's flag was given with it.
func checkAdminArgs(fs *pflag.FlagSet, cmd string, args []string) error {
	spec, ok := adminCommands[cmd]
	switch {
	case !ok && strings.HasPrefix(cmd, "revoke"):
		return errors.New("usage: tandem admin revoke user USER | revoke device USER DEVICE | revoke token ID")
	case !ok:
		return fmt.Errorf("unknown command %q (rooms, room, end, remove, sessions, export, erase, revoke, invite, people, disable, enable, role, can-invite, remove-device)", cmd)
	}
	if len(args) != len(spec.args) {
		if len(spec.args) == 0 {
			return fmt.Errorf("%s takes no arguments", cmd)
		}
		return fmt.Errorf("usage: tandem admin %s %s", cmd, strings.Join(spec.args, " "))
	}
	for i, a := range args {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("%s: %s is empty", cmd, spec.args[i])
		}
	}
	for _, name := range []string{"json", "output", "yes", "owner", "for", "uses", "ttl"} {
		if fs.Changed(name) && !slices.Contains(spec.flags, name) {
			return fmt.Errorf("%s does not take --%s", cmd, name)
		}
	}
	return nil
}

// adminToken is --token, else the contents of --token-file, else a
// short-lived admin token minted with the node's signing key.
func adminToken(fs *pflag.FlagSet, f adminFlags) (string, error) {
	if f.token != "" && f.tokenFile != "" {
		return "", errors.New("give --token or --token-file, not both")
	}
	if f.token != "" {
		return strings.TrimSpace(f.token), nil
	}
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("--token-file %s is empty", f.tokenFile)
		}
		return tok, nil
	}
	cfg, err := config.Load(fs, os.Environ())
	if err != nil {
		return "", fmt.Errorf("no --token given, and the node's configuration to mint one cannot be read: %w", err)
	}
	secret := []byte(cfg.Auth.Secret)
	if len(secret) == 0 {
		if secret, err = auth.LoadOrCreateKey(cfg.DataDir); err != nil {
			return "", fmt.Errorf("no --token given, and the node's signing key cannot be read: %w", err)
		}
	}
	a, err := auth.New(secret, cfg.Auth.Issuer)
	if err != nil {
		return "", err
	}
	tok, _, err := a.Mint("admin", "cli", []string{auth.GrantAdmin}, mintedTokenTTL)
	return tok, err
}

func newAdminClient(server, token string) (*adminClient, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http:// or https:// URL", server)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the node is reached directly, whatever HTTP_PROXY says
	return &adminClient{
		base:  strings.TrimRight(server, "/"),
		token: token,
		http:  &http.Client{Timeout: adminTimeout, Transport: tr},
	}, nil
}

// do sends a request to path (already escaped) and returns the answer if
// its status is 2xx; otherwise the server's error. The caller closes the
// body.
func (c *adminClient) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.send(ctx, method, path, nil)
}

// send is do with a JSON body (nil: none).
func (c *adminClient) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &adminAPIError{Status: resp.StatusCode}
	var answer struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(b, &answer) == nil {
		e.Code, e.Message = answer.Error.Code, answer.Error.Message
	}
	return nil, e
}

// getJSON fetches path and returns its body.
func (c *adminClient) getJSON(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return b, nil
}

// printIndentedJSON writes b indented, with a final newline.
func printIndentedJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

func (c *adminClient) rooms(ctx context.Context, w io.Writer, raw bool) error {
	b, err := c.getJSON(ctx, "/api/v1/admin/rooms")
	if err != nil {
		return err
	}
	if raw {
		return printIndentedJSON(w, b)
	}
	var list struct {
		Rooms []adminapi.RoomView `json:"rooms"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("the server's answer is not a room list: %w", err)
	}
	if len(list.Rooms) == 0 {
		_, err := fmt.Fprintln(w, "no calls or rooms on this node")
		return err
	}
	return writeRooms(w, list.Rooms, time.Now())
}

// writeRooms prints one line per call or room and under it one line per
// member.
func writeRooms(w io.Writer, rooms []adminapi.RoomView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID / MEMBER\tKIND\tSTATE\tAGE / TRACKS\tQUALITY")
	for _, r := range rooms {
		kind := r.Kind
		if r.Kind == "room" {
			kind = fmt.Sprintf("room %s (%s)", r.Room, r.Mode)
		}
		if r.Video {
			kind += ", video"
		}
		age := now.Sub(r.StartedAt).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.ID, kind, r.State, age)
		for _, m := range r.Members {
			who := m.User
			if m.Device != "" {
				who += "/" + m.Device
			}
			fmt.Fprintf(tw, "  %s\t\t%s\t%s\t%s\n", who, m.State, trackSummary(m.Tracks), qualitySummary(m.Quality))
		}
	}
	return tw.Flush()
}

// trackSummary is e.g. "audio, video 3 layers, screen".
func trackSummary(ts []adminapi.TrackView) string {
	if len(ts) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		s := t.Kind
		if t.Screen {
			s = "screen"
		}
		if n := len(t.Layers); n > 1 {
			s += fmt.Sprintf(" %d layers", n)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// qualitySummary is e.g. "good 12 ms rtt 0.0% loss 1.8 Mbit/s up 900 kbit/s down".
func qualitySummary(q *adminapi.QualityView) string {
	if q == nil {
		return "-"
	}
	return fmt.Sprintf("%s %.0f ms rtt %.1f%% loss %s up %s down",
		q.Level, q.RTTMs, max(q.LossUpPct, q.LossDownPct), bitrate(q.SendKbps), bitrate(q.RecvKbps))
}

func bitrate(kbps float64) string {
	if kbps >= 1000 {
		return fmt.Sprintf("%.1f Mbit/s", kbps/1000)
	}
	return fmt.Sprintf("%.0f kbit/s", kbps)
}

func (c *adminClient) room(ctx context.Context, w io.Writer, id string) error {
	b, err := c.getJSON(ctx, "/api/v1/admin/rooms/"+url.PathEscape(id))
	if err != nil {
		return err
	}
	return printIndentedJSON(w, b)
}

func (c *adminClient) end(ctx context.Context, w io.Writer, id string) error {
	if err := c.del(ctx, "/api/v1/admin/rooms/"+url.PathEscape(id)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "ended %s for everyone\n", id)
	return err
}

func (c *adminClient) remove(ctx context.Context, w io.Writer, id, user string) error {
	if err := c.del(ctx, "/api/v1/admin/rooms/"+url.PathEscape(id)+"/participants/"+url.PathEscape(user)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "removed %s from %s\n", user, id)
	return err
}

func (c *adminClient) erase(ctx context.Context, w io.Writer, user string) error {
	if err := c.del(ctx, "/api/v1/admin/users/"+url.PathEscape(user)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "erased %s's data and signed out their devices\n", user)
	return err
}

// revoke posts a revocation and says what it revoked.
func (c *adminClient) revoke(ctx context.Context, w io.Writer, path string) error {
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var a adminapi.RevokeAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&a); err != nil {
		return fmt.Errorf("the server's answer is not a revocation: %w", err)
	}
	switch {
	case a.TokenID != "" && a.Until != nil:
		_, err = fmt.Fprintf(w, "revoked token %s (refused until %s, when it has expired anyway); its sessions are ended\n",
			a.TokenID, a.Until.UTC().Format(time.RFC3339))
	case a.Device != "" && a.IssuedBefore != nil:
		_, err = fmt.Fprintf(w, "revoked %s's tokens for device %s issued until %s; that device's sessions are ended\n",
			a.User, a.Device, a.IssuedBefore.UTC().Format(time.RFC3339))
	case a.User != "" && a.IssuedBefore != nil:
		_, err = fmt.Fprintf(w, "revoked %s's tokens issued until %s; their sessions and TURN relays are ended\n",
			a.User, a.IssuedBefore.UTC().Format(time.RFC3339))
	default:
		return errors.New("the server's answer names nothing revoked")
	}
	return err
}

func (c *adminClient) del(ctx context.Context, path string) error {
	resp, err := c.do(ctx, http.MethodDelete, path)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Body.Close()
}

func (c *adminClient) sessions(ctx context.Context, w io.Writer, user string, raw bool) error {
	b, err := c.getJSON(ctx, "/api/v1/admin/users/"+url.PathEscape(user)+"/sessions")
	if err != nil {
		return err
	}
	if raw {
		return printIndentedJSON(w, b)
	}
	var s struct {
		User    string                `json:"user"`
		Devices []adminapi.DeviceInfo `json:"devices"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("the server's answer is not a session list: %w", err)
	}
	if len(s.Devices) == 0 {
		_, err := fmt.Fprintf(w, "%s has no device signed in on this node\n", user)
		return err
	}
	return writeSessions(w, s.Devices, time.Now())
}

func writeSessions(w io.Writer, ds []adminapi.DeviceInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSESSION\tGRANTS\tTOKEN EXPIRES\tCALL\tNODE")
	for _, d := range ds {
		exp := "expired"
		if left := d.ExpiresAt.Sub(now); left > 0 {
			exp = "in " + left.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Device, d.Session, dashIfEmpty(strings.Join(d.Grants, ",")), exp, dashIfEmpty(d.Call), dashIfEmpty(d.Node))
	}
	return tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// export writes user's archive to w, or to file out: a file appears only
// whole, with mode 0600.
func (c *adminClient) export(ctx context.Context, w io.Writer, user, out string) error {
	b, err := c.getJSON(ctx, "/api/v1/admin/users/"+url.PathEscape(user)+"/export")
	if err != nil {
		return err
	}
	if !json.Valid(b) {
		return errors.New("the server's answer is not JSON")
	}
	if out == "" {
		_, err := w.Write(b)
		return err
	}
	if err := writePrivateFile(out, b); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "wrote %s's archive to %s\n", user, out)
	return err
}

// writePrivateFile writes b to path with mode 0600 by renaming a temporary
// file of the same directory over it.
func writePrivateFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// invite makes an invite link and prints it with what it allows.
func (c *adminClient) invite(ctx context.Context, w io.Writer, req adminapi.InviteRequest) error {
	resp, err := c.send(ctx, http.MethodPost, "/api/v1/admin/invites", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var a adminapi.InviteAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&a); err != nil || a.Link == "" {
		return errors.New("the server's answer is not an invite link")
	}
	who := "anyone with the link"
	if a.For != "" {
		who = a.For
	}
	uses := "once"
	if a.Uses > 1 {
		uses = fmt.Sprintf("%d times", a.Uses)
	}
	_, err = fmt.Fprintf(w, "%s\n\nFor %s (%s), until %s: it makes an account %s.\n", a.Link, who, a.Role,
		a.ExpiresAt.Local().Format("2006-01-02 15:04"), uses)
	return err
}

// people lists everyone with an account and their devices.
func (c *adminClient) people(ctx context.Context, w io.Writer, raw bool) error {
	b, err := c.getJSON(ctx, "/api/v1/admin/people")
	if err != nil {
		return err
	}
	if raw {
		return printIndentedJSON(w, b)
	}
	var list struct {
		People []adminapi.PersonView `json:"people"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("the server's answer is not a list of people: %w", err)
	}
	if len(list.People) == 0 {
		_, err := fmt.Fprintln(w, "nobody has an account yet: `tandem admin invite --owner` makes the first")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER / DEVICE\tNAME\tROLE\tLAST USED")
	for _, p := range list.People {
		role := p.Role
		if p.Disabled {
			role += ", disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", p.ID, p.Name, role)
		for _, d := range p.Devices {
			fmt.Fprintf(tw, "  %s\t%s\t\t%s\n", d.ID, d.Name, d.LastUsed.Local().Format("2006-01-02 15:04"))
		}
	}
	return tw.Flush()
}

// changePerson applies ch to user and says what they are now.
func (c *adminClient) changePerson(ctx context.Context, w io.Writer, user string, ch adminapi.PersonChange) error {
	resp, err := c.send(ctx, http.MethodPatch, "/api/v1/admin/people/"+url.PathEscape(user), ch)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var p adminapi.PersonView
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&p); err != nil {
		return errors.New("the server's answer is not a person")
	}
	state := "enabled"
	if p.Disabled {
		state = "disabled, and every device of theirs signed out"
	}
	invites := ""
	if p.Role == "member" && p.CanInvite {
		invites = ", may invite"
	}
	_, err = fmt.Fprintf(w, "%s (%s) is %s%s, %s\n", p.ID, p.Name, p.Role, invites, state)
	return err
}
