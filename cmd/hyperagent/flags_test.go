package main

import (
	"bytes"
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseInterspersed: flags are taken before and after positional
// arguments; "--" ends them.
func TestParseInterspersed(t *testing.T) {
	tests := map[string]struct {
		args     []string
		pos      []string
		auto     bool
		vars     []string
		wantCode int
		done     bool
	}{
		"flags first":         {args: []string{"-auto-approve", "p.bin"}, pos: []string{"p.bin"}, auto: true},
		"flags after":         {args: []string{"p.bin", "-auto-approve", "-var", "a=1"}, pos: []string{"p.bin"}, auto: true, vars: []string{"a=1"}},
		"flags around":        {args: []string{"-var=a=1", "p.bin", "-var", "b=2", "q"}, pos: []string{"p.bin", "q"}, vars: []string{"a=1", "b=2"}},
		"double dash":         {args: []string{"p.bin", "--", "-auto-approve"}, pos: []string{"p.bin", "-auto-approve"}},
		"unknown flag after":  {args: []string{"p.bin", "-bogus"}, wantCode: exitError, done: true},
		"help after":          {args: []string{"p.bin", "-h"}, wantCode: exitOK, done: true},
		"no arguments at all": {},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("apply", flag.ContinueOnError)
			auto := fs.Bool("auto-approve", false, "")
			var cf configFlags
			cf.register(fs)
			var stderr bytes.Buffer
			pos, code, done := parseInterspersed(fs, &env{stderr: &stderr}, "usage\n", tt.args)
			if done != tt.done || code != tt.wantCode {
				t.Fatalf("done %v code %d, want %v %d (stderr %q)", done, code, tt.done, tt.wantCode, stderr.String())
			}
			if done {
				return
			}
			if diff := cmp.Diff(tt.pos, pos); diff != "" {
				t.Errorf("positional (-want +got):\n%s", diff)
			}
			if *auto != tt.auto || !cmp.Equal(tt.vars, cf.vars) {
				t.Errorf("auto-approve %v vars %q, want %v %q", *auto, cf.vars, tt.auto, tt.vars)
			}
		})
	}
}
