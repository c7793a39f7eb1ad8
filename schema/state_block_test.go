package schema

import (
	"slices"
	"strings"
	"testing"
)

func TestStateBlock(t *testing.T) {
	const url = "postgres://ha:s3cr3t-pw@db.example:5432/campaigns?sslmode=disable"
	tests := map[string]struct {
		hcl  string
		env  []string
		vars []string
		want StateConfig // Backend, ConnStr, Workspace
		// secrets must all be among Config.Secrets()
		secrets []string
		diag    string // a diagnostic containing this, instead
	}{
		"none": {want: StateConfig{Backend: BackendLocal}},
		"pg from a sensitive variable": {
			hcl:     "variable \"pg\" {\n  sensitive = true\n}\nstate {\n  backend = \"pg\"\n  conn_str = var.pg\n  workspace = \"wave-1\"\n}\n",
			vars:    []string{"pg=" + url},
			want:    StateConfig{Backend: BackendPG, ConnStr: url, Workspace: "wave-1"},
			secrets: []string{url, "s3cr3t-pw"},
		},
		"pg from a literal is still secret": {
			hcl:     "state {\n  backend = \"pg\"\n  conn_str = \"host=db user=ha password='it\\\\'s x' dbname=c\"\n}\n",
			want:    StateConfig{Backend: BackendPG, ConnStr: `host=db user=ha password='it\'s x' dbname=c`},
			secrets: []string{`host=db user=ha password='it\'s x' dbname=c`, "it's x"},
		},
		"pg from the environment": {
			hcl:     "state {\n  backend = \"pg\"\n}\n",
			env:     []string{"HOME=/root", PGConnStrEnv + "=host=/run/pg password=envpw"},
			want:    StateConfig{Backend: BackendPG, ConnStr: "host=/run/pg password=envpw"},
			secrets: []string{"host=/run/pg password=envpw", "envpw"},
		},
		"the block wins over the environment": {
			hcl:  "state {\n  backend = \"pg\"\n  conn_str = \"host=a\"\n}\n",
			env:  []string{PGConnStrEnv + "=host=b"},
			want: StateConfig{Backend: BackendPG, ConnStr: "host=a"},
		},
		"unknown backend":   {hcl: "state {\n  backend = \"s3\"\n}\n", diag: `backend must be "local" or "pg", not "s3"`},
		"conn_str on local": {hcl: "state {\n  conn_str = \"x\"\n}\n", diag: `conn_str is for the "pg" backend`},
		"bad workspace":     {hcl: "state {\n  backend = \"pg\"\n  workspace = \"a b\"\n}\n", diag: "Invalid workspace name"},
		"sensitive workspace": {
			hcl:  "variable \"w\" {\n  sensitive = true\n  default = \"x\"\n}\nstate {\n  backend = \"pg\"\n  workspace = var.w\n}\n",
			diag: "workspace is set from a sensitive value",
		},
		"two blocks": {hcl: "state {}\nstate {}\n", diag: "Duplicate state block"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": "# nothing but the state block\n", "state.hcl": tc.hcl})
			cfg, _, diags := Load(LoadOptions{Dir: dir, Env: tc.env, Vars: tc.vars, Plugins: testPlugins})
			if tc.diag != "" {
				if !strings.Contains(diagText(diags), tc.diag) {
					t.Fatalf("diagnostics %q, want one containing %q", diagText(diags), tc.diag)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diagText(diags))
			}
			got := cfg.State
			got.DeclRange = StateConfig{}.DeclRange
			if got != tc.want {
				t.Errorf("state = %+v, want %+v", got, tc.want)
			}
			for _, s := range tc.secrets {
				if !slices.Contains(cfg.Secrets(), s) {
					t.Errorf("Secrets() lacks %q", s)
				}
			}
		})
	}
}

func TestConnStrSecrets(t *testing.T) {
	tests := map[string][]string{
		"postgres://u:p%40ss@h/db":            {"postgres://u:p%40ss@h/db", "p@ss"},
		"postgresql://u@h/db?password=qpw":    {"postgresql://u@h/db?password=qpw", "qpw"},
		"host=h password=plain dbname=d":      {"host=h password=plain dbname=d", "plain"},
		`host=h password = 'a b\'c' dbname=d`: {`host=h password = 'a b\'c' dbname=d`, "a b'c"},
		"host=h dbname=d":                     {"host=h dbname=d"},
		"":                                    nil,
	}
	for in, want := range tests {
		if got := connStrSecrets(in); !slices.Equal(got, want) {
			t.Errorf("connStrSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}
