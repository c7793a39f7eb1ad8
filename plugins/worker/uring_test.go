package worker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// uringSpy logs every convert command line to $dir/converts and passes it
// to the real qemu-img; with refuse=1 it fails a convert that asks for
// io_uring the way qemu-img 7.2 does when io_uring_setup is refused (the
// message was taken from the real qemu-img under strace's fault injection).
// The worker's start-up probe of qemu-img (features.go) passes straight
// through.
const uringSpy = `#!/bin/bash
real=%q dir=%q refuse=%d
[ "$1" = convert ] || exec "$real" "$@"
case "$*" in *.hyperagent-probe-*) exec "$real" "$@";; esac
echo "$*" >>"$dir/converts"
if [ "$refuse" = 1 ] && [[ "$*" == *file.aio=io_uring* ]]; then
  echo "qemu-img: Could not open '$*': Unable to use io_uring: failed to init linux io_uring ring" >&2
  exit 1
fi
exec "$real" "$@"
`

// TestConvertIOURing: inputs whose names hold a comma (which --image-opts
// must escape) convert correctly with io_uring where qemu-img allows it, and
// where qemu-img refuses io_uring the worker falls back to its default I/O
// once and for all: the second job does not try io_uring again.
func TestConvertIOURing(t *testing.T) {
	requireQemuImg(t)
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		refuse      bool
		wantAttempt int // convert command lines asking for io_uring
	}{{"allowed", false, 2}, {"refused", true, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			spy := t.TempDir()
			refuse := 0
			if tt.refuse {
				refuse = 1
			}
			script := filepath.Join(spy, "qemu-img")
			if err := os.WriteFile(script, []byte(fmt.Sprintf(uringSpy, real, spy, refuse)), 0o755); err != nil {
				t.Fatal(err)
			}
			raw := filepath.Join(d.in, "a,b=c.raw")
			makeRaw(t, raw, 4<<20, 9)
			vmdk := filepath.Join(d.in, "x,y.vmdk")
			qemu(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
			d.queueManifest(t, d.manifest(t, "j1", "qcow2", [2]string{vmdk, "vmdk"}))
			d.queueManifest(t, d.manifest(t, "j2", "qcow2", [2]string{raw, "raw"}))
			cfg := d.config()
			cfg.QemuImg = script
			w := runOnce(t, cfg)
			if got := w.status(); got != "2 done, 0 running, 0 failed" {
				t.Fatalf("status = %q", got)
			}
			for _, j := range []string{"j1", "j2"} {
				d.finished(t, protocol.DirProcessed, j+".json", protocol.ReportSuffix)
				out := filepath.Join(d.out, j, "disk0.qcow2")
				qemu(t, "check", "-f", "qcow2", out)
				qemu(t, "compare", "-f", "raw", "-F", "qcow2", raw, out)
			}
			b, err := os.ReadFile(filepath.Join(spy, "converts"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			attempts := strings.Count(string(b), "file.aio=io_uring")
			if tt.refuse {
				if attempts != tt.wantAttempt || len(lines) != 3 || !w.noURing.Load() {
					t.Errorf("convert command lines:\n%s\nwant one io_uring attempt, then default I/O for both jobs", b)
				}
				return
			}
			// Whether this kernel allows io_uring is not ours to assert; each
			// job converts once, and with io_uring unless qemu-img refused it.
			if len(lines) != 2 && !w.noURing.Load() {
				t.Errorf("convert command lines:\n%s\nwant one per job", b)
			}
			if !w.noURing.Load() && attempts != tt.wantAttempt {
				t.Errorf("convert command lines:\n%s\nwant io_uring for both jobs", b)
			}
			if !w.noURing.Load() && !strings.Contains(string(b), "file.filename="+strings.ReplaceAll(vmdk, ",", ",,")) {
				t.Errorf("convert command lines:\n%s\nwant the comma in %s doubled", b, vmdk)
			}
		})
	}
}
