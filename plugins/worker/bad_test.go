package worker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestBadManifests: each bad job ends in failed/<date>/ with an error
// sidecar naming the problem, and the worker goes on to process the good
// job queued after them.
func TestBadManifests(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 2)
	elsewhere := t.TempDir()
	secret := filepath.Join(elsewhere, "shadow")
	makeRaw(t, secret, 1<<20, 3)
	link := filepath.Join(d.in, "link.raw")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	good := func(id string) *protocol.Manifest { return d.manifest(t, id, "qcow2", [2]string{disk, "raw"}) }
	marshal := func(m *protocol.Manifest) []byte { b, _ := m.Marshal(); return b }

	tests := []struct {
		name    string
		file    []byte
		ext     string
		wantErr string
	}{
		{"not-json", []byte("{\"manifest_version\": \"1.0\", "), ".json", "not valid JSON"},
		{"not-yaml", []byte("manifest_version: [1.0\n"), ".yaml", "not valid YAML"},
		{"wrong-version", func() []byte { m := good("x"); m.ManifestVersion = "2.0"; return marshal(m) }(), ".json", `manifest_version is "2.0"`},
		{"no-disk", func() []byte { m := good("x"); m.Disks = nil; return marshal(m) }(), ".json", "at least one disk"},
		{"missing-file", func() []byte {
			m := good("x")
			m.Disks[0].LocalPath = filepath.Join(d.in, "gone.raw")
			return marshal(m)
		}(), ".json", "no such file"},
		{"checksum-mismatch", func() []byte {
			m := good("x")
			m.Disks[0].Checksum = "sha256:" + strings.Repeat("0", 64)
			return marshal(m)
		}(), ".json", "checksum mismatch"},
		{"no-checksum-wrong-size", func() []byte {
			m := good("x")
			m.Disks[0].Checksum, m.Disks[0].Bytes = "", 5
			return marshal(m)
		}(), ".json", "is 1048576 bytes, the manifest says 5"},
		{"input-outside-roots", func() []byte {
			m := d.manifest(t, "x", "qcow2", [2]string{secret, "raw"})
			return marshal(m)
		}(), ".json", "outside every -input-root"},
		{"input-symlink-escape", func() []byte {
			m := d.manifest(t, "x", "qcow2", [2]string{link, "raw"})
			return marshal(m)
		}(), ".json", "outside every -input-root"},
		{"output-outside-roots", func() []byte { m := good("x"); m.Output.Directory = filepath.Join(elsewhere, "o"); return marshal(m) }(), ".json", "outside every -output-root"},
		{"output-dotdot", func() []byte { m := good("x"); m.Output.Directory = d.out + "/../../etc"; return marshal(m) }(), ".json", "clean absolute path"},
		{"fix-enabled", func() []byte { m := good("x"); m.Pipeline.Fix.Enabled = true; return marshal(m) }(), ".json", "stage fix: enabled, but hyperagent worker has no libguestfs"},
		{"inspect-enabled", func() []byte { m := good("x"); m.Pipeline.Inspect.Enabled = true; return marshal(m) }(), ".yml", "stage inspect"},
		{"convert-disabled", func() []byte { m := good("x"); m.Pipeline.Convert.Enabled = false; return marshal(m) }(), ".json", "stage convert: disabled"},
	}
	for _, tt := range tests {
		d.queue(t, tt.name+tt.ext, tt.file)
	}
	d.queueManifest(t, good("zz-good"))
	d.queue(t, ".hidden.json", marshal(good("hidden")))
	d.queue(t, "notes.txt", []byte("ignored"))

	w := runOnce(t, d.config())
	if got, want := w.status(), "1 done, 0 running, 14 failed"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := d.finished(t, protocol.DirFailed, tt.name+tt.ext, protocol.ErrorSuffix)
			var e protocol.ErrorSidecar
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Status != "failed" || e.JobID != tt.name || e.OriginalName != tt.name+tt.ext || !strings.Contains(e.Error, tt.wantErr) {
				t.Errorf("sidecar = %+v, want error containing %q", e, tt.wantErr)
			}
		})
	}
	d.finished(t, protocol.DirProcessed, "zz-good.json", protocol.ReportSuffix)
	for _, name := range []string{".hidden.json", "notes.txt"} {
		if _, err := os.Stat(filepath.Join(d.wf, protocol.DirQueued, name)); err != nil {
			t.Errorf("%s should be left alone in the queue: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "o")); !os.IsNotExist(err) {
		t.Errorf("an output directory outside the roots was created: %v", err)
	}
}

// TestSkipGuestFixes: with -skip-guest-fixes a job enabling inspect and fix
// succeeds, and its report says those stages were skipped, not done.
func TestSkipGuestFixes(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 4)
	m := d.manifest(t, "guest", "qcow2", [2]string{disk, "raw"})
	m.Pipeline.Inspect.Enabled = true
	m.Pipeline.Fix = protocol.FixStage{Enabled: true, FstabMode: "stabilize-all", UpdateGrub: true}
	b, _ := m.Marshal()
	d.queue(t, "guest.json", b)
	cfg := d.config()
	cfg.SkipGuestFixes = true
	runOnce(t, cfg)
	_, side := d.finished(t, protocol.DirProcessed, "guest.json", protocol.ReportSuffix)
	rep := readReport(t, side)
	for _, s := range []string{"inspect", "fix"} {
		st := rep.Pipeline.Stages[s]
		if st.Success || !st.Skipped || !strings.Contains(st.Result.(string), "skip-guest-fixes") {
			t.Errorf("stage %s = %+v, want skipped (never success)", s, st)
		}
	}
	if rep.Summary.SkippedStages != 2 || rep.Summary.SuccessfulStages != 2 || len(rep.Warnings) != 2 {
		t.Errorf("summary = %+v, warnings = %v", rep.Summary, rep.Warnings)
	}
}

// TestYAMLManifest: .yaml job files are accepted.
func TestYAMLManifest(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 5)
	sum, n := fileSHA(t, disk)
	y := "manifest_version: \"1.0\"\nvm: {cpu: 1, mem_gb: 2, firmware: uefi, os_hint: linux}\n" +
		"disks:\n  - {id: root, source_format: raw, bytes: " + itoa(n) + ", local_path: " + disk + ", checksum: \"" + sum + "\", boot_order_hint: 0}\n" +
		"pipeline: {convert: {enabled: true}, validate: {enabled: true}}\n" +
		"output: {directory: " + filepath.Join(d.out, "y") + ", format: qcow2}\n"
	d.queue(t, "y.yaml", []byte(y))
	runOnce(t, d.config())
	d.finished(t, protocol.DirProcessed, "y.yaml", protocol.ReportSuffix)
	qemu(t, "compare", "-f", "raw", "-F", "qcow2", disk, filepath.Join(d.out, "y", "root.qcow2"))
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
