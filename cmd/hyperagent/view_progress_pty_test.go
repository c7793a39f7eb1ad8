package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// TestApplyOnATerminal runs apply (the real process, fake plugins whose
// exports report a 64 MiB disk over 2 s) on a pseudo-terminal: while the
// exports run, each migration's line shows its name, step and item, a
// bar, the percentage, rate and ETA; in the end the terminal shows the
// step lines and the summary, and no migration's line is left.
func TestApplyOnATerminal(t *testing.T) {
	dir := fakeRepo(t, 2000, twoMigrations)
	p := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("delay_ms = 2000"), []byte("delay_ms = 2000\n  progress_mib = 64"), 1)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "apply", "-auto-approve", dir)
	cmd.Env = append(os.Environ(), fakesEnv+"=1", "NO_COLOR=1", "HYPERAGENT_LOG=")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	// Linux answers EIO once the child has closed the terminal.
	if _, err := io.Copy(&out, tty); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "input/output error") {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	raw := strings.ReplaceAll(out.String(), "\r\n", "\n") // the terminal's line discipline
	line := regexp.MustCompile(`(?m)^migration\.web\["a"\] +export disk-0\.vmdk +\[[=>-]+\] +[0-9]+% [0-9.]+ [KMG]?i?B/s ETA [0-9ms]+$`)
	if !line.MatchString(raw) {
		t.Errorf("no line with the migration's name, step, item, bar, percentage, rate and ETA:\n%q", raw)
	}
	scr := screen(t, raw)
	last := strings.Join(scr, "\n")
	for _, want := range []string{`migration.web["a"]: export start`, `migration.web["b"]: define done`,
		`migration.web["a"]: export disk-0.vmdk 100% (64.0 MiB of 64.0 MiB) in 2s`, "Apply complete: 2 migrated"} {
		if !strings.Contains(last, want) {
			t.Errorf("the terminal lacks %q at the end:\n%s", want, last)
		}
	}
	for _, l := range scr {
		if strings.Contains(l, "ETA") || strings.Contains(l, "[=") {
			t.Errorf("a migration's line is left on the terminal: %q", l)
		}
	}
}
