package main

import (
	"fmt"
	"strings"
)

// roff builds a man page with the man(7) macros.
type roff struct{ b strings.Builder }

func (r *roff) String() string { return r.b.String() }

// header is the page's .TH line: NAME in section 1 of the hyperagent
// manual, for this version. It carries no date, so that a build is
// reproducible.
func (r *roff) header(name string) {
	fmt.Fprintf(&r.b, ".TH \"%s\" 1 \"\" \"%s\" \"hyperagent manual\"\n",
		escape(strings.ToUpper(name)), escape("hyperagent "+strings.ReplaceAll(currentVersion(), `"`, "")))
}

func (r *roff) section(title string) { fmt.Fprintf(&r.b, ".SH %s\n", title) }

// raw writes s, which is roff already, as a line.
func (r *roff) raw(s string) { r.b.WriteString(s + "\n") }

// line writes plain text as one input line.
func (r *roff) line(text string) {
	r.b.WriteString(textLine(escape(strings.ReplaceAll(text, "\n", " "))) + "\n")
}

// paragraphs writes each paragraph of help text: filled when its lines
// share one indentation, else as written (an aligned list, say).
func (r *roff) paragraphs(ps []string) {
	for _, p := range ps {
		lines := strings.Split(p, "\n")
		r.raw(".PP")
		if sameIndent(lines) {
			words := make([]string, len(lines))
			for i, l := range lines {
				words[i] = strings.TrimSpace(l)
			}
			r.line(strings.Join(words, " "))
			continue
		}
		cut := minIndent(lines)
		r.raw(".nf")
		for _, l := range lines {
			r.raw(textLine(escape(l[cut:])))
		}
		r.raw(".fi")
	}
}

// escape makes text literal in roff: a backslash is \e, a minus sign \-
// (so that options read and paste as typed), and a character outside
// ASCII its \[uXXXX] escape (groff reads ASCII without preconv).
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7f:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// textLine keeps a line that starts with a control character ('.' or
// '\”) from being read as a request.
func textLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func sameIndent(lines []string) bool {
	for _, l := range lines[1:] {
		if indent(l) != indent(lines[0]) {
			return false
		}
	}
	return true
}

func minIndent(lines []string) int {
	m := indent(lines[0])
	for _, l := range lines[1:] {
		m = min(m, indent(l))
	}
	return m
}
