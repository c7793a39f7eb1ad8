package schema

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestVariablePrecedence(t *testing.T) {
	decls := `
variable "name" {
  type    = string
  default = "from-default"
}
variable "count" {
  type    = number
  default = 1
}
variable "list" {
  type    = list(string)
  default = []
}
variable "untyped" {
  default = "d"
}
`
	files := map[string]string{
		"main.hcl":        basePlugins + decls,
		"vars/a.hcl":      "name = \"from-file-a\"\ncount = 2\n",
		"vars/b.hcl.json": `{"name": "from-file-b", "list": ["x", "y"]}`,
	}
	tests := map[string]struct {
		env      []string
		varFiles []string
		vars     []string
		want     map[string]cty.Value
	}{
		"defaults": {
			want: map[string]cty.Value{"name": cty.StringVal("from-default"), "count": cty.NumberIntVal(1)},
		},
		"environment over default": {
			env:  []string{"HYPERAGENT_VAR_name=from-env", "HYPERAGENT_VAR_count=7", "HYPERAGENT_VAR_undeclared=ignored", "PATH=/bin"},
			want: map[string]cty.Value{"name": cty.StringVal("from-env"), "count": cty.NumberIntVal(7)},
		},
		"var file over environment, later file wins": {
			env:      []string{"HYPERAGENT_VAR_name=from-env"},
			varFiles: []string{"vars/a.hcl", "vars/b.hcl.json"},
			want: map[string]cty.Value{
				"name":  cty.StringVal("from-file-b"),
				"count": cty.NumberIntVal(2),
				"list":  cty.ListVal([]cty.Value{cty.StringVal("x"), cty.StringVal("y")}),
			},
		},
		"-var over everything, last wins": {
			env:      []string{"HYPERAGENT_VAR_name=from-env"},
			varFiles: []string{"vars/a.hcl"},
			vars:     []string{"name=first", "name=from-var", "count=3"},
			want:     map[string]cty.Value{"name": cty.StringVal("from-var"), "count": cty.NumberIntVal(3)},
		},
		"complex -var is an expression, primitive is raw text": {
			vars: []string{`list=["a", "b"]`, `name=["not", "parsed"]`, "untyped=1+1"},
			want: map[string]cty.Value{
				"list":    cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
				"name":    cty.StringVal(`["not", "parsed"]`),
				"untyped": cty.StringVal("1+1"),
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, files)
			var varFiles []string
			for _, f := range tt.varFiles {
				varFiles = append(varFiles, dir+"/"+f)
			}
			cfg := mustLoad(t, LoadOptions{Dir: dir, Env: tt.env, VarFiles: varFiles, Vars: tt.vars})
			for v, want := range tt.want {
				if got := cfg.Variables[v].Value; !got.RawEquals(want) {
					t.Errorf("var.%s = %#v, want %#v", v, got, want)
				}
			}
		})
	}
}

func TestVariableErrors(t *testing.T) {
	decls := `
variable "count" {
  type = number
}
variable "env" {
  type    = string
  default = "dev"
  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}
`
	tests := map[string]struct {
		vars     []string
		env      []string
		varFile  string
		wantDiag []string // summaries, in order
	}{
		"required missing":           {wantDiag: []string{"No value for required variable"}},
		"undeclared -var":            {vars: []string{"count=1", "nope=1"}, wantDiag: []string{"Value for undeclared variable"}},
		"malformed -var":             {vars: []string{"count=1", "count"}, wantDiag: []string{"Invalid -var option"}},
		"wrong type from -var":       {vars: []string{"count=many"}, wantDiag: []string{"Invalid value for input variable"}},
		"wrong type from env":        {env: []string{"HYPERAGENT_VAR_count=many"}, wantDiag: []string{"Invalid value for input variable"}},
		"undeclared in var file":     {vars: []string{"count=1"}, varFile: "other = 1\n", wantDiag: []string{"Value for undeclared variable"}},
		"validation fails":           {vars: []string{"count=1", "env=staging"}, wantDiag: []string{"Invalid value for variable"}},
		"all at once, in one report": {vars: []string{"env=staging", "nope=1"}, wantDiag: []string{"Value for undeclared variable", "No value for required variable", "Invalid value for variable"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"main.hcl": basePlugins + decls}
			var varFiles []string
			if tt.varFile != "" {
				files["vars/x.hcl"] = tt.varFile
			}
			dir := writeRepo(t, files)
			if tt.varFile != "" {
				varFiles = []string{dir + "/vars/x.hcl"}
			}
			cfg, _, diags := Load(LoadOptions{Dir: dir, Vars: tt.vars, Env: tt.env, VarFiles: varFiles, Plugins: testPlugins})
			if cfg != nil {
				t.Error("Config returned despite errors")
			}
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
			}
			if strings.Join(got, "|") != strings.Join(tt.wantDiag, "|") {
				t.Errorf("diagnostics = %q, want %q\n%s", got, tt.wantDiag, diagText(diags))
			}
		})
	}
}

func TestSensitivePathsFollowValues(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": `
variable "pw" {
  sensitive = true
}
variable "host" {
  default   = "vc.example.com"
}
locals {
  secret_url = "https://${var.pw}@vc/sdk"
}
source "vsphere" "dc1" {
  url      = local.secret_url
  username = var.host
  tags     = { owner = "infra", token = upper(var.pw) }
  datastore {
    name = "ds-${var.pw}"
  }
  datastore {
    name = "plain"
  }
}
`})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Env: []string{"HYPERAGENT_VAR_pw=hunter2"}})
	src := cfg.Sources["vsphere.dc1"]
	got := pathStrings(src.SensitivePaths)
	want := []string{`datastore[0].name`, `password`, `tags["token"]`, `url`} // tls is absent: no path inside it
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sensitive paths = %q, want %q", got, want)
	}
	if src.Config.ContainsMarked() {
		t.Error("Config must be unmarked")
	}
	secrets := cfg.Secrets()
	for _, s := range []string{"hunter2", "https://hunter2@vc/sdk", "HUNTER2", "ds-hunter2"} {
		found := false
		for _, x := range secrets {
			found = found || x == s
		}
		if !found {
			t.Errorf("Secrets() = %q misses %q", secrets, s)
		}
	}
}

// Migration settings end up in plans and state, which cannot redact:
// a sensitive value there is an error, and the message does not show it.
func TestSensitiveValueInMigrationSettings(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": basePlugins + `
variable "pw" {
  sensitive = true
}
migration "m" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${var.pw}"
  export { dir = "/exp" }
  domain { memory = var.pw }
}
`})
	_, _, diags := Load(LoadOptions{Dir: dir, Vars: []string{"pw=hunter2"}, Plugins: testPlugins})
	text := diagText(diags)
	if len(diags) != 2 || diags[0].Summary != "Sensitive value not allowed here" || diags[0].Subject == nil {
		t.Fatalf("diagnostics:\n%s", text)
	}
	if strings.Contains(text, "hunter2") {
		t.Errorf("a diagnostic shows the secret:\n%s", text)
	}
}
