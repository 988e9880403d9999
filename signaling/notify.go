package signaling

import "github.com/tandemcall/tandem/internal/webhook"

// Notifier takes the events the app backend hears of (webhook.Sender).
// Send must not block: it is called under the hub's lock, which keeps the
// events of a call in the order they happened.
type Notifier interface {
	Send(typ string, data any)
}

// SetNotifier makes the hub report call events to n (nil: to nobody).
func (h *Hub) SetNotifier(n Notifier) {
	h.mu.Lock()
	h.notifier = n
	h.mu.Unlock()
}

// Event payloads (docs/webhooks.md).
type (
	partyEvent struct {
		User   string `json:"user"`
		Device string `json:"device"`
	}
	callStartedEvent struct {
		CallID  string      `json:"call_id"`
		Caller  *partyEvent `json:"caller,omitempty"`
		Callees []string    `json:"callees,omitempty"`
		Video   bool        `json:"video,omitempty"`
		Room    string      `json:"room,omitempty"`
		Mode    string      `json:"mode,omitempty"`
	}
	callAnsweredEvent struct {
		CallID string     `json:"call_id"`
		By     partyEvent `json:"by"`
	}
	callEndedEvent struct {
		CallID     string `json:"call_id"`
		Reason     string `json:"reason"`
		DurationMS int64  `json:"duration_ms"`
		Answered   bool   `json:"answered"`
	}
	participantEvent struct {
		CallID string `json:"call_id"`
		User   string `json:"user"`
		Device string `json:"device"`
		Reason string `json:"reason,omitempty"`
	}
	assistEvent struct {
		CallID string   `json:"call_id"`
		Helper string   `json:"helper"`
		Helped string   `json:"helped"`
		Device string   `json:"device,omitempty"`
		Grants []string `json:"grants"`
		Reason string   `json:"reason,omitempty"`
	}
)

// notifyLocked sends an event; the caller holds h.mu.
func (h *Hub) notifyLocked(typ string, data any) {
	if h.notifier != nil {
		h.notifier.Send(typ, data)
	}
}

// notifyJoinedLocked reports that m's device joined c.
func (h *Hub) notifyJoinedLocked(c *call, m *member) {
	ev := participantEvent{CallID: c.ID, User: m.User}
	if m.Dev != nil {
		ev.Device = m.Dev.device
	}
	h.notifyLocked(webhook.ParticipantJoined, ev)
}

// notifyLeftLocked reports that m left c for reason.
func (h *Hub) notifyLeftLocked(c *call, m *member, reason string) {
	ev := participantEvent{CallID: c.ID, User: m.User, Reason: reason}
	if m.Dev != nil {
		ev.Device = m.Dev.device
	}
	h.notifyLocked(webhook.ParticipantLeft, ev)
}
