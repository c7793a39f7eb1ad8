package worker

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestSdNotify listens on a real unixgram NOTIFY_SOCKET and checks what the
// worker tells systemd over a -once run.
func TestSdNotify(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 6)
	d.queueManifest(t, d.manifest(t, "n1", "qcow2", [2]string{disk, "raw"}))
	runOnce(t, d.config())

	var got []string
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
		if strings.HasPrefix(string(buf[:n]), "STOPPING=1") {
			break
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"READY=1", "STATUS=1 done, 0 running, 0 failed", "STOPPING=1"} {
		if !strings.Contains(all, want) {
			t.Errorf("systemd was not told %q; got:\n%s", want, all)
		}
	}
	if !strings.HasPrefix(got[0], "READY=1\n") || !strings.HasPrefix(got[len(got)-1], "STOPPING=1\n") {
		t.Errorf("want READY=1 first and STOPPING=1 last, got %q", got)
	}
}

// TestLeases: a job left in processing/ by a dead owner is taken back and
// done; one whose owner's lease is fresh is left alone; a queued job whose
// name is taken in processing/ is claimed under <id>_<YYYYMMDD_HHMMSS>.
func TestLeases(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 7)
	proc := filepath.Join(d.wf, protocol.DirProcessing)
	os.MkdirAll(proc, 0o755)
	put := func(id string, leaseAge time.Duration) {
		b, _ := d.manifest(t, id, "qcow2", [2]string{disk, "raw"}).Marshal()
		if err := os.WriteFile(filepath.Join(proc, id+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		lease := filepath.Join(proc, "."+id+".json.lease")
		os.WriteFile(lease, []byte("otherhost/1/dead\n"), 0o644)
		old := time.Now().Add(-leaseAge)
		os.Chtimes(lease, old, old)
	}
	put("dead-owner", 10*time.Minute)
	put("live-owner", 0)
	d.queueManifest(t, d.manifest(t, "live-owner", "qcow2", [2]string{disk, "raw"}))

	w := runOnce(t, d.config())
	if got := w.status(); got != "2 done, 0 running, 0 failed" {
		t.Errorf("status = %q", got)
	}
	d.finished(t, protocol.DirProcessed, "dead-owner.json", protocol.ReportSuffix)
	if _, err := os.Stat(filepath.Join(proc, "live-owner.json")); err != nil {
		t.Errorf("a job with a fresh lease was taken: %v", err)
	}
	clash, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirProcessed, "*", "live-owner_*[0-9].json"))
	if len(clash) != 1 || !regexp.MustCompile(`/live-owner_\d{8}_\d{6}\.json$`).MatchString(clash[0]) {
		t.Errorf("clash-renamed job in processed/: %v", clash)
	}
	if _, err := os.Stat(filepath.Join(proc, ".dead-owner.json.lease")); !os.IsNotExist(err) {
		t.Errorf("the dead owner's lease is still there: %v", err)
	}
}

// TestShutdownHandsBack: a job still converting when the grace period ends
// is cancelled, its partial output removed, and its manifest handed back to
// the queue. qemu-img is wrapped so that convert never finishes.
func TestShutdownHandsBack(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 8)
	d.queueManifest(t, d.manifest(t, "slow", "qcow2", [2]string{disk, "raw"}))
	wrapper := filepath.Join(t.TempDir(), "qemu-img")
	script := "#!/bin/sh\ncase \"$*\" in *.hyperagent-probe-*) exec qemu-img \"$@\";; esac\n" + // the worker's start-up probe
		"if [ \"$1\" = convert ]; then for last; do :; done; echo partial > \"$last\"; exec sleep 600; fi\nexec qemu-img \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := d.config()
	cfg.Once, cfg.QemuImg, cfg.Grace = false, wrapper, 50*time.Millisecond
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if part, _ := filepath.Glob(filepath.Join(d.out, "slow", ".disk0.qcow2.*.part")); len(part) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversion never started")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.wf, protocol.DirQueued, "slow.json")); err != nil {
		t.Errorf("job not handed back: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirProcessing, "*"))
	left2, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirProcessing, ".*"))
	outs, _ := filepath.Glob(filepath.Join(d.out, "slow", "*"))
	outs2, _ := filepath.Glob(filepath.Join(d.out, "slow", ".*"))
	if len(left)+len(left2)+len(outs)+len(outs2) != 0 {
		t.Errorf("left behind: processing %v %v, outputs %v %v", left, left2, outs, outs2)
	}
}

// TestSdNotifyWatchdog: with WATCHDOG_USEC set for this process, a running
// worker pings WATCHDOG=1 from its main loop, and says STOPPING=1 when
// its context ends.
func TestSdNotifyWatchdog(t *testing.T) {
	d := newDirs(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	cfg := d.config()
	cfg.Once = false
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	seen := map[string]bool{}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !seen["STOPPING=1"] {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the notify socket: %v (seen %v)", err, seen)
		}
		msg, _, _ := strings.Cut(string(buf[:n]), "\n")
		seen[msg] = true
		if seen["WATCHDOG=1"] {
			cancel()
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !seen["READY=1"] {
		t.Errorf("READY=1 never sent: %v", seen)
	}
}
