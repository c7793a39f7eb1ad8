package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestSettleInPlaceWrite: a job file written in place (`>`, not temp +
// rename) is seen empty, then half written; each time it is left in the
// queue for a later look, and once complete it is converted, never failed.
func TestSettleInPlaceWrite(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 12)
	b, _ := d.manifest(t, "careless", "qcow2", [2]string{disk, "raw"}).Marshal()
	q := filepath.Join(d.wf, protocol.DirQueued)
	must(t, os.MkdirAll(q, 0o755))
	f, err := os.Create(filepath.Join(q, "careless.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	cfg := d.config()
	cfg.Once, cfg.Settle, cfg.Rescan = false, time.Hour, 100*time.Millisecond
	w := newWorker(t, cfg)
	looked := make(chan struct{}, 1)
	w.testHook = func(event, name string) {
		if event == "unsettled" && name == "careless.json" {
			select {
			case looked <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitLook := func(what string) {
		t.Helper()
		select {
		case <-looked:
		case <-time.After(20 * time.Second):
			t.Fatalf("the worker did not leave the %s job file for a later look", what)
		}
	}
	waitLook("empty")
	if _, err := f.Write(b[:len(b)/2]); err != nil {
		t.Fatal(err)
	}
	select { // a look that saw the empty file while the write ran
	case <-looked:
	default:
	}
	waitLook("half-written")
	if _, err := f.Write(b[len(b)/2:]); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirProcessed, "*", "careless.json.report.json")); len(m) == 1 {
			break
		}
		if m, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirFailed, "*", "careless.json*")); len(m) > 0 {
			b, _ := os.ReadFile(m[len(m)-1])
			t.Fatalf("the job written in place failed: %s", b)
		}
		if time.Now().After(deadline) {
			t.Fatal("the completed job file was not converted")
		}
	}
}

// TestSettleThenFail: a job file that stays unparseable fails once it has
// not changed for the settle time, not before, with its error sidecar.
func TestSettleThenFail(t *testing.T) {
	d := newDirs(t)
	q := filepath.Join(d.wf, protocol.DirQueued)
	must(t, os.MkdirAll(q, 0o755))
	must(t, os.WriteFile(filepath.Join(q, "empty.json"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(q, "cut.yaml"), []byte("manifest_version: \"1.0\"\nvm:\n  cpu: 1\n"), 0o644))
	cfg := d.config()
	cfg.Settle = time.Second
	runWithin(t, newWorker(t, cfg), time.Minute)
	for name, want := range map[string]string{"empty.json": "not valid JSON", "cut.yaml": "invalid manifest"} {
		m, side := d.finished(t, protocol.DirFailed, name, protocol.ErrorSuffix)
		if e := sidecarError(t, side); !strings.Contains(e.Error, want) {
			t.Errorf("%s: error %q, want %q", name, e.Error, want)
		}
		mfi, err1 := os.Stat(m)
		sfi, err2 := os.Stat(m + protocol.ErrorSuffix)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if waited := sfi.ModTime().Sub(mfi.ModTime()); waited < cfg.Settle {
			t.Errorf("%s failed %v after it was written, before the settle time (%v)", name, waited, cfg.Settle)
		}
	}
}
