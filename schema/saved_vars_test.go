package schema

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

// savedRepo declares a plain variable, a collection, a sensitive one, one
// not marked sensitive but set into a sensitive attribute, one not marked
// sensitive that reaches the state's connection string through a local,
// and a sensitive one left at its default.
const savedRepo = `
variable "url" {
  type = string
}
variable "vms" {
  type    = set(string)
  default = ["a"]
}
variable "pw" {
  type      = string
  sensitive = true
}
variable "other_pw" {
  type = string
}
variable "dbpw" {
  type = string
}
locals {
  conn = "postgres://migrator:${var.dbpw}@db.example.com/hyperagent"
}
state {
  backend  = "pg"
  conn_str = local.conn
}
variable "quiet" {
  type      = string
  sensitive = true
  default   = "d"
}
source "vsphere" "dc1" {
  url      = var.url
  password = var.pw
}
source "vsphere" "dc2" {
  url      = "https://vc2.example.com/sdk"
  password = var.other_pw
}
converter "hyper2kvm" "main" {
  workflow_dir = "/wf"
}
target "libvirt" "kvm1" {}
`

var savedVars = []string{"url=https://vc.example.com/sdk", `vms=["a","b"]`, "pw=pw-one-7", "other_pw=pw-two-8", "dbpw=pw-three-9"}

// TestCarriedVariables: a saved plan carries every value but the secret
// ones, and names the secret ones that were set; what it carries loads
// back into the same configuration (the same digest) once the secrets
// are given again.
func TestCarriedVariables(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": savedRepo})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Vars: savedVars})
	values, withheld := cfg.CarriedVariables()
	if diff := cmp.Diff([]string{"dbpw", "other_pw", "pw"}, withheld); diff != "" {
		t.Errorf("withheld (-want +got):\n%s", diff)
	}
	var names []string
	for name, raw := range values {
		names = append(names, name)
		if strings.Contains(string(raw), "pw-") {
			t.Errorf("%s carries a secret: %s", name, raw)
		}
	}
	if diff := cmp.Diff([]string{"url", "vms"}, sortedKeys(values)); diff != "" {
		t.Errorf("carried (-want +got):\n%s", diff)
	}
	if got, want := string(values["vms"]), `{"value":["a","b"],"type":["set","string"]}`; got != want {
		t.Errorf("vms = %s, want %s", got, want)
	}

	saved := &SavedVariables{From: "p.bin", Values: values, Withheld: withheld}
	again := mustLoad(t, LoadOptions{Dir: dir, Saved: saved, Env: []string{"HYPERAGENT_VAR_pw=pw-one-7", "HYPERAGENT_VAR_other_pw=pw-two-8", "HYPERAGENT_VAR_dbpw=pw-three-9"}})
	if again.Digest != cfg.Digest {
		t.Errorf("the digest moved: %s → %s", cfg.Digest, again.Digest)
	}
	if !again.Variables["vms"].Value.RawEquals(cty.SetVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})) {
		t.Errorf("vms = %#v", again.Variables["vms"].Value)
	}
}

// TestLoadSaved: how a saved plan's values meet the others.
func TestLoadSaved(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"main.hcl":   savedRepo,
		"same.vars":  "url = \"https://vc.example.com/sdk\"\n",
		"other.vars": "url = \"https://elsewhere.example.com/sdk\"\n",
	})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Vars: savedVars})
	values, withheld := cfg.CarriedVariables()
	secrets := []string{"HYPERAGENT_VAR_pw=pw-one-7", "HYPERAGENT_VAR_other_pw=pw-two-8", "HYPERAGENT_VAR_dbpw=pw-three-9"}
	tests := map[string]struct {
		opts LoadOptions
		errs []string // each must be in the diagnostics; none means it loads
	}{
		"secrets from the environment":      {opts: LoadOptions{Env: secrets}},
		"secrets from -var":                 {opts: LoadOptions{Vars: []string{"pw=pw-one-7", "other_pw=pw-two-8", "dbpw=pw-three-9"}}},
		"the environment does not override": {opts: LoadOptions{Env: append([]string{"HYPERAGENT_VAR_url=https://env.example.com/sdk"}, secrets...)}},
		"a -var-file with the same value":   {opts: LoadOptions{Env: secrets, VarFiles: []string{"same.vars"}}},
		"a -var with the same value":        {opts: LoadOptions{Env: secrets, Vars: []string{`vms=["b","a"]`}}},
		"secrets missing": {opts: LoadOptions{}, errs: []string{
			`No value for a secret variable; The saved plan p.bin was made with a value of variable "other_pw"`,
			`variable "pw" that is secret, so the plan does not carry it (secrets are never written). Give it again: -var 'pw=…', a -var-file, or HYPERAGENT_VAR_pw.`,
		}},
		"a -var-file with another value": {opts: LoadOptions{Env: secrets, VarFiles: []string{"other.vars"}}, errs: []string{
			`other.vars:1,7-42: Value conflicts with the saved plan; The saved plan p.bin was made with another value of variable "url"`,
		}},
		"a -var with another value": {opts: LoadOptions{Env: secrets, Vars: []string{`vms=["c"]`}}, errs: []string{
			`Value conflicts with the saved plan; The saved plan p.bin was made with another value of variable "vms"`,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := tt.opts
			o.Dir, o.Plugins = dir, testPlugins
			for i, f := range o.VarFiles {
				o.VarFiles[i] = filepath.Join(dir, f)
			}
			o.Saved = &SavedVariables{From: "p.bin", Values: values, Withheld: withheld}
			got, _, diags := Load(o)
			text := strings.ReplaceAll(diagText(diags), dir+"/", "")
			if len(tt.errs) == 0 {
				if diags.HasErrors() {
					t.Fatalf("unexpected diagnostics:\n%s", text)
				}
				if got.Digest != cfg.Digest {
					t.Errorf("the digest moved: the plan would be stale")
				}
				return
			}
			for _, want := range tt.errs {
				if !strings.Contains(text, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, text)
				}
			}
		})
	}
}

// TestStateLocationDiagnostics: loaded with unset variables unknown, a
// configuration says which variable the state's location needs, through
// locals too, and nothing when it needs none or the environment gives
// the connection string.
func TestStateLocationDiagnostics(t *testing.T) {
	const vars = "variable \"base\" {\n  type = string\n}\nvariable \"conn\" {\n  type = string\n  sensitive = true\n}\nvariable \"ws\" {\n  type = string\n}\n"
	tests := map[string]struct {
		hcl  string
		env  []string
		want []string
	}{
		"local backend, default directory": {hcl: ""},
		"state_dir through a local": {
			hcl:  "locals {\n  sd = \"${var.base}/state\"\n}\nagent {\n  state_dir = local.sd\n}\n",
			want: []string{`agent.state_dir decides where the state is, and it has no value: it uses variable "base", which is not set. Give it: -var 'base=…' (or a -var-file, or HYPERAGENT_VAR_base). No other variable is needed to read or edit the state.`},
		},
		"state_dir given": {
			hcl: "agent {\n  state_dir = var.base\n}\n",
			env: []string{"HYPERAGENT_VAR_base=/srv"},
		},
		"pg: conn_str and workspace": {
			hcl: "state {\n  backend = \"pg\"\n  conn_str = var.conn\n  workspace = \"${var.ws}-${var.base}\"\n}\nagent {\n  state_dir = var.base\n}\n",
			want: []string{
				`state.conn_str decides where the state is, and it has no value: it uses variable "conn", which is not set. Give it: -var 'conn=…' (or a -var-file, or HYPERAGENT_VAR_conn); or set the connection string itself in HYPERAGENT_PG_CONN_STR. No other variable is needed to read or edit the state.`,
				`state.workspace decides where the state is, and it has no value: it uses variables "base", "ws", which are not set. Give them: -var 'base=…' (or a -var-file, or HYPERAGENT_VAR_base); -var 'ws=…' (or a -var-file, or HYPERAGENT_VAR_ws). No other variable is needed to read or edit the state.`,
			},
		},
		"pg: the connection string from the environment": {
			hcl: "state {\n  backend = \"pg\"\n  conn_str = var.conn\n}\n",
			env: []string{"HYPERAGENT_PG_CONN_STR=postgres://h/db"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": basePlugins + vars + tt.hcl})
			cfg := mustLoad(t, LoadOptions{Dir: dir, Env: tt.env, UnsetUnknown: true})
			diags := cfg.StateLocationDiagnostics()
			if len(diags) != len(tt.want) {
				t.Fatalf("%d diagnostics, want %d:\n%s", len(diags), len(tt.want), diagText(diags))
			}
			for i, d := range diags {
				if d.Detail != tt.want[i] || d.Subject == nil {
					t.Errorf("diagnostic %d:\n got %s (at %v)\nwant %s", i, d.Detail, d.Subject, tt.want[i])
				}
			}
		})
	}
}
