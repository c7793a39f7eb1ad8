package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
	"github.com/hypersdk/hyperagent/schema"
)

// FormatVersion is the version of the event document
// (docs/schema/event.json), as every machine-readable document's.
const FormatVersion = jsondoc.FormatVersion

// Event is what a webhook is sent (format "json"): one transition of one
// migration. It carries no secret: its text comes from redacted state and
// plans.
type Event struct {
	FormatVersion string `json:"format_version"`
	// ID is the same for every delivery of one transition, also when it
	// is queued again after a crash or by another agent of the campaign:
	// receivers drop an id they have seen.
	ID string `json:"id"`
	// Type is schema.NotifyMigrated, NotifyFailed, NotifyStalled or
	// NotifyDrift.
	Type string `json:"type"`
	// Campaign is the state's lineage.
	Campaign string             `json:"campaign"`
	Address  string             `json:"address"`
	Phase    reconcile.Phase    `json:"phase"`
	Step     reconcile.StepKind `json:"step,omitempty"`
	JobID    string             `json:"job_id,omitempty"`
	Domain   string             `json:"domain,omitempty"`
	// Error is a failure's message.
	Error string `json:"error,omitempty"`
	// Detail says what stalled or drifted.
	Detail string `json:"detail,omitempty"`
	// OccurredAt is when the transition happened, as state recorded it,
	// or when the plan observed it.
	OccurredAt time.Time `json:"occurred_at"`
	// QueuedAt is when the agent put it in the outbox.
	QueuedAt time.Time `json:"queued_at"`
}

// idSpace is the namespace of event ids (UUID version 5).
var idSpace = uuid.MustParse("4c1d3f0e-6a7b-4b8e-9f21-7d2a5e0c9b13")

// eventID names one transition: its campaign, migration, type, and what
// makes it unique among that migration's transitions of that type.
func eventID(campaign, addr, typ, unique string) string {
	return uuid.NewSHA1(idSpace, []byte(campaign+"\x00"+addr+"\x00"+typ+"\x00"+unique)).String()
}

// Body renders the event in a webhook's format.
func (e *Event) Body(format string) ([]byte, error) {
	var v any = e
	if format == schema.WebhookFormatSlack {
		v = struct {
			Text string `json:"text"`
		}{slackEscape(e.Text())}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	return b, nil
}

// Text says what happened in one line, for chat.
func (e *Event) Text() string {
	var b strings.Builder
	b.WriteString("hyperagent: " + e.Address + " ")
	switch e.Type {
	case schema.NotifyMigrated:
		b.WriteString("migrated")
		if e.Domain != "" {
			fmt.Fprintf(&b, ": domain %q defined", e.Domain)
		}
	case schema.NotifyFailed:
		b.WriteString("failed")
		if e.Step != "" {
			b.WriteString(" at " + string(e.Step))
		}
		if e.Error != "" {
			b.WriteString(": " + e.Error)
		}
	case schema.NotifyStalled:
		fmt.Fprintf(&b, "stalled: job %s shows no progress", e.JobID)
		if e.Detail != "" {
			b.WriteString(" (" + e.Detail + ")")
		}
	case schema.NotifyDrift:
		b.WriteString("drifted")
		if e.Detail != "" {
			b.WriteString(": " + e.Detail)
		}
	default:
		b.WriteString(e.Type)
	}
	return b.String()
}

// slackEscape escapes what Slack-style message text treats as markup
// (&, <, >), so that an address or an error is shown as it is.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
