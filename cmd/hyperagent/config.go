package main

import (
	"flag"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"

	"github.com/hypersdk/hyperagent/schema"
)

// configFlags are the flags every command that reads the config accepts.
type configFlags struct {
	vars     []string // -var NAME=VALUE, repeatable
	varFiles []string // -var-file FILE, repeatable
	// saved holds the variable values of the saved plan apply runs.
	saved *schema.SavedVariables
}

// register adds -var and -var-file to fs.
func (cf *configFlags) register(fs *flag.FlagSet) {
	fs.Var(stringsFlag(&cf.vars), "var", "set a variable: -var '`NAME=VALUE`' (repeatable)")
	fs.Var(stringsFlag(&cf.varFiles), "var-file", "set variables from an .hcl or .json `FILE` (repeatable)")
}

// loadConfig loads the migration repo in dir with the builtin plugins'
// schemas and the given variables.
func loadConfig(e *env, dir string, cf configFlags) (*schema.Config, schema.Files, hcl.Diagnostics) {
	return schema.Load(cf.options(e, dir))
}

func (cf configFlags) options(e *env, dir string) schema.LoadOptions {
	return schema.LoadOptions{
		Dir:      dir,
		Vars:     cf.vars,
		VarFiles: cf.varFiles,
		Env:      e.environ,
		Plugins:  e.registry.Schemas(),
		Saved:    cf.saved,
	}
}

// writeDiagnostics prints diagnostics for people on stderr, with source
// snippets.
func writeDiagnostics(e *env, files schema.Files, diags hcl.Diagnostics) {
	wr := hcl.NewDiagnosticTextWriter(e.stderr, files, 78, e.colorStderr())
	_ = wr.WriteDiagnostics(diags)
}

// jsonDiagnostic is one diagnostic in machine-readable output, shaped like
// Terraform's (format_version 1.0).
type jsonDiagnostic struct {
	Severity string       `json:"severity"`
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail"`
	Range    *jsonRange   `json:"range,omitempty"`
	Snippet  *jsonSnippet `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// jsonSnippet is the source around the subject: the lines it spans
// (Code), where they start, and where in Code the subject is.
type jsonSnippet struct {
	Context              *string `json:"context"`
	Code                 string  `json:"code"`
	StartLine            int     `json:"start_line"`
	HighlightStartOffset int     `json:"highlight_start_offset"`
	HighlightEndOffset   int     `json:"highlight_end_offset"`
}

// jsonDiagnostics converts diagnostics for -json views. It always returns a
// non-nil slice, so the output has "diagnostics": [].
func jsonDiagnostics(files schema.Files, diags hcl.Diagnostics) []jsonDiagnostic {
	out := make([]jsonDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if s := d.Subject; s != nil {
			jd.Range = &jsonRange{
				Filename: s.Filename,
				Start:    jsonPos{s.Start.Line, s.Start.Column, s.Start.Byte},
				End:      jsonPos{s.End.Line, s.End.Column, s.End.Byte},
			}
			jd.Snippet = snippet(files[s.Filename], *s)
		}
		out = append(out, jd)
	}
	return out
}

// snippet cuts the whole lines the range covers out of the file.
func snippet(f *hcl.File, r hcl.Range) *jsonSnippet {
	if f == nil || r.Start.Byte < 0 || r.End.Byte > len(f.Bytes) || r.Start.Byte > r.End.Byte {
		return nil
	}
	src := f.Bytes
	start := r.Start.Byte
	for start > 0 && src[start-1] != '\n' {
		start--
	}
	end := r.End.Byte
	for end < len(src) && src[end] != '\n' {
		end++
	}
	s := &jsonSnippet{
		Code:                 string(src[start:end]),
		StartLine:            r.Start.Line,
		HighlightStartOffset: r.Start.Byte - start,
		HighlightEndOffset:   r.End.Byte - start,
	}
	if c := hcled.ContextString(f, r.Start.Byte); c != "" {
		s.Context = &c
	}
	return s
}
