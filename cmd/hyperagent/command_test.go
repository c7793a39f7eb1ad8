package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEveryCommandDescribesItself: every command, hidden ones included,
// calls parseFlags first with help that names it, so that help, man pages
// and completion can describe it without running it, and takes -no-color.
func TestEveryCommandDescribesItself(t *testing.T) {
	for name, cmd := range allCommands() {
		t.Run(name, func(t *testing.T) {
			u, err := describe(context.Background(), name, cmd)
			if err != nil {
				t.Fatal(err)
			}
			if want := "Usage: hyperagent " + name; !strings.HasPrefix(u.text, want) {
				t.Errorf("help starts %q, want %q", firstLine(u.text), want)
			}
			if u.flags.Lookup("no-color") == nil {
				t.Error("no -no-color")
			}
			if cmd.synopsis == "" {
				t.Error("no synopsis")
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestGlobalOptions(t *testing.T) {
	for _, tt := range []struct {
		args, rest []string
		want       globals
		err        string
	}{
		{args: []string{"plan"}, rest: []string{"plan"}},
		{args: []string{"-chdir=x", "plan", "-no-color"}, rest: []string{"plan", "-no-color"}, want: globals{chdir: "x"}},
		{args: []string{"--chdir", "x", "-no-color", "plan"}, rest: []string{"plan"}, want: globals{chdir: "x", noColor: true}},
		{args: []string{"--no-color", "-version"}, rest: []string{"-version"}, want: globals{noColor: true}},
		{args: []string{"-install-autocomplete"}, rest: []string{"-install-autocomplete"}},
		{args: []string{"-chdir"}, err: "-chdir needs a directory"},
		{args: []string{"-no-color=false", "plan"}, err: "-no-color takes no value"},
	} {
		g, rest, err := globalOptions(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || g != tt.want || !cmp.Equal(rest, tt.rest) {
			t.Errorf("%q: got %+v %q %v, want %+v %q", tt.args, g, rest, err, tt.want, tt.rest)
		}
	}
}

// TestManPagesRender renders every page with groff, warnings on, and
// fails on any warning; man(1) shows the options of plan's page as help
// does.
func TestManPagesRender(t *testing.T) {
	for _, tool := range []string{"groff", "man"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Debian's groff-base and man-db (.ci/setup does): %v", tool, err)
		}
	}
	pages, err := manPages(context.Background(), commands())
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(commands())+1 {
		t.Errorf("%d pages for %d commands", len(pages), len(commands()))
	}
	dir := t.TempDir()
	for name, page := range pages {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", name, err, out)
		}
	}
	cmd := exec.Command("man", "-l", filepath.Join(dir, "hyperagent-plan.1"))
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("man: %v\n%s", err, out)
	}
	for _, want := range []string{"hyperagent-plan - Show the steps left", "SYNOPSIS", "hyperagent plan [options] [DIR]",
		"OPTIONS", "-out FILE", "-target ADDR", "-lock-timeout duration"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("man -l hyperagent-plan.1 lacks %q:\n%s", want, out)
		}
	}
}
