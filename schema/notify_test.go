package schema

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNotifyBlocks(t *testing.T) {
	const hookURL = "https://hooks.example.com/services/T000/B000/XXXXsecretpath"
	tests := map[string]struct {
		hcl  string
		vars []string
		want []*Webhook
		// secrets must all be among Config.Secrets()
		secrets []string
		// diag is a diagnostic's text (file:line,column: summary; detail)
		// containing this, instead
		diag string
		// hidden must appear in no diagnostic
		hidden string
	}{
		"none": {},
		"defaults": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"http://127.0.0.1:9000/hook\"\n}\n",
			want: []*Webhook{{Name: "ops", URL: "http://127.0.0.1:9000/hook", Events: NotifyEvents, Format: WebhookFormatJSON}},
		},
		"all set, from sensitive variables": {
			hcl: `variable "hook_secret" {
  sensitive = true
}
variable "slack_url" {
  sensitive = true
}
notify "webhook" "chat" {
  url    = var.slack_url
  events = ["failed", "migrated", "failed"]
  secret = var.hook_secret
  format = "slack"
}
notify "webhook" "audit" {
  url = "https://audit.example.com/in"
  events = ["drift", "stalled"]
}
`,
			vars: []string{"hook_secret=k3y-0f-the-h00k", "slack_url=" + hookURL},
			want: []*Webhook{
				{Name: "audit", URL: "https://audit.example.com/in", Events: []string{NotifyStalled, NotifyDrift}, Format: WebhookFormatJSON},
				{Name: "chat", URL: hookURL, URLSensitive: true, Events: []string{NotifyMigrated, NotifyFailed}, Secret: "k3y-0f-the-h00k", Format: WebhookFormatSlack},
			},
			secrets: []string{"k3y-0f-the-h00k", hookURL},
		},
		"a literal secret is still secret": {
			hcl:     "notify \"webhook\" \"ops\" {\n  url = \"https://x.example/h\"\n  secret = \"literal-s3cret\"\n}\n",
			want:    []*Webhook{{Name: "ops", URL: "https://x.example/h", Events: NotifyEvents, Secret: "literal-s3cret", Format: WebhookFormatJSON}},
			secrets: []string{"literal-s3cret"},
		},
		"unknown event, at its element": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url    = \"https://x.example/h\"\n  events = [\"migrated\",\n    \"finished\"]\n}\n",
			diag: `notify.hcl:4,5-15: Unknown notification event; "finished" is not a notification event. The events are migrated, failed, stalled, drift.`,
		},
		"no events": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url    = \"https://x.example/h\"\n  events = []\n}\n",
			diag: "notify.hcl:3,12-14: No notification events",
		},
		"events not a list": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url    = \"https://x.example/h\"\n  events = \"failed\"\n}\n",
			diag: "notify.hcl:3,12-20: Incorrect attribute value type",
		},
		"url without scheme": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"hooks.example.com/x\"\n}\n",
			diag: `notify.hcl:2,9-30: Invalid webhook URL; url "hooks.example.com/x" must be an http:// or https:// URL.`,
		},
		"url of another scheme": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"ftp://hooks.example.com/x\"\n}\n",
			diag: "must be an http:// or https:// URL",
		},
		"url without host": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"https:///x\"\n}\n",
			diag: "names no host",
		},
		"a sensitive url is never quoted": {
			hcl:    "variable \"u\" {\n  sensitive = true\n}\nnotify \"webhook\" \"ops\" {\n  url = var.u\n}\n",
			vars:   []string{"u=gopher://very-secret-host/x"},
			diag:   "url (a sensitive value) must be an http:// or https:// URL",
			hidden: "very-secret-host",
		},
		"a password in a plain url": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"https://bot:pw123@hooks.example.com/x\"\n}\n",
			diag: "Password in a webhook URL",
		},
		"url missing": {
			hcl:  "notify \"webhook\" \"ops\" {\n}\n",
			diag: `notify.hcl:1,24-24: Missing required argument; The argument "url" is required`,
		},
		"unknown format": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url    = \"https://x.example/h\"\n  format = \"teams-card\"\n}\n",
			diag: `notify.hcl:3,12-24: Unknown webhook format; format must be "json" or "slack", not "teams-card".`,
		},
		"empty secret": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url    = \"https://x.example/h\"\n  secret = \"\"\n}\n",
			diag: "Empty webhook secret",
		},
		"sensitive format": {
			hcl:  "variable \"f\" {\n  sensitive = true\n  default = \"json\"\n}\nnotify \"webhook\" \"ops\" {\n  url = \"https://x.example/h\"\n  format = var.f\n}\n",
			diag: "format is set from a sensitive value",
		},
		"unknown argument": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"https://x.example/h\"\n  uri = \"x\"\n}\n",
			diag: "notify.hcl:3,3-6: Unsupported argument",
		},
		"unknown type": {
			hcl:  "notify \"email\" \"ops\" {\n  url = \"https://x.example/h\"\n}\n",
			diag: `notify.hcl:1,8-15: Unknown notify type; There is no notify type "email". Known notify types: webhook.`,
		},
		"bad name": {
			hcl:  "notify \"webhook\" \"1ops\" {\n  url = \"https://x.example/h\"\n}\n",
			diag: "Invalid notify name",
		},
		"duplicate": {
			hcl:  "notify \"webhook\" \"ops\" {\n  url = \"https://x.example/h\"\n}\nnotify \"webhook\" \"ops\" {\n  url = \"https://y.example/h\"\n}\n",
			diag: "notify.hcl:4,1-23: Duplicate notify declaration",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": "# nothing but notify blocks\n", "notify.hcl": tc.hcl})
			cfg, _, diags := Load(LoadOptions{Dir: dir, Vars: tc.vars, Plugins: testPlugins})
			text := strings.ReplaceAll(diagText(diags), dir+"/", "")
			if tc.hidden != "" && strings.Contains(text, tc.hidden) {
				t.Errorf("a diagnostic shows the sensitive value: %s", text)
			}
			if tc.diag != "" {
				if !strings.Contains(text, tc.diag) {
					t.Fatalf("diagnostics:\n%s\nwant one containing %q", text, tc.diag)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(text)
			}
			if diff := cmp.Diff(tc.want, cfg.Notify, cmpopts.IgnoreFields(Webhook{}, "DeclRange"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("webhooks (-want +got):\n%s", diff)
			}
			for _, s := range tc.secrets {
				if !slices.Contains(cfg.Secrets(), s) {
					t.Errorf("Secrets() lacks %q", s)
				}
			}
		})
	}
}

// TestNotifyLeavesDigestAlone: adding or changing a webhook leaves the
// configuration's digest as it was, so a saved plan stays valid.
func TestNotifyLeavesDigestAlone(t *testing.T) {
	load := func(extra string) *Config {
		dir := writeRepo(t, map[string]string{"main.hcl": basePlugins + extra})
		return mustLoad(t, LoadOptions{Dir: dir})
	}
	plain := load("")
	with := load("notify \"webhook\" \"ops\" {\n  url = \"https://x.example/h\"\n  secret = \"s3cret-value\"\n}\n")
	if plain.Digest != with.Digest {
		t.Errorf("digest %s with a webhook, %s without", with.Digest, plain.Digest)
	}
}

// TestNotifyValidateWithoutValues: validate, which sets no variables,
// accepts a webhook whose url and secret come from unset variables.
func TestNotifyValidateWithoutValues(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": `variable "u" {
  sensitive = true
}
variable "s" {
  sensitive = true
}
notify "webhook" "ops" {
  url    = var.u
  secret = var.s
}
`})
	_, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins, UnsetUnknown: true})
	if diags.HasErrors() {
		t.Fatal(diagText(diags))
	}
}
