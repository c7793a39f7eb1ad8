package main

import "flag"

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
