package main

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"

	"github.com/hypersdk/hyperagent/schema"
)

// problemView is where a command's diagnostics and errors go: stderr,
// with source snippets, for people; diagnostic lines on stdout with
// -json (jsonUI).
type problemView interface {
	diagnostics(files schema.Files, diags hcl.Diagnostics)
	// errorf reports an error that has no place in the configuration.
	errorf(format string, a ...any)
}

// humanProblems writes for people on stderr.
type humanProblems struct{ e *env }

func (h humanProblems) diagnostics(files schema.Files, diags hcl.Diagnostics) {
	writeDiagnostics(h.e, files, diags)
}

func (h humanProblems) errorf(format string, a ...any) {
	fmt.Fprintf(h.e.stderr, "Error: "+format+"\n", a...)
}

var (
	_ problemView = humanProblems{}
	_ problemView = (*jsonUI)(nil)
)

// jsonDiagnostic is one diagnostic in machine-readable output, shaped like
// Terraform's (docs/schema/common.json, diagnostic).
type jsonDiagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	// Address is the migration the diagnostic is about, when it is about
	// one (a finding, a failed step).
	Address string       `json:"address,omitempty"`
	Range   *jsonRange   `json:"range,omitempty"`
	Snippet *jsonSnippet `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int  `json:"line"`
	Column int  `json:"column"`
	Byte   *int `json:"byte,omitempty"` // absent when unknown
}

func newJSONPos(p hcl.Pos) jsonPos {
	out := jsonPos{Line: p.Line, Column: p.Column}
	if p.Byte >= 0 {
		b := p.Byte
		out.Byte = &b
	}
	return out
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
		if s := d.Subject; s != nil && s.Start.Line > 0 {
			end := s.End
			if end.Line == 0 { // a point, e.g. a plugin's place with no extent
				end = s.Start
			}
			jd.Range = &jsonRange{Filename: s.Filename, Start: newJSONPos(s.Start), End: newJSONPos(end)}
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
