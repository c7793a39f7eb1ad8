package worker

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestQueueHostileEntries: a queue entry that is not a regular job file is
// never ignored for good. One with a valid job name (a symlink, a dangling
// symlink, a FIFO, a directory) fails with an error sidecar, moved as it is
// (the link never followed, the FIFO never opened); one whose name is no job
// id (a space, a newline, a tab, too long) is moved aside under a name that
// cannot clash, with one warning each. The good job after them is done, and
// dot-files and other suffixes are left alone.
func TestQueueHostileEntries(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 11)
	q := filepath.Join(d.wf, protocol.DirQueued)
	if err := os.MkdirAll(q, 0o755); err != nil {
		t.Fatal(err)
	}
	// A valid manifest outside the queue, reachable only through a link:
	// a worker that followed it would convert it.
	target := filepath.Join(t.TempDir(), "target.json")
	valid, _ := d.manifest(t, "link", "qcow2", [2]string{disk, "raw"}).Marshal()
	must(t, os.WriteFile(target, valid, 0o644))
	must(t, os.Symlink(target, filepath.Join(q, "link.json")))
	must(t, os.Symlink(filepath.Join(t.TempDir(), "gone.json"), filepath.Join(q, "dangling.json")))
	// No writer ever opens this FIFO: a blocking open or read hangs.
	must(t, unix.Mkfifo(filepath.Join(q, "fifo.json"), 0o644))
	must(t, os.Mkdir(filepath.Join(q, "dir.json"), 0o755))
	must(t, os.WriteFile(filepath.Join(q, "dir.json", "inside"), []byte("kept"), 0o644))
	noID := []string{"a b.json", "new\nline.json", "tab\t.yaml", strings.Repeat("x", 240) + ".json"}
	for _, name := range noID {
		must(t, os.WriteFile(filepath.Join(q, name), valid, 0o644))
	}
	// Left to settle, then claimed (and failed) after every look above.
	must(t, os.WriteFile(filepath.Join(q, "b-empty.json"), nil, 0o644))
	d.queueManifest(t, d.manifest(t, "zz-good", "qcow2", [2]string{disk, "raw"}))
	d.queue(t, ".hidden.json", valid)
	d.queue(t, "notes.txt", []byte("not a job"))

	var logs syncBuffer
	cfg := d.config()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	cfg.Settle = 2 * time.Second
	w := newWorker(t, cfg)
	runWithin(t, w, time.Minute)

	if got, want := w.status(), "1 done, 0 running, 5 failed"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	for name, want := range map[string]struct {
		err  string
		mode os.FileMode
	}{
		"link.json":     {"symbolic link", os.ModeSymlink},
		"dangling.json": {"symbolic link", os.ModeSymlink},
		"fifo.json":     {"FIFO", os.ModeNamedPipe},
		"dir.json":      {"directory", os.ModeDir},
		"b-empty.json":  {"not valid JSON", 0},
	} {
		m, side := d.finished(t, protocol.DirFailed, name, protocol.ErrorSuffix)
		if e := sidecarError(t, side); e.Status != "failed" || e.OriginalName != name || !strings.Contains(e.Error, want.err) {
			t.Errorf("%s: sidecar %+v, want an error naming %q", name, e, want.err)
		}
		if fi, err := os.Lstat(m); err != nil || fi.Mode().Type() != want.mode {
			t.Errorf("%s: moved entry is %v (%v), want it moved as it was (%v)", name, fi.Mode().Type(), err, want.mode)
		}
	}
	if b, err := os.ReadFile(target); err != nil || !bytes.Equal(b, valid) {
		t.Errorf("the symlink's target was touched: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.out, "link")); !os.IsNotExist(err) {
		t.Errorf("the symlink was followed: its job's output directory exists (%v)", err)
	}
	d.finished(t, protocol.DirProcessed, "zz-good.json", protocol.ReportSuffix)

	if got, want := d.queueDir(t), []string{".hidden.json", "notes.txt"}; !slices.Equal(got, want) {
		t.Errorf("queue holds %q, want only %q", got, want)
	}
	aside, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirFailed, "*", "*.rejected"))
	if len(aside) != len(noID) {
		t.Fatalf("moved aside: %q, want %d files", aside, len(noID))
	}
	for _, p := range aside {
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, valid) {
			t.Errorf("%s: content changed (%v)", p, err)
		}
		if _, err := os.Stat(p + protocol.ErrorSuffix); !os.IsNotExist(err) {
			t.Errorf("%s: a sidecar was written for a name that is no job id", p)
		}
		if _, _, ok := protocol.JobFile(filepath.Base(p)); ok {
			t.Errorf("%s: moved aside under a job file name", p)
		}
	}
	if n := strings.Count(logs.String(), "not a valid job file name"); n != len(noID) {
		t.Errorf("%d warnings about bad names, want one each (%d):\n%s", n, len(noID), logs.String())
	}
	// notes.txt stayed through every look at the queue, whole or ended at a
	// claim: one warning.
	if n := strings.Count(logs.String(), "not a job file"); n != 1 {
		t.Errorf("%d warnings about notes.txt, want 1:\n%s", n, logs.String())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
