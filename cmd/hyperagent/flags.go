package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// repeated is a flag that may be given many times: each use parses its
// value and appends it to the slice it fills.
type repeated[T any] struct {
	to    *[]T
	parse func(string) (T, error)
}

func (r repeated[T]) String() string {
	if r.to == nil { // flag's zero value, for PrintDefaults
		return ""
	}
	s := make([]string, len(*r.to))
	for i, v := range *r.to {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

func (r repeated[T]) Set(s string) error {
	v, err := r.parse(s)
	if err != nil {
		return err
	}
	*r.to = append(*r.to, v)
	return nil
}

// stringsFlag is a repeatable flag of strings.
func stringsFlag(to *[]string) flag.Value {
	return repeated[string]{to: to, parse: func(s string) (string, error) { return s, nil }}
}

// addrsFlag is a repeatable flag of migration addresses, each checked as
// it is given.
func addrsFlag(to *[]addrs.Migration) flag.Value {
	return repeated[addrs.Migration]{to: to, parse: addrs.ParseMigration}
}

// parseInterspersed parses args with fs, taking flags after positional
// arguments too (`apply p.bin -auto-approve`): Go's flag package stops
// at the first non-flag, so parsing resumes after each one. "--" ends
// the flags; everything after it is positional. done reports -h or an
// error, as parseFlags does.
func parseInterspersed(fs *flag.FlagSet, e *env, help string, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parseFlags(fs, e, help, args); done {
			return nil, code, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, false
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
