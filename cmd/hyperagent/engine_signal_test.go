package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
)

// cliChild is the hyperagent CLI (this test binary with the fakes) running
// in a child process, with its stdout and stderr read line by line.
type cliChild struct {
	cmd            *exec.Cmd
	stdout, stderr *lineReader
}

func startCLI(t *testing.T, args ...string) *cliChild {
	t.Helper()
	return startCLIEnv(t, []string{"HYPERAGENT_LOG="}, args...)
}

// startCLIEnv is startCLI with more environment (later entries win).
func startCLIEnv(t *testing.T, env []string, args ...string) *cliChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), fakesEnv+"=1", "NO_COLOR=1"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &cliChild{cmd: cmd, stdout: newLineReader(out), stderr: newLineReader(errp)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return c
}

// wait returns the child's exit code once both outputs are drained.
func (c *cliChild) wait(t *testing.T) int {
	t.Helper()
	c.stdout.drain()
	c.stderr.drain()
	err := c.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

func (c *cliChild) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// lineReader keeps everything read, and can wait for a line. One
// goroutine reads; String may be called from any.
type lineReader struct {
	sc   *bufio.Scanner
	mu   sync.Mutex
	all  bytes.Buffer
	done chan struct{} // closed when drain has read to the end
	once sync.Once
}

func (l *lineReader) keep(line string) {
	l.mu.Lock()
	l.all.WriteString(line + "\n")
	l.mu.Unlock()
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{sc: bufio.NewScanner(r), done: make(chan struct{})}
}

// until reads lines until n of them contain s; it fails when the stream
// ends first.
func (l *lineReader) until(t *testing.T, s string, n int) {
	t.Helper()
	for n > 0 && l.sc.Scan() {
		l.keep(l.sc.Text())
		if strings.Contains(l.sc.Text(), s) {
			n--
		}
	}
	if n > 0 {
		t.Fatalf("output ended before %q:\n%s", s, l.String())
	}
}

func (l *lineReader) drain() {
	for l.sc.Scan() {
		l.keep(l.sc.Text())
	}
	l.once.Do(func() { close(l.done) })
}

func (l *lineReader) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// slowExports is a repo whose exports run for a minute (cancellable) and
// take abortMS to give up when cancelled.
func slowExports(t *testing.T, abortMS int) string {
	dir := fakeRepo(t, 60_000, twoMigrations)
	p := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("delay_ms = 60000"), []byte("delay_ms = 60000\n  abort_ms = "+strconv.Itoa(abortMS)), 1)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestApplySIGINT: the first interrupt starts no new step, cancels the
// exports in flight, records state, releases the lock and exits 130. The
// re-run then completes.
func TestApplySIGINT(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := slowExports(t, 0)
			sd := filepath.Join(dir, ".hyperagent")
			c := startCLI(t, "apply", "-auto-approve", dir)
			c.stdout.until(t, ": export start", 2)
			waitExportsRecorded(t, sd, 2)
			c.signal(t, sig)
			if code := c.wait(t); code != exitInterrupted {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, c.stdout, c.stderr)
			}
			for _, s := range []string{"Apply interrupted: 0 migrated", "Interrupted (state is recorded", `migration.web["a"] (step export)`} {
				if !strings.Contains(c.stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, c.stdout)
				}
			}
			if strings.Contains(c.stdout.String(), "submit start") {
				t.Errorf("a step started after the interrupt:\n%s", c.stdout)
			}
			assertInterruptedState(t, sd, true)
			// The next apply completes what was interrupted.
			runCLI(t, t.Context(), "", false, "apply", "-auto-approve", fakeRepoFast(t, dir)).want(t, exitOK, "Apply complete: 2 migrated")
		})
	}
}

// TestApplySIGINTNotStarted: with -parallelism=1 the second migration
// waits for a slot; the interrupt leaves it not started, and the summary
// says so.
func TestApplySIGINTNotStarted(t *testing.T) {
	dir := slowExports(t, 0)
	sd := filepath.Join(dir, ".hyperagent")
	c := startCLI(t, "apply", "-auto-approve", "-parallelism=1", dir)
	c.stdout.until(t, ": export start", 1)
	waitExportsRecorded(t, sd, 1)
	c.signal(t, syscall.SIGINT)
	if code := c.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, c.stdout, c.stderr)
	}
	out := c.stdout.String()
	first, second := `migration.web["a"]`, `migration.web["b"]`
	if strings.Contains(out, second+": export start") {
		first, second = second, first
	}
	for _, s := range []string{"Apply interrupted: 0 migrated, 0 removed, 0 failed, 1 interrupted, 0 skipped, 1 not started.",
		first + " (step export)", "Not started:\n  " + second} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
}

// TestApplySecondSIGINT: while the cancelled exports are still giving up
// (their abort takes a minute), a second interrupt exits at once, without
// the summary; the state it leaves loads, the kernel dropped the lock, and
// the next apply completes.
func TestApplySecondSIGINT(t *testing.T) {
	dir := slowExports(t, 60_000)
	sd := filepath.Join(dir, ".hyperagent")
	c := startCLI(t, "apply", "-auto-approve", dir)
	c.stdout.until(t, ": export start", 2)
	waitExportsRecorded(t, sd, 2)
	c.signal(t, syscall.SIGINT)
	c.stderr.until(t, "Interrupt received", 1)
	c.signal(t, syscall.SIGINT)
	if code := c.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", code, exitInterrupted, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "Second interrupt: exiting now") {
		t.Errorf("stderr:\n%s", c.stderr)
	}
	if strings.Contains(c.stdout.String(), "Apply interrupted") {
		t.Errorf("the second interrupt waited for the exports to give up:\n%s", c.stdout)
	}
	// The holder record it left names a process that is gone.
	info, ok, err := reconcile.ReadLockInfo(sd)
	if err != nil || !ok || info.PID != c.cmd.Process.Pid || info.Operation != "apply" {
		t.Fatalf("lock record after the second interrupt: %+v %v %v", info, ok, err)
	}
	runCLI(t, t.Context(), "", false, "force-unlock", "-state-dir", sd, info.ID).want(t, exitOK, "was stale")
	assertInterruptedState(t, sd, false)
	runCLI(t, t.Context(), "", false, "apply", "-auto-approve", fakeRepoFast(t, dir)).want(t, exitOK, "Apply complete: 2 migrated")
}

// assertInterruptedState checks the state loads, records the exports'
// start, and that the lock can be taken. recorded says the interruption
// itself was written (the first interrupt's clean exit).
func assertInterruptedState(t *testing.T, sd string, recorded bool) {
	t.Helper()
	store, err := reconcile.OpenStore(sd)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatalf("state after the interrupt does not load: %v", err)
	}
	if len(st.Migrations) != 2 {
		t.Fatalf("state records %d migrations, want 2", len(st.Migrations))
	}
	for _, ms := range st.Migrations {
		if ms.ExportStartedAt == nil || ms.Export != nil {
			t.Errorf("%s: export started %v, result %v; want an interrupted export", ms.Address, ms.ExportStartedAt, ms.Export)
		}
		if recorded && (ms.LastError == nil || !strings.Contains(ms.LastError.Message, "interrupted")) {
			t.Errorf("%s: last error %+v, want the interruption", ms.Address, ms.LastError)
		}
	}
	if recorded {
		if _, held, _ := reconcile.ReadLockInfo(sd); held {
			t.Error("the lock info is still there after a clean interrupt")
		}
	}
	if _, err := store.Lock("test"); err != nil {
		t.Fatalf("the lock is still held: %v", err)
	}
	if err := store.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// fakeRepoFast rewrites the repo's exports to take no time and returns it.
func fakeRepoFast(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("delay_ms = 60000"), []byte("delay_ms = 0"), 1)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitExportsRecorded waits until the state records n exports as started:
// the "start" event comes before the intent is written (and fsynced), and
// an interrupt in between would find nothing to record. Each read is
// consistent, since every state write is an atomic rename.
func waitExportsRecorded(t *testing.T, sd string, n int) {
	t.Helper()
	for {
		b, err := os.ReadFile(filepath.Join(sd, "state.json"))
		if err == nil {
			st, err := reconcile.DecodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			started := 0
			for _, ms := range st.Migrations {
				if ms.ExportStartedAt != nil {
					started++
				}
			}
			if started >= n {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRemovedMigrationWithdrawsQueuedJob: an apply interrupted while its
// jobs wait in the converter's queue; one migration is then taken out of
// the config, and the next apply withdraws its job (nobody claimed it),
// prunes its export and forgets it.
func TestRemovedMigrationWithdrawsQueuedJob(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	rewrite(t, dir, "rounds = 1", "rounds = 1000")
	sd := filepath.Join(dir, ".hyperagent")
	c := startCLI(t, "apply", "-auto-approve", dir)
	c.stdout.until(t, ": await start", 2)
	c.signal(t, syscall.SIGINT)
	if code := c.wait(t); code != exitInterrupted {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, c.stdout, c.stderr)
	}
	st, err := readState(sd)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Migrations[`migration.web["b"]`]
	if b == nil || b.Job == nil || b.Job.SubmittedAt == nil || b.Export == nil {
		t.Fatalf("web[b] after the interrupt: %+v", b)
	}
	rewrite(t, dir, `toset(["a", "b"])`, `toset(["a"])`)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "plan", dir).want(t, exitOK, `- migration.web["b"]`,
		"withdraw job "+b.Job.ID+" from converter.fake.conv", "prune ", "forget ")
	r := runCLI(t, ctx, "", false, "apply", "-auto-approve", "-target", `migration.web["b"]`, dir)
	r.want(t, exitOK, `migration.web["b"]: withdraw done`, "1 removed")
	jobs, err := os.ReadFile(filepath.Join(dir, "fakes", "conv-jobs.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(jobs), `"op":"withdraw","job":{"id":"`+b.Job.ID+`"`) {
		t.Errorf("the converter's journal has no withdrawal of %s:\n%s", b.Job.ID, jobs)
	}
	if _, err := os.Stat(b.Export.Files[0].Path); !os.IsNotExist(err) {
		t.Errorf("export of the removed migration still there: %v", err)
	}
}
