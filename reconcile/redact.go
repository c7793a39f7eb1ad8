package reconcile

import (
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Redacted is what a secret is replaced with.
const Redacted = "(sensitive value)"

// Redactor is the one place that keeps the configuration's secrets out of
// what hyperagent emits: plans, results, events, errors, and (through
// Writer) logs and the views' output. Messages are built without secrets
// in the first place; this is the net under that rule.
//
// A secret is replaced only where it stands as itself: not where it is
// part of a longer word, so that with the password "example" the host
// "vcenter.example.com" is printed as it is, neither corrupted nor hinting
// at the password. Letters, digits and '_' make up words, and '.' or '-'
// between two of them join them into one ("web-01", "a.b.com"); anything
// else ends a word. The secrets can be replaced while in use (the agent
// reloads its configuration).
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so "abc123" wins over "abc"
}

// NewRedactor returns a Redactor for secrets.
func NewRedactor(secrets []string) *Redactor {
	r := &Redactor{}
	r.SetSecrets(secrets)
	return r
}

// SetSecrets replaces the secrets.
func (r *Redactor) SetSecrets(secrets []string) {
	s := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		if sec != "" {
			s = append(s, sec)
		}
	}
	sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	r.mu.Lock()
	r.secrets = s
	r.mu.Unlock()
}

// String returns s with every secret that stands as itself replaced.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	secrets := r.secrets
	r.mu.RUnlock()
	for _, sec := range secrets {
		s = replaceStanding(s, sec)
	}
	return s
}

func replaceStanding(s, sec string) string {
	var b strings.Builder
	rest, done := s, 0
	for {
		i := strings.Index(rest, sec)
		if i < 0 {
			break
		}
		start, end := done+i, done+i+len(sec)
		if standsAlone(s, start, end) {
			b.WriteString(s[done:start])
			b.WriteString(Redacted)
		} else {
			b.WriteString(s[done:end])
		}
		done = end
		rest = s[done:]
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// standsAlone says s[start:end] is not part of a longer word.
func standsAlone(s string, start, end int) bool {
	if start > 0 {
		prev, n := utf8.DecodeLastRuneInString(s[:start])
		if isWord(prev) || (isJoiner(prev) && start-n > 0 && isWord(lastRune(s[:start-n]))) {
			if isWord(firstRune(s[start:end])) {
				return false
			}
		}
	}
	if end < len(s) {
		next, n := utf8.DecodeRuneInString(s[end:])
		if isWord(next) || (isJoiner(next) && end+n < len(s) && isWord(firstRune(s[end+n:]))) {
			if isWord(lastRune(s[start:end])) {
				return false
			}
		}
	}
	return true
}

func isWord(r rune) bool   { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
func isJoiner(r rune) bool { return r == '.' || r == '-' }

func firstRune(s string) rune { r, _ := utf8.DecodeRuneInString(s); return r }
func lastRune(s string) rune  { r, _ := utf8.DecodeLastRuneInString(s); return r }

// Error returns err with its message redacted; errors.Is and errors.As
// still see the original chain.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Plan redacts the display-only text of a plan (reasons, findings and
// conditions, which quote plugins), so that its rendering, its JSON and a saved plan
// file never carry a secret.
func (r *Redactor) Plan(p *Plan) {
	if p == nil {
		return
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		c.Reason = r.String(c.Reason)
		for j := range c.Findings {
			c.Findings[j].Summary = r.String(c.Findings[j].Summary)
			c.Findings[j].Detail = r.String(c.Findings[j].Detail)
		}
		for j := range c.Steps {
			c.Steps[j].Detail = r.String(c.Steps[j].Detail)
		}
		if c.Condition != nil {
			c.Condition.Detail = r.String(c.Condition.Detail)
		}
	}
}

// Result redacts the errors and notes of an apply's result.
func (r *Redactor) Result(res *Result) {
	if res == nil {
		return
	}
	for _, fs := range [][]Failure{res.Failed, res.Interrupted} {
		for i := range fs {
			fs[i].Error = r.String(fs[i].Error)
		}
	}
	for _, ss := range [][]Skip{res.Skipped, res.Elsewhere} {
		for i := range ss {
			ss[i].Reason = r.String(ss[i].Reason)
		}
	}
	for i := range res.Notes {
		res.Notes[i] = r.String(res.Notes[i])
	}
}

// Event returns ev with its detail and error redacted.
func (r *Redactor) Event(ev Event) Event {
	ev.Detail = r.String(ev.Detail)
	ev.Err = r.Error(ev.Err)
	return ev
}

// Writer returns a writer that redacts what is written to w. Each Write
// is redacted on its own: writers of whole lines or renderings (hclog,
// the views) never split a secret across writes.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &redactWriter{r: r, w: w} }

type redactWriter struct {
	r *Redactor
	w io.Writer
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	s := rw.r.String(string(p))
	if _, err := io.WriteString(rw.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// isRedacted reports whether err went through Error.
func isRedacted(err error) bool {
	var re *redactedError
	return errors.As(err, &re)
}
