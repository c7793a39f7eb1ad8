package schema

import (
	"strings"
	"testing"
)

// deep returns n nested brackets around 1: [[…[1]…]].
func deep(open, close string, n int) string {
	return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
}

// Source that nests deeper than maxNesting is refused with a diagnostic at
// the line where the limit is passed, before HCL parses it: 80,000 nested
// brackets crashed the process with a stack overflow. Each case puts the
// deep part on line 3.
func TestNestingLimit(t *testing.T) {
	tests := map[string]struct {
		file string // main.hcl, or main.hcl.json when it starts with {
		vars []string
	}{
		"80,000 brackets":   {file: "\nlocals {\n  a = " + deep("[", "]", 80000) + "\n}\n"},
		"parentheses":       {file: "\nlocals {\n  a = " + deep("(", ")", 5000) + "\n}\n"},
		"objects":           {file: "\nlocals {\n  a = " + strings.Repeat("{a=", 5000) + "1" + strings.Repeat("}", 5000) + "\n}\n"},
		"ternary chain":     {file: "\nlocals {\n  a = " + strings.Repeat("true ? 1 : ", 5000) + "0\n}\n"},
		"unary chain":       {file: "\nlocals {\n  a = " + strings.Repeat("!", 5000) + "true\n}\n"},
		"binary chain":      {file: "\nlocals {\n  a = 1" + strings.Repeat(" + 1", 5000) + "\n}\n"},
		"index chain":       {file: "\nlocals {\n  a = [1][0]" + strings.Repeat("[0 * 1]", 5000) + "\n}\n"},
		"nested templates":  {file: "\nlocals {\n  a = " + strings.Repeat(`"${`, 5000) + "1" + strings.Repeat(`}"`, 5000) + "\n}\n"},
		"template if":       {file: "\nlocals {\n  a = <<EOT\n" + strings.Repeat("%{if true}", 5000) + strings.Repeat("%{endif}", 5000) + "\nEOT\n}\n"},
		"JSON arrays":       {file: "{\"locals\": {\n\"b\": 1,\n\"a\": " + deep("[", "]", 80000) + "}}"},
		"JSON string":       {file: "{\"locals\": {\n\"b\": 1,\n\"a\": \"${" + deep("(", ")", 5000) + "}\"}}"},
		"JSON escaped":      {file: "{\"locals\": {\n\"b\": 1,\n\"a\": \"\\u0024{" + deep("(", ")", 5000) + "}\"}}"},
		"-var value":        {file: "variable \"x\" {\n  type = list(any)\n}\n", vars: []string{"x=" + deep("[", "]", 80000)}},
		"file in templates": {file: "\nlocals {\n  a = templatefile(\"deep.tmpl\", {})\n}\n"},
		"jsondecode":        {file: "\nlocals {\n  a = jsondecode(file(\"deep.json\"))\n}\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fname := "main.hcl"
			if strings.HasPrefix(tt.file, "{") {
				fname = "main.hcl.json"
			}
			dir := writeRepo(t, map[string]string{
				fname:       tt.file,
				"deep.tmpl": strings.Repeat("${", 5000) + "1" + strings.Repeat("}", 5000),
				"deep.json": deep("[", "]", 80000),
				"other.hcl": basePlugins,
			})
			_, diags := loadWithin(t, LoadOptions{Dir: dir, Vars: tt.vars})
			text := diagText(diags)
			if !strings.Contains(text, "more than 1000 levels deep") {
				t.Fatalf("no nesting error:\n%.2000s", text)
			}
			if len(text) > 20000 {
				t.Errorf("the diagnostics are %d bytes long", len(text))
			}
			d := diags[0]
			line := 3
			if name == "template if" {
				line = 4 // the heredoc's first line
			}
			if d.Summary == "Expression nested too deeply" && tt.vars == nil && (d.Subject == nil || d.Subject.Start.Line != line) {
				t.Errorf("subject %v, want line %d", d.Subject, line)
			}
		})
	}
}

// Real configurations nest a few levels; well below the limit nothing is
// refused.
func TestNestingBelowLimitLoads(t *testing.T) {
	src := basePlugins + `
locals {
  a = ` + deep("[", "]", 200) + `
  b = 1` + strings.Repeat(" + 1", 300) + `
  c = "${` + deep("(", ")", 100) + `}"
  d = [` + strings.Repeat(`"${local.b}-x", `, 1000) + `]
  e = <<EOT
` + strings.Repeat("%{if true}x${local.b}%{endif}\n", 1000) + `EOT
}
`
	cfg, diags := loadWithin(t, LoadOptions{Dir: writeRepo(t, map[string]string{"main.hcl": src})})
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("diagnostics:\n%.2000s", diagText(diags))
	}
	if _, diags := Format("main.hcl", []byte(src)); diags.HasErrors() {
		t.Fatalf("Format: %s", diagText(diags))
	}
}

// hyperagent fmt parses what it formats: the same limit applies.
func TestFormatNestingLimit(t *testing.T) {
	out, diags := Format("main.hcl", []byte("a = "+deep("[", "]", 80000)+"\n"))
	if out != nil || len(diags) != 1 || diags[0].Summary != "Expression nested too deeply" {
		t.Fatalf("Format = %d bytes, %s", len(out), diagText(diags))
	}
}
