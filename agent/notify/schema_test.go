package notify

import (
	"reflect"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// TestEventSchema: docs/schema/event.json declares every field of Event,
// and the bodies the json format sends, with and without the optional
// fields, are valid by it.
func TestEventSchema(t *testing.T) {
	if err := docs.FieldsMatch(reflect.TypeOf(Event{}), "event.json", "/properties"); err != nil {
		t.Error(err)
	}
	now := time.Date(2026, 12, 1, 16, 0, 0, 123, time.UTC)
	for _, ev := range []Event{
		{Type: schema.NotifyMigrated, Phase: reconcile.Phase("defined"), Domain: "web-a"},
		{Type: schema.NotifyFailed, Phase: reconcile.Phase("failed"), Step: reconcile.StepKind("export"), Error: "export failed"},
		{Type: schema.NotifyStalled, Phase: reconcile.Phase("converting"), Step: reconcile.StepKind("await"), JobID: "web__a-1", Detail: "no progress for 10m"},
	} {
		ev.FormatVersion, ev.Campaign, ev.Address = FormatVersion, "3b0f6a52-5a1e-4c0e-9d59-0c7f3a2b1e11", `migration.web["a"]`
		ev.ID = eventID(ev.Campaign, ev.Address, ev.Type, "1")
		ev.OccurredAt, ev.QueuedAt = now, now
		b, err := ev.Body(schema.WebhookFormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		if err := docs.Validate("event.json", b); err != nil {
			t.Errorf("%s: %v\n%s", ev.Type, err, b)
		}
	}
	if err := docs.Validate("event.json", []byte(`{"format_version":"1.0","id":"x","type":"done"}`)); err == nil {
		t.Error("the schema accepts an event with a bad id and type, and no campaign")
	}
}
