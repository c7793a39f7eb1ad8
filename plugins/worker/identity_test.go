package worker

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// recordIdentity puts the input's identity as it is now into the manifest,
// as the vSphere export does for the file it wrote. It then waits out the
// timestamp tick: a change the test makes next must get a later ctime (a
// change within the writer's own tick is the export's window, identity.go).
func recordIdentity(t *testing.T, m *protocol.Manifest, i int) {
	t.Helper()
	fi, err := os.Stat(m.Disks[i].LocalPath)
	if err != nil {
		t.Fatal(err)
	}
	m.SetIdentity(m.Disks[i].ID, protocol.FileIdentity(*plugins.IdentityOf(fi)))
	time.Sleep(20 * time.Millisecond)
}

// countReads makes w count the inputs it opens to hash them.
func countReads(w *Worker) *atomic.Int32 {
	var n atomic.Int32
	w.openInput = func(p string) (io.ReadCloser, error) {
		n.Add(1)
		return os.Open(p)
	}
	return &n
}

// TestIdentityShortcut: a checksum recorded with the input's identity is
// taken as the file's, without reading the file again, only while the
// file's identity is exactly the recorded one and nobody but its owner may
// write it. A file rewritten in place with its mtime restored (same size,
// same mtime, new ctime) is hashed again and refused on the mismatch; a
// file only touched is hashed again, passes, and the report says it
// changed; a group-writable file is hashed although its identity matches.
func TestIdentityShortcut(t *testing.T) {
	requireQemuImg(t)
	tests := []struct {
		name      string
		before    func(t *testing.T, path string) // before the identity is recorded
		after     func(t *testing.T, path string) // after
		wantReads int32
		wantFail  string // in the error sidecar; "" = success
		wantWarn  string // in the report's warnings
	}{
		{name: "unchanged", wantReads: 0},
		{name: "rewritten in place, mtime restored", after: rewriteKeepingMtime, wantReads: 1,
			wantFail: "checksum mismatch"},
		{name: "touched, content unchanged", after: func(t *testing.T, p string) { chmod(t, p, 0o600); chmod(t, p, 0o644) },
			wantReads: 1, wantWarn: "the file changed since its checksum was computed (ctime"},
		{name: "group-writable", before: func(t *testing.T, p string) { chmod(t, p, 0o664) }, wantReads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			disk := filepath.Join(d.in, "a.raw")
			makeRaw(t, disk, 4<<20, 11)
			chmod(t, disk, 0o644)
			m := d.manifest(t, "j", "qcow2", [2]string{disk, "raw"})
			if tt.before != nil {
				tt.before(t, disk)
			}
			recordIdentity(t, m, 0)
			if tt.after != nil {
				tt.after(t, disk)
			}
			d.queueManifest(t, m)
			w := newWorker(t, d.config())
			reads := countReads(w)
			runWithin(t, w, time.Minute)
			if got := reads.Load(); got != tt.wantReads {
				t.Errorf("the input was opened %d times to be hashed, want %d", got, tt.wantReads)
			}
			if tt.wantFail != "" {
				_, b := d.finished(t, protocol.DirFailed, "j.json", protocol.ErrorSuffix)
				if e := sidecarError(t, b); !strings.Contains(e.Error, tt.wantFail) {
					t.Errorf("error = %q, want %q", e.Error, tt.wantFail)
				}
				if left, _ := filepath.Glob(filepath.Join(d.out, "j", "*")); len(left) != 0 {
					t.Errorf("output directory holds %v, want nothing", left)
				}
				return
			}
			_, b := d.finished(t, protocol.DirProcessed, "j.json", protocol.ReportSuffix)
			rep := readReport(t, b)
			res, _ := rep.Pipeline.Stages["convert"].Result.(string)
			if taken := strings.Contains(res, "so it was not read again"); taken != (tt.wantReads == 0) {
				t.Errorf("convert result %q: says the export's sha256 was taken: %v, want %v", res, taken, tt.wantReads == 0)
			}
			var warns []string
			for _, w := range rep.Warnings {
				warns = append(warns, w.Message)
			}
			if all := strings.Join(warns, "\n"); tt.wantWarn != "" && !strings.Contains(all, tt.wantWarn) || tt.wantWarn == "" && all != "" {
				t.Errorf("warnings %q, want %q", all, tt.wantWarn)
			}
			qemu(t, "compare", "-f", "raw", "-F", "qcow2", disk, filepath.Join(d.out, "j", "disk0.qcow2"))
		})
	}
}

// rewriteKeepingMtime changes one byte of the file in place and sets its
// times back: size and mtime are as recorded, only the ctime tells.
func rewriteKeepingMtime(t *testing.T, path string) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a}, 4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Fatalf("the rewrite changed more than the ctime: %v %d -> %v %d", before.ModTime(), before.Size(), after.ModTime(), after.Size())
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// touchSpy runs the real qemu-img and, after a conversion, changes the
// input's mode to what it already is: the bytes stay, the ctime moves.
const touchSpy = `#!/bin/bash
real=%q input=%q
[ "$1" = convert ] || exec "$real" "$@"
case "$*" in *.hyperagent-probe-*) exec "$real" "$@";; esac
"$real" "$@" || exit
sleep 0.02
chmod 0644 "$input"
`

// TestInputChangedDuringConversion: an input whose checksum was taken from
// its recorded identity (so never read by the worker) and that changes
// while qemu-img converts it fails the job: what qemu-img read may not be
// what the checksum vouched for. No output is left.
func TestInputChangedDuringConversion(t *testing.T) {
	requireQemuImg(t)
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 4<<20, 12)
	chmod(t, disk, 0o644)
	m := d.manifest(t, "j", "qcow2", [2]string{disk, "raw"})
	recordIdentity(t, m, 0)
	d.queueManifest(t, m)
	script := filepath.Join(t.TempDir(), "qemu-img")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(touchSpy, real, disk)), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := d.config()
	cfg.QemuImg = script
	w := newWorker(t, cfg)
	reads := countReads(w)
	runWithin(t, w, time.Minute)
	_, b := d.finished(t, protocol.DirFailed, "j.json", protocol.ErrorSuffix)
	if e := sidecarError(t, b); !strings.Contains(e.Error, "changed while it was converted (ctime") {
		t.Errorf("error = %q, want the input's change named", e.Error)
	}
	if reads.Load() != 0 {
		t.Errorf("the input was hashed: the identity was not honoured, so the test proved nothing")
	}
	if left, _ := filepath.Glob(filepath.Join(d.out, "j", "*")); len(left) != 0 {
		t.Errorf("output directory holds %v, want nothing", left)
	}
}
