package worker

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// spy is a convertSpy (mismatch_test.go) that holds every conversion
// after the real qemu-img has written its output, until released.
type spy struct {
	dir  string
	hold *os.File // kept open, so a release written early is not lost
}

func holdingSpy(t *testing.T) *spy {
	t.Helper()
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	s := &spy{dir: t.TempDir()}
	for _, f := range []string{"signal", "hold"} {
		if err := syscall.Mkfifo(filepath.Join(s.dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.script(), []byte(fmt.Sprintf(convertSpy, real, s.dir, 1)), 0o755); err != nil {
		t.Fatal(err)
	}
	if s.hold, err = os.OpenFile(filepath.Join(s.dir, "hold"), os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.hold.Close() })
	return s
}

func (s *spy) script() string { return filepath.Join(s.dir, "qemu-img") }

// converting waits until a conversion has written its output and is held.
func (s *spy) converting(t *testing.T) {
	t.Helper()
	if err := awaitSignal(filepath.Join(s.dir, "signal")); err != nil {
		t.Fatal(err)
	}
}

// release lets one held conversion finish.
func (s *spy) release(t *testing.T) {
	t.Helper()
	if _, err := fmt.Fprintln(s.hold, "go"); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond; the deadline only keeps a broken worker from hanging
// the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestPausedHolderLosesJob: a worker process stopped (SIGSTOP) for longer
// than its lease loses its job to another worker. When it resumes it must
// find out, kill its qemu-img and remove only its own temp file: the new
// holder's conversion, running at that moment, completes and the job is
// processed once.
func TestPausedHolderLosesJob(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 4<<20, 11)
	d.queueManifest(t, d.manifest(t, "paused", "qcow2", [2]string{disk, "raw"}))
	outDir := filepath.Join(d.out, "paused")
	spyA, spyB := holdingSpy(t), holdingSpy(t)

	a := exec.Command(os.Args[0], "-test.run=^$")
	a.Env = append(os.Environ(), roleEnv+"=worker", "TRACE_LOG="+filepath.Join(t.TempDir(), "trace"),
		"WF="+d.wf, "IN="+d.in, "OUT="+d.out, "QEMU_IMG="+spyA.script(), "LEASE=1s")
	logA := &watchLog{want: "abandoning job", seen: make(chan struct{})}
	var stderrA strings.Builder
	a.Stderr = io.MultiWriter(logA, &stderrA)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Process.Kill()
	spyA.converting(t)
	partsA, _ := filepath.Glob(filepath.Join(outDir, ".disk0.qcow2*part"))
	if len(partsA) != 1 {
		t.Fatalf("worker A's temp output: %v, want one file", partsA)
	}
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	cfg := d.config()
	cfg.Once, cfg.Lease, cfg.Rescan, cfg.QemuImg = false, time.Second, 50*time.Millisecond, spyB.script()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctx) }()
	spyB.converting(t) // B took the job back and converts it
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select { // A finds out, and stops converting
	case <-logA.seen:
	case <-time.After(time.Minute):
		t.Fatal("worker A never said it abandoned the job")
	}
	spyB.release(t)
	waitFor(t, "the job to finish", func() bool {
		m, _ := filepath.Glob(filepath.Join(d.wf, "*", "*", "paused.json"))
		return len(m) > 0
	})
	cancel()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	a.Process.Signal(syscall.SIGTERM)
	if err := a.Wait(); err != nil {
		t.Errorf("worker A: %v\n%s", err, stderrA.String())
	}

	_, side := d.finished(t, protocol.DirProcessed, "paused.json", protocol.ReportSuffix)
	if r := readReport(t, side); !r.Pipeline.Success {
		t.Errorf("report: %+v", r)
	}
	qemu(t, "compare", "-q", "-f", "raw", "-F", "qcow2", disk, filepath.Join(outDir, "disk0.qcow2"))
	if left, _ := filepath.Glob(filepath.Join(outDir, ".*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if exists(filepath.Join(spyA.dir, "released")) {
		t.Errorf("worker A's qemu-img ran on after the job was lost instead of being killed")
	}
	if exists(partsA[0]) {
		t.Errorf("worker A's temp file %s is left", partsA[0])
	}
}

// TestTakeBackActsOnItsOwnLook: worker R judges a dead owner's lease stale
// and is held right there; meanwhile worker B takes the job back, claims
// it and converts it. When R goes on, it must not take the job from B: its
// look at the lease is out of date; nor later, while B's conversion takes
// longer than two leases: B renews. B completes the job.
func TestTakeBackActsOnItsOwnLook(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 12)
	b, _ := d.manifest(t, "contested", "qcow2", [2]string{disk, "raw"}).Marshal()
	proc := filepath.Join(d.wf, protocol.DirProcessing)
	os.MkdirAll(proc, 0o755)
	if err := os.WriteFile(filepath.Join(proc, "contested.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	lease := filepath.Join(proc, ".contested.json.lease")
	os.WriteFile(lease, []byte("otherhost/1/dead\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(lease, old, old)

	cfg := d.config()
	cfg.Once, cfg.Lease, cfg.Rescan = false, time.Second, 20*time.Millisecond
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	judged, resume, passes := make(chan struct{}), make(chan struct{}), make(chan struct{}, 10)
	var once sync.Once
	r.testHook = func(event, name string) {
		switch {
		case event == "stale" && name == "contested.json":
			once.Do(func() { close(judged); <-resume })
		case event == "pass":
			select {
			case passes <- struct{}{}:
			default:
			}
		}
	}
	ctxR, cancelR := context.WithCancel(context.Background())
	defer cancelR()
	doneR := make(chan error, 1)
	go func() { doneR <- r.Run(ctxR) }()
	<-judged

	spy := holdingSpy(t)
	cfgB := d.config()
	cfgB.Once, cfgB.Lease, cfgB.Rescan, cfgB.QemuImg = false, time.Second, 20*time.Millisecond, spy.script()
	wb, err := New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneB := make(chan error, 1)
	go func() { doneB <- wb.Run(ctxB) }()
	spy.converting(t) // B holds the job and converts it
	held, err := os.ReadFile(lease)
	if err != nil {
		t.Fatalf("B converts without a lease: %v", err)
	}
	for len(passes) > 0 {
		<-passes
	}
	close(resume)
	<-passes // R finished the pass it was held in
	// B's conversion goes on for more than two leases while R rescans: B's
	// renewals keep R off.
	start, err := os.Stat(lease)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to renew its lease for two lease periods", func() bool {
		fi, err := os.Stat(lease)
		return err == nil && os.SameFile(fi, start) && fi.ModTime().Sub(start.ModTime()) > 2*cfg.Lease
	})
	<-passes
	if now, err := os.ReadFile(lease); err != nil || string(now) != string(held) {
		t.Errorf("R acted on its out-of-date look: the lease was %q, now %q (%v)", held, now, err)
	}
	if !exists(filepath.Join(proc, "contested.json")) {
		t.Errorf("R took the job back from B")
	}
	spy.release(t)
	waitFor(t, "the job to finish", func() bool {
		m, _ := filepath.Glob(filepath.Join(d.wf, "*", "*", "contested.json"))
		return len(m) > 0
	})
	cancelB()
	cancelR()
	for _, done := range []chan error{doneB, doneR} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	d.finished(t, protocol.DirProcessed, "contested.json", protocol.ReportSuffix)
	if got := wb.status(); got != "1 done, 0 running, 0 failed" {
		t.Errorf("B: %s", got)
	}
	if got := r.status(); got != "0 done, 0 running, 0 failed" {
		t.Errorf("R: %s", got)
	}
}

// TestClaimNeedsTheLease: a claimer creates the job's lease before it
// moves the manifest, so a queued job whose lease exists is being claimed
// (or taken back) by another worker right now, and is left to it; once
// that lease is stale and its job absent, it is removed and the job
// claimed.
func TestClaimNeedsTheLease(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 13)
	d.queueManifest(t, d.manifest(t, "busy", "qcow2", [2]string{disk, "raw"}))
	proc := filepath.Join(d.wf, protocol.DirProcessing)
	os.MkdirAll(proc, 0o755)
	lease := filepath.Join(proc, ".busy.json.lease")
	if err := os.WriteFile(lease, []byte("otherhost/2/claiming 0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	w := runOnce(t, d.config())
	if got := w.status(); got != "0 done, 0 running, 0 failed" {
		t.Errorf("status = %q", got)
	}
	if !exists(filepath.Join(d.wf, protocol.DirQueued, "busy.json")) || !exists(lease) {
		t.Fatalf("a job another worker is claiming was taken, or its lease removed")
	}

	old := time.Now().Add(-time.Hour)
	os.Chtimes(lease, old, old)
	w = runOnce(t, d.config())
	if got := w.status(); got != "1 done, 0 running, 0 failed" {
		t.Errorf("status = %q", got)
	}
	d.finished(t, protocol.DirProcessed, "busy.json", protocol.ReportSuffix)
	if left, _ := filepath.Glob(filepath.Join(proc, ".*")); len(left) != 0 {
		t.Errorf("left in processing/: %v", left)
	}
}
