package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
)

// requireQemuImg fails (never skips) when qemu-img is missing: the tests
// run against the real tool.
func requireQemuImg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img not found in PATH: install Debian's qemu-utils (.ci/setup does): %v", err)
	}
}

func qemu(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeRaw writes a raw disk of size bytes: runs of pseudo-random data
// separated by holes, so conversions have real content and real sparseness.
func makeRaw(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	plugintest.WriteSparseRaw(t, path, size, seed)
}

func fileSHA(t testing.TB, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n
}

// testDirs is one workflow directory with its input and output roots.
type testDirs struct{ wf, in, out string }

func newDirs(t testing.TB) testDirs {
	root := t.TempDir()
	d := testDirs{wf: filepath.Join(root, "wf"), in: filepath.Join(root, "in"), out: filepath.Join(root, "out")}
	for _, p := range []string{d.wf, d.in, d.out} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// manifest is a valid job converting the given disks (paths, format).
func (d testDirs) manifest(t testing.TB, id, outFormat string, disks ...[2]string) *protocol.Manifest {
	t.Helper()
	m := &protocol.Manifest{
		ManifestVersion: "1.0",
		Source:          protocol.Source{Provider: "test", VMName: id, ExportTimestamp: time.Now().Format(time.RFC3339)},
		VM:              protocol.VM{CPU: 1, MemGB: 1, Firmware: "bios", OSHint: "linux"},
		Metadata:        protocol.Metadata{JobID: id, Tags: map[string]string{"address": "migration.t"}},
		Pipeline: protocol.Pipeline{
			Convert:  protocol.ConvertStage{Enabled: true},
			Validate: protocol.ValidateStage{Enabled: true, CheckImageIntegrity: true},
		},
		Output:  protocol.Output{Directory: filepath.Join(d.out, id), Format: outFormat},
		Options: protocol.Options{Report: protocol.ReportOption{Enabled: true, Path: "report.json"}},
	}
	for i, dk := range disks {
		sum, n := fileSHA(t, dk[0])
		m.Disks = append(m.Disks, protocol.Disk{ID: "disk" + string(rune('0'+i)), SourceFormat: dk[1], Bytes: n,
			LocalPath: dk[0], Checksum: sum, BootOrderHint: i, DiskType: "data"})
	}
	return m
}

// queue writes a job file the way a submitter must (dot temp + rename).
func (d testDirs) queue(t testing.TB, name string, data []byte) {
	t.Helper()
	q := filepath.Join(d.wf, protocol.DirQueued)
	if err := os.MkdirAll(q, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(q, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (d testDirs) queueManifest(t testing.TB, m *protocol.Manifest) {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d.queue(t, m.Metadata.JobID+".json", b)
}

func (d testDirs) config() Config {
	return Config{WorkflowDir: d.wf, InputRoots: []string{d.in}, OutputRoots: []string{d.out},
		Once: true, Lease: time.Minute, Rescan: time.Second, Settle: 100 * time.Millisecond, Logger: hclog.NewNullLogger()}
}

func runOnce(t testing.TB, cfg Config) *Worker {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return w
}

// finished finds a job's manifest and sidecar under processed/ or failed/.
func (d testDirs) finished(t testing.TB, top, name, suffix string) (manifest string, sidecar []byte) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(d.wf, top, "*", name))
	if len(matches) != 1 {
		t.Fatalf("%s: want exactly one %s/*/%s, found %v", name, top, name, matches)
	}
	b, err := os.ReadFile(matches[0] + suffix)
	if err != nil {
		t.Fatalf("%s: sidecar: %v", name, err)
	}
	return matches[0], b
}

func readReport(t testing.TB, b []byte) protocol.Report {
	t.Helper()
	var r protocol.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r
}

// runWithin runs w (Once) and fails the test if it has not returned within
// limit: a worker stuck on a hostile input must show up as a failure, not
// as a test binary that hangs until go test's own timeout.
func runWithin(t testing.TB, w *Worker, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(limit):
		t.Fatalf("the worker was still running after %v: stuck", limit)
	}
}

// newWorker is New that fails the test on error.
func newWorker(t testing.TB, cfg Config) *Worker {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// syncBuffer is a log sink several goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sidecarError reads an error sidecar.
func sidecarError(t testing.TB, b []byte) protocol.ErrorSidecar {
	t.Helper()
	var e protocol.ErrorSidecar
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error sidecar: %v\n%s", err, b)
	}
	return e
}

// queueDir lists to_be_processed/.
func (d testDirs) queueDir(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.wf, protocol.DirQueued))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
