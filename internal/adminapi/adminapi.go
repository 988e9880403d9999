// Package adminapi holds the JSON types of Tandem's admin API
// (docs/operations.md, "Admin API"): what the server answers and what
// `tandem admin` reads, without the command importing the server.
package adminapi

import (
	"time"

	"github.com/tandemcall/tandem/internal/store"
)

// RoomView is a call or room as the admin API lists it.
type RoomView struct {
	ID         string       `json:"id"`
	Kind       string       `json:"kind"` // call or room
	Room       string       `json:"room,omitempty"`
	Mode       string       `json:"mode,omitempty"` // group or ptt, for rooms
	State      string       `json:"state"`          // ringing or active
	Video      bool         `json:"video,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	AnsweredAt *time.Time   `json:"answered_at,omitempty"`
	Members    []MemberView `json:"members"`
}

// MemberView is one user's place in a call, with their media leg.
type MemberView struct {
	User     string       `json:"user"`
	Device   string       `json:"device,omitempty"`
	Session  string       `json:"session,omitempty"`
	State    string       `json:"state"` // ringing or joined
	JoinedAt *time.Time   `json:"joined_at,omitempty"`
	Tracks   []TrackView  `json:"tracks"`
	Quality  *QualityView `json:"quality,omitempty"`
}

// TrackView is a track a member publishes.
type TrackView struct {
	ID          string      `json:"id"`
	Kind        string      `json:"kind"`
	Codec       string      `json:"codec"`
	Screen      bool        `json:"screen,omitempty"`
	Subscribers int         `json:"subscribers"`
	Layers      []LayerView `json:"layers,omitempty"`
}

// LayerView is one simulcast layer.
type LayerView struct {
	RID    string `json:"rid,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	Kbps   int64  `json:"kbps"`
}

// QualityView is a leg's network quality over the last second, with its
// packet counters since it joined.
type QualityView struct {
	Level       string  `json:"level"`
	RTTMs       float64 `json:"rtt_ms"`
	LossUpPct   float64 `json:"loss_up_pct"`
	LossDownPct float64 `json:"loss_down_pct"`
	JitterMs    float64 `json:"jitter_ms"`
	SendKbps    float64 `json:"send_kbps"`
	RecvKbps    float64 `json:"recv_kbps"`
	// Since the leg joined.
	PacketsReceived  uint64 `json:"packets_received"`
	PacketsForwarded uint64 `json:"packets_forwarded"`
	NACKs            uint64 `json:"nacks"`
	KeyframeRequests uint64 `json:"keyframe_requests"`
}

// ExportFormat names the archive's layout.
const ExportFormat = "tandem-export/1"

// Export is everything Tandem holds about one user.
type Export struct {
	Format     string    `json:"format"`
	ExportedAt time.Time `json:"exported_at"`
	User       string    `json:"user"`
	// Known says whether the user ever signed in (what lets others call
	// them).
	Known bool `json:"known"`
	// Devices are the user's devices signed in now. Tandem keeps no
	// device list beyond the sessions open at the moment.
	Devices   []DeviceInfo        `json:"devices"`
	Calls     []store.CallEntry   `json:"calls"`
	AssistLog []store.AssistEntry `json:"assist_log"`
	// Account is what Tandem's own accounts keep of them; absent for
	// someone who signs in with tokens from elsewhere.
	Account *AccountExport `json:"account,omitempty"`
}

// AccountExport is a person's account: who they are, the devices they
// signed in on, their passkeys (the public part: the private key never
// leaves their device) and their contacts.
type AccountExport struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"`
	Created  time.Time       `json:"created"`
	Devices  []DeviceView    `json:"devices"`
	Passkeys []PasskeyView   `json:"passkeys"`
	Contacts []ContactExport `json:"contacts"`
}

// PasskeyView is one of a person's passkeys.
type PasskeyView struct {
	ID       string    `json:"id"` // the credential id, base64url
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

// ContactExport is one of a person's contacts.
type ContactExport struct {
	User  string    `json:"user"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// DeviceInfo is one signed-in device of a user.
type DeviceInfo struct {
	Device    string    `json:"device"`
	Session   string    `json:"session"`
	Grants    []string  `json:"grants"`
	ExpiresAt time.Time `json:"token_expires_at"`
	// TokenID is the id (jti) of the token the session opened with, by
	// which that token can be revoked; empty if it has none.
	TokenID string `json:"token_id,omitempty"`
	// Call is the call or room this device is a leg of, if any.
	Call string `json:"call,omitempty"`
	// Node is where the device is connected, on a deployment of several.
	Node string `json:"node,omitempty"`
}

// RevokeAnswer is what the admin API answers to a revocation.
type RevokeAnswer struct {
	User    string `json:"user,omitempty"`
	Device  string `json:"device,omitempty"`
	TokenID string `json:"token_id,omitempty"`
	// IssuedBefore: tokens of the user or device issued up to then are
	// refused.
	IssuedBefore *time.Time `json:"issued_before,omitempty"`
	// Until: the token id is refused until then, when every token with it
	// has expired.
	Until *time.Time `json:"until,omitempty"`
}

// InviteRequest asks for an invite link (POST /api/v1/admin/invites).
type InviteRequest struct {
	For      string `json:"for,omitempty"`       // who it is meant for, shown to them
	Uses     int    `json:"uses,omitempty"`      // accounts it may make; default 1
	TTLHours int    `json:"ttl_hours,omitempty"` // how long it holds; default accounts.invite_ttl
	Owner    bool   `json:"owner,omitempty"`     // the account it makes is an owner's
}

// InviteAnswer is an invite link made.
type InviteAnswer struct {
	Link      string    `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
	Uses      int       `json:"uses"`
	For       string    `json:"for,omitempty"`
	Role      string    `json:"role,omitempty"`
}

// PersonView is a person with an account, and their devices
// (GET /api/v1/admin/people).
type PersonView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Role      string       `json:"role"`
	Disabled  bool         `json:"disabled,omitempty"`
	CanInvite bool         `json:"can_invite,omitempty"`
	Created   time.Time    `json:"created"`
	Devices   []DeviceView `json:"devices"`
}

// DeviceView is a device a person signed in on.
type DeviceView struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

// PersonChange changes what is given (PATCH /api/v1/admin/people/{user}):
// disabling signs every device of theirs out at once.
type PersonChange struct {
	Disabled  *bool   `json:"disabled,omitempty"`
	Role      *string `json:"role,omitempty"`
	CanInvite *bool   `json:"can_invite,omitempty"`
}
