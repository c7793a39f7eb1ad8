package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// convertSpy wraps the real qemu-img. For "convert" it runs the real
// conversion (the output is written under its temp name), records that the
// output existed, tells the test on the FIFO "signal", and with hold set then
// waits on the FIFO "hold", which the test never writes: only a kill ends it
// early. Its own 60 s limit only keeps a broken worker from hanging the
// test; it then leaves "released", which fails the test. The worker's
// start-up probe of qemu-img (features.go) passes straight through.
const convertSpy = `#!/bin/bash
real=%q dir=%q hold=%d
[ "$1" = convert ] || exec "$real" "$@"
case "$*" in *.hyperagent-probe-*) exec "$real" "$@";; esac
"$real" "$@"; rc=$?
for a; do out=$a; done
[ -s "$out" ] && touch "$dir/part-written"
echo "$rc" >"$dir/signal"
if [ "$hold" = 1 ]; then
  read -r -t 60 _ <>"$dir/hold"
  touch "$dir/released"
fi
exit "$rc"
`

// TestChecksumMismatchDuringConvert: the input hash runs beside qemu-img
// convert. However the two interleave, a mismatch yields an error sidecar,
// and neither the final output nor the temp file is left. The hash is held
// until the real conversion has written its output: "during" finds the
// mismatch while qemu-img still runs (it must be killed), "after" once
// qemu-img has exited successfully, while the output is fsynced and checked.
func TestChecksumMismatchDuringConvert(t *testing.T) {
	requireQemuImg(t)
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		hold bool
	}{{"during", true}, {"after", false}} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			spy := t.TempDir()
			for _, f := range []string{"signal", "hold"} {
				if err := syscall.Mkfifo(filepath.Join(spy, f), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			hold := 0
			if tt.hold {
				hold = 1
			}
			script := filepath.Join(spy, "qemu-img")
			if err := os.WriteFile(script, []byte(fmt.Sprintf(convertSpy, real, spy, hold)), 0o755); err != nil {
				t.Fatal(err)
			}
			disk := filepath.Join(d.in, "a.raw")
			makeRaw(t, disk, 4<<20, 7)
			m := d.manifest(t, "mm", "qcow2", [2]string{disk, "raw"})
			m.Disks[0].Checksum = "sha256:" + strings.Repeat("ab", 32)
			d.queueManifest(t, m)

			logs := &watchLog{want: "qemu-img convert done", seen: make(chan struct{})}
			cfg := d.config()
			cfg.QemuImg = script
			cfg.Grace = time.Second
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs})
			w, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			w.openInput = func(p string) (io.ReadCloser, error) {
				if err := awaitSignal(filepath.Join(spy, "signal")); err != nil {
					return nil, err
				}
				if !tt.hold {
					select { // qemu-img convert has returned, successfully
					case <-logs.seen:
					case <-time.After(time.Minute):
						return nil, fmt.Errorf("test: the conversion never returned")
					}
				}
				return os.Open(p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard only
			defer cancel()
			if err := w.Run(ctx); err != nil {
				t.Fatal(err)
			}

			_, b := d.finished(t, protocol.DirFailed, "mm.json", protocol.ErrorSuffix)
			var e protocol.ErrorSidecar
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.Error, "checksum mismatch") || e.Status != "failed" {
				t.Errorf("sidecar = %+v, want a checksum mismatch", e)
			}
			if _, err := os.Stat(filepath.Join(spy, "part-written")); err != nil {
				t.Errorf("the conversion never wrote its temp output, so the test proved nothing: %v", err)
			}
			if _, err := os.Stat(filepath.Join(spy, "released")); err == nil {
				t.Errorf("qemu-img convert ran on after the mismatch instead of being killed")
			}
			left, _ := filepath.Glob(filepath.Join(d.out, "mm", "*")) // "*" matches dot-files too
			if len(left) != 0 {
				t.Errorf("output directory holds %v, want nothing (no output, no temp file)", left)
			}
			if tt.hold == logs.saw() {
				t.Errorf("qemu-img convert returned on its own: %v, want %v", logs.saw(), !tt.hold)
			}
		})
	}
}

// awaitSignal reads one line from the spy's FIFO. Opened read-write, the
// open never blocks, and the deadline keeps a spy that never ran from
// hanging the test.
func awaitSignal(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	if _, err := bufio.NewReader(f).ReadString('\n'); err != nil {
		return fmt.Errorf("test: no signal from the qemu-img spy: %w", err)
	}
	return nil
}

// watchLog is a log sink that closes seen when a line contains want.
type watchLog struct {
	want string
	mu   sync.Mutex
	done bool
	seen chan struct{}
}

func (l *watchLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && bytes.Contains(p, []byte(l.want)) {
		l.done = true
		close(l.seen)
	}
	return len(p), nil
}

func (l *watchLog) saw() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// checkSpy corrupts the converted image's qcow2 magic before running the
// real qemu-img check on it, which must then fail.
const checkSpy = `#!/bin/bash
real=%q
[ "$1" = check ] || exec "$real" "$@"
for a; do out=$a; done
printf 'XXXX' | dd of="$out" conv=notrunc status=none
exec "$real" "$@"
`

// TestCheckFailureDiscardsOutput: when qemu-img check fails on the
// converted image, the job fails in stage validate and neither the output
// nor its temp file is left, although the input hash matched.
func TestCheckFailureDiscardsOutput(t *testing.T) {
	requireQemuImg(t)
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	d := newDirs(t)
	script := filepath.Join(t.TempDir(), "qemu-img")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(checkSpy, real)), 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 4<<20, 8)
	d.queueManifest(t, d.manifest(t, "bad-check", "qcow2", [2]string{disk, "raw"}))
	cfg := d.config()
	cfg.QemuImg = script
	runOnce(t, cfg)
	_, b := d.finished(t, protocol.DirFailed, "bad-check.json", protocol.ErrorSuffix)
	var e protocol.ErrorSidecar
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Error, "stage validate: disk disk0: qemu-img check") {
		t.Errorf("sidecar error = %q, want a failed qemu-img check in stage validate", e.Error)
	}
	if left, _ := filepath.Glob(filepath.Join(d.out, "bad-check", "*")); len(left) != 0 {
		t.Errorf("output directory holds %v, want nothing", left)
	}
}
