package schema

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// State backends a repo may choose.
const (
	BackendLocal = "local"
	BackendPG    = "pg"
)

// PGConnStrEnv supplies the pg backend's connection string when the
// state block sets none.
const PGConnStrEnv = "HYPERAGENT_PG_CONN_STR"

// StateConfig is the optional `state {}` block: where the campaign's
// state lives. Without one it is the local directory agent.state_dir.
type StateConfig struct {
	Backend string // BackendLocal (default) or BackendPG
	// ConnStr is the pg backend's connection string: conn_str, else
	// PGConnStrEnv. It is a secret (Config.Secrets returns it and its
	// password): never shown, never in a plan or the state.
	ConnStr string
	// Workspace names the campaign in the database (pg); empty means
	// the backend's default.
	Workspace string
	DeclRange hcl.Range
}

var stateSchema = BlockSchema{
	Attributes: []AttributeSchema{
		{Name: "backend", Type: cty.String, Default: cty.StringVal(BackendLocal), Description: `"local" (agent.state_dir) or "pg" (PostgreSQL)`},
		{Name: "conn_str", Type: cty.String, Sensitive: true, Description: "pg: the connection string (default: " + PGConnStrEnv + ")"},
		{Name: "workspace", Type: cty.String, Description: "pg: the campaign's name in the database (default: \"default\")"},
	},
}

var workspaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// loadState decodes the optional `state {}` block.
func (l *loader) loadState(blocks hcl.Blocks) hcl.Diagnostics {
	s := &l.cfg.State
	s.Backend = BackendLocal
	if len(blocks) == 0 {
		return nil
	}
	diags := duplicateBlocks("state", blocks)
	s.DeclRange = blocks[0].DefRange
	d := l.newDecoder(l.evalContext())
	v, ds := d.decode(blocks[0].Body, stateSchema, "")
	diags = append(diags, ds...)
	v, paths := sensitivePaths(v)
	for _, p := range sortPaths(paths) {
		if name := pathString(p); name != "conn_str" {
			diags = append(diags, d.invalid(name, "Sensitive value not allowed here",
				fmt.Sprintf("%s is set from a sensitive value, but it is shown in messages. Only conn_str may be sensitive. %s", name, sensitiveSources)))
		}
	}
	if diags.HasErrors() {
		return diags
	}
	for _, e := range expressionsAt(blocks[0].Body, "conn_str") {
		l.noteSecretExpr(e)
	}
	get := func(name string) (string, bool) {
		a := v.GetAttr(name)
		if !a.IsKnown() || a.IsNull() {
			return "", false
		}
		return a.AsString(), true
	}
	if b, ok := get("backend"); ok {
		s.Backend = b
	}
	conn, hasConn := get("conn_str")
	ws, hasWS := get("workspace")
	for _, name := range []string{"backend", "conn_str", "workspace"} {
		if v.GetAttr(name).IsKnown() || (name == "conn_str" && envValue(l.opts.Env, PGConnStrEnv) != "") {
			continue
		}
		alt := ""
		if name == "conn_str" {
			alt = "or set the connection string itself in " + PGConnStrEnv
		}
		l.unknownStateSetting(blocks[0].Body, "state", name, alt)
	}
	switch s.Backend {
	case BackendLocal:
		for name, set := range map[string]bool{"conn_str": hasConn, "workspace": hasWS} {
			if set {
				diags = append(diags, d.invalid(name, "Argument not used by this backend",
					fmt.Sprintf("%s is for the %q backend; the %q backend keeps the state in agent.state_dir.", name, BackendPG, BackendLocal)))
			}
		}
	case BackendPG:
		s.ConnStr = conn
		if !hasConn {
			s.ConnStr = envValue(l.opts.Env, PGConnStrEnv)
		}
		if hasWS && !workspaceName.MatchString(ws) {
			diags = append(diags, d.invalid("workspace", "Invalid workspace name",
				fmt.Sprintf("A workspace name is 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit; %q is not.", clip(ws))))
		}
		s.Workspace = ws
	default:
		diags = append(diags, d.invalid("backend", "Unknown state backend",
			fmt.Sprintf("backend must be %q or %q, not %q.", BackendLocal, BackendPG, clip(s.Backend))))
	}
	return diags
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// connStrSecrets is the connection string and the password in it, in
// either of libpq's forms (a URL, or key=value pairs): an error that
// quotes only the password is redacted too.
func connStrSecrets(s string) []string {
	if s == "" {
		return nil
	}
	out := []string{s}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if u, err := url.Parse(s); err == nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
			if pw := u.Query().Get("password"); pw != "" {
				out = append(out, pw)
			}
		}
		return out
	}
	if m := kvPassword.FindStringSubmatch(s); m != nil {
		pw := m[2]
		if m[1] != "" {
			pw = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[1])
		}
		out = append(out, pw)
	}
	return out
}

// kvPassword finds password=... in a key=value connection string: quoted
// (with \' and \\ escapes) or up to the next space.
var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))`)
