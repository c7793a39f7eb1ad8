package hyper2kvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// testCampaign is the campaign (state lineage) the fixture's jobs belong to.
const testCampaign = "5b0e7f2a-0000-4000-8000-00000000c0de"

type fixture struct {
	root, wf, in, out string
	c                 *Converter
	now               time.Time
	// wants is what each job id was submitted with: observe and
	// withdraw expect it, as the engine does from state.
	wants map[string]plugins.JobProvenance
}

// submit submits through the converter and remembers the provenance.
func (f *fixture) submit(req plugins.SubmitRequest) (plugins.SubmitResponse, error) {
	if _, ok := f.wants[req.JobID]; !ok {
		f.wants[req.JobID] = req.Provenance()
	}
	return f.c.Submit(context.Background(), req)
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{root: root, wf: filepath.Join(root, "wf"), in: filepath.Join(root, "in"), out: filepath.Join(root, "out"),
		now: time.Now(), wants: map[string]plugins.JobProvenance{}}
	for _, d := range []string{f.wf, f.in, f.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts = append([]Option{WithClock(func() time.Time { return f.now })}, opts...)
	c, err := New(Config{WorkflowDir: f.wf, OutputDir: f.out, Timeout: "1h"}, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

func sha(t testing.TB, path string) (string, int64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// writeDisk writes a small raw disk with non-zero content.
func writeDisk(t testing.TB, path string, seed byte) plugins.Disk {
	t.Helper()
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, n := sha(t, path)
	return plugins.Disk{ID: "disk0", Path: path, Format: "raw", Size: n, SHA256: sum}
}

func submitReq(addr, id string, disks ...plugins.Disk) plugins.SubmitRequest {
	return plugins.SubmitRequest{
		Address:  addr,
		Campaign: testCampaign,
		JobID:    id,
		Export: plugins.ExportResult{
			Disks:      disks,
			ExportedAt: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
			Facts: plugins.VMFacts{Name: "web-01", UUID: "4217-aaaa", OSFamily: "linux", Firmware: "efi", CPUs: 2, MemoryMiB: 3000,
				NICs: []plugins.NIC{{ID: "nic0", MAC: "00:50:56:01:02:03", Network: "VM Network"}}},
		},
		Options: schema.ConvertSettings{Format: "qcow2", Validate: true},
	}
}

func (f *fixture) observe(t *testing.T, ids ...string) map[string]plugins.JobObservation {
	t.Helper()
	var q []plugins.JobQuery
	for _, id := range ids {
		q = append(q, plugins.JobQuery{Address: f.wants[id].Address, JobID: id, Want: f.wants[id]})
	}
	resp, err := f.c.ObserveJobs(context.Background(), plugins.ObserveJobsRequest{Jobs: q})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Jobs
}

func mustWrite(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
