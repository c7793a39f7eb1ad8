package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestConvertRealVMDK runs real qemu-img: monolithic sparse and
// streamOptimized VMDKs made from a raw disk with known content, converted
// to qcow2 (plain and compressed) and raw; every output must pass qemu-img
// check (qcow2) and compare equal to both the VMDK and the original raw.
func TestConvertRealVMDK(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	raw := filepath.Join(t.TempDir(), "orig.raw")
	makeRaw(t, raw, 8<<20, 1)
	vmdks := map[string]string{}
	for _, sub := range []string{"monolithicSparse", "streamOptimized"} {
		p := filepath.Join(d.in, sub+".vmdk")
		qemu(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, raw, p)
		vmdks[sub] = p
	}
	tests := []struct {
		name, sub, format string
		compress          bool
	}{
		{"sparse-qcow2", "monolithicSparse", "qcow2", false},
		{"stream-qcow2", "streamOptimized", "qcow2", false},
		{"stream-qcow2-compressed", "streamOptimized", "qcow2", true},
		{"sparse-raw", "monolithicSparse", "raw", false},
		{"stream-raw", "streamOptimized", "raw", false},
	}
	for _, tt := range tests {
		m := d.manifest(t, tt.name, tt.format, [2]string{vmdks[tt.sub], "vmdk"})
		m.Pipeline.Convert.Compress = tt.compress
		m.Pipeline.Convert.CompressLevel = 6
		d.queueManifest(t, m)
	}
	w := runOnce(t, d.config())
	if got := w.status(); got != "5 done, 0 running, 0 failed" {
		t.Errorf("status = %q", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, side := d.finished(t, protocol.DirProcessed, tt.name+".json", protocol.ReportSuffix)
			rep := readReport(t, side)
			if !rep.Pipeline.Success || len(rep.Artifacts) != 1 {
				t.Fatalf("report: success=%v artifacts=%d", rep.Pipeline.Success, len(rep.Artifacts))
			}
			a := rep.Artifacts[0]
			want := filepath.Join(d.out, tt.name, "disk0."+tt.format)
			if a.Path != want || a.Format != tt.format || a.Compressed != tt.compress || a.BootOrderHint != 0 {
				t.Errorf("artifact = %+v, want path %s", a, want)
			}
			if fi, err := os.Stat(want); err != nil || fi.Size() != a.SizeBytes {
				t.Errorf("output %s: %v (size in report %d)", want, err, a.SizeBytes)
			}
			if tt.format == "qcow2" {
				qemu(t, "check", "-f", "qcow2", want)
			}
			qemu(t, "compare", "-f", "vmdk", "-F", tt.format, vmdks[tt.sub], want)
			qemu(t, "compare", "-f", "raw", "-F", tt.format, raw, want)
			if s := rep.Pipeline.Stages["inspect"]; s.Success || !s.Skipped {
				t.Errorf("inspect stage = %+v, want skipped and not success", s)
			}
			if tt.compress && !strings.Contains(rep.Warnings[0].Message, "compression level") {
				t.Errorf("warnings = %+v, want the unapplied level said", rep.Warnings)
			}
			if _, err := os.Stat(filepath.Join(d.out, tt.name, "report.json")); err != nil {
				t.Errorf("output report: %v", err)
			}
			parts, _ := filepath.Glob(filepath.Join(d.out, tt.name, ".*"))
			if len(parts) != 0 {
				t.Errorf("leftover temp files: %v", parts)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(d.wf, ".stats", "stats.json")); err != nil || !strings.Contains(string(b), `"processed": 5`) {
		t.Errorf("stats.json: %v\n%s", err, b)
	}
}
