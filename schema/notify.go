package schema

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The notification events a webhook may subscribe to (agent/notify sends
// them).
const (
	NotifyMigrated = "migrated" // a migration reached its end: its domain defined
	NotifyFailed   = "failed"   // a step failed, or the converter failed the job
	NotifyStalled  = "stalled"  // the converter's job shows no progress
	NotifyDrift    = "drift"    // an artifact state recorded diverged from it
)

// NotifyEvents lists every notification event, in the order documented.
var NotifyEvents = []string{NotifyMigrated, NotifyFailed, NotifyStalled, NotifyDrift}

// The bodies a webhook can be sent.
const (
	// WebhookFormatJSON is the versioned event itself.
	WebhookFormatJSON = "json"
	// WebhookFormatSlack is {"text": "…"}: one line saying what happened,
	// what Slack-style incoming webhooks take.
	WebhookFormatSlack = "slack"
)

// Webhook is one `notify "webhook" "NAME"` block: where the agent POSTs
// the events it subscribes to.
type Webhook struct {
	Name string
	// URL is http or https. It may be a secret (a chat tool's incoming
	// webhook URL is a credential): URLSensitive says it came from a
	// sensitive value, and Config.Secrets returns it then.
	URL          string
	URLSensitive bool
	// Events are among NotifyEvents, in that order, each once.
	Events []string
	// Secret, when set, keys the HMAC-SHA256 signature of each request.
	// It is always a secret, wherever it came from.
	Secret string
	Format string // WebhookFormatJSON (default) or WebhookFormatSlack
	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// Wants says whether the webhook subscribes to event.
func (w *Webhook) Wants(event string) bool { return slices.Contains(w.Events, event) }

// notifyTypes are the notify block types this build knows.
var notifyTypes = []string{"webhook"}

func notifyEventValues() []cty.Value {
	out := make([]cty.Value, len(NotifyEvents))
	for i, e := range NotifyEvents {
		out[i] = cty.StringVal(e)
	}
	return out
}

var webhookSchema = BlockSchema{
	Attributes: []AttributeSchema{
		{Name: "url", Type: cty.String, Required: true, Description: "http or https URL the events are POSTed to; may come from a sensitive variable"},
		{Name: "events", Type: cty.List(cty.String), Default: cty.ListVal(notifyEventValues()),
			Description: "the events sent: " + strings.Join(NotifyEvents, ", ") + " (default: all)"},
		{Name: "secret", Type: cty.String, Sensitive: true, Description: "key of the HMAC-SHA256 signature in X-Hyperagent-Signature (usually a sensitive variable)"},
		{Name: "format", Type: cty.String, Default: cty.StringVal(WebhookFormatJSON),
			Description: `"json" (the versioned event) or "slack" ({"text": …}, for Slack-style incoming webhooks)`},
	},
}

// loadNotify decodes the `notify "TYPE" "NAME"` blocks.
func (l *loader) loadNotify(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	declared := map[string]hcl.Range{}
	for _, b := range blocks {
		typ, name := b.Labels[0], b.Labels[1]
		if !slices.Contains(notifyTypes, typ) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown notify type",
				Detail:   fmt.Sprintf("There is no notify type %s. Known notify types: %s.", quote(typ), strings.Join(notifyTypes, ", ")),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		if ds := checkName("notify", name, b.LabelRanges[1]); ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		if prev, dup := declared[name]; dup {
			diags = append(diags, duplicate("notify", typ+"."+name, b.DefRange, prev))
			continue
		}
		declared[name] = b.DefRange
		w, ds := l.loadWebhook(b)
		diags = append(diags, ds...)
		if w != nil {
			l.cfg.Notify = append(l.cfg.Notify, w)
		}
	}
	sort.Slice(l.cfg.Notify, func(i, j int) bool { return l.cfg.Notify[i].Name < l.cfg.Notify[j].Name })
	return diags
}

func (l *loader) loadWebhook(b *hcl.Block) (*Webhook, hcl.Diagnostics) {
	d := l.newDecoder(l.evalContext())
	v, diags := d.decode(b.Body, webhookSchema, "")
	v, paths := sensitivePaths(v)
	w := &Webhook{Name: b.Labels[1], DeclRange: b.DefRange}
	for _, p := range sortPaths(paths) {
		switch name := pathString(p); name {
		case "secret":
		case "url":
			w.URLSensitive = true
		default:
			diags = append(diags, d.invalid(name, "Sensitive value not allowed here",
				fmt.Sprintf("%s is set from a sensitive value, but it is shown in messages. Only url and secret may be sensitive. %s", name, sensitiveSources)))
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	get := func(name string) (cty.Value, bool) {
		a := v.GetAttr(name)
		return a, a.IsWhollyKnown() && !a.IsNull()
	}
	if u, ok := get("url"); ok {
		w.URL = u.AsString()
		diags = append(diags, checkWebhookURL(d, w.URL, w.URLSensitive)...)
	}
	if s, ok := get("secret"); ok {
		w.Secret = s.AsString()
		if w.Secret == "" {
			diags = append(diags, d.invalid("secret", "Empty webhook secret",
				"secret is empty: a signature keyed by nothing proves nothing. Remove it to send unsigned requests, or give it a value."))
		}
	}
	if f, ok := get("format"); ok {
		w.Format = f.AsString()
		if w.Format != WebhookFormatJSON && w.Format != WebhookFormatSlack {
			diags = append(diags, d.invalid("format", "Unknown webhook format",
				fmt.Sprintf("format must be %q or %q, not %s.", WebhookFormatJSON, WebhookFormatSlack, quote(w.Format))))
		}
	}
	if ev, ok := get("events"); ok {
		events, ds := l.webhookEvents(d, b, ev)
		w.Events = events
		diags = append(diags, ds...)
	}
	return w, diags
}

// checkWebhookURL wants an absolute http or https URL with a host. A
// sensitive URL is never quoted; a password in one that is not
// sensitive is refused, since the URL is shown.
func checkWebhookURL(d *blockDecoder, raw string, sensitive bool) hcl.Diagnostics {
	shown := quote(raw)
	if sensitive {
		shown = "(a sensitive value)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		detail := fmt.Sprintf("url %s is not a URL.", shown)
		if !sensitive {
			detail = fmt.Sprintf("url %s is not a URL: %s.", shown, err)
		}
		return hcl.Diagnostics{d.invalid("url", "Invalid webhook URL", detail)}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return hcl.Diagnostics{d.invalid("url", "Invalid webhook URL",
			fmt.Sprintf("url %s must be an http:// or https:// URL.", shown))}
	case u.Host == "":
		return hcl.Diagnostics{d.invalid("url", "Invalid webhook URL",
			fmt.Sprintf("url %s names no host.", shown))}
	}
	if _, hasPW := u.User.Password(); hasPW && !sensitive {
		return hcl.Diagnostics{d.invalid("url", "Password in a webhook URL",
			"url holds a password, and it is shown in messages. Set url from a sensitive variable. "+sensitiveSources)}
	}
	return nil
}

// webhookEvents checks each event name (pointing at the list element
// when the list is written out) and returns them in NotifyEvents order.
func (l *loader) webhookEvents(d *blockDecoder, b *hcl.Block, v cty.Value) ([]string, hcl.Diagnostics) {
	var elems []hclsyntax.Expression
	if content, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "events"}}}); content != nil {
		if a := content.Attributes["events"]; a != nil {
			if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(tup.Exprs) == v.LengthInt() {
				elems = tup.Exprs
			}
		}
	}
	var diags hcl.Diagnostics
	want := map[string]bool{}
	for i, e := range v.AsValueSlice() {
		if e.IsNull() {
			continue
		}
		name := e.AsString()
		if slices.Contains(NotifyEvents, name) {
			want[name] = true
			continue
		}
		diag := d.invalid("events", "Unknown notification event",
			fmt.Sprintf("%s is not a notification event. The events are %s.", quote(name), strings.Join(NotifyEvents, ", ")))
		if i < len(elems) {
			diag.Subject = elems[i].Range().Ptr()
		}
		diags = append(diags, diag)
	}
	if len(want) == 0 && !diags.HasErrors() {
		diags = append(diags, d.invalid("events", "No notification events",
			"events is empty: the webhook would be sent nothing. List some of "+strings.Join(NotifyEvents, ", ")+", or remove events to send them all."))
	}
	var out []string
	for _, e := range NotifyEvents {
		if want[e] {
			out = append(out, e)
		}
	}
	return out, diags
}
