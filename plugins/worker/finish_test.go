package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestFinishNeverOverwrites: jobs of the same names finished earlier the
// same day (by another submitter) are kept as they were. The new ones are
// filed under the daemon's clash name <id>_<YYYYMMDD_HHMMSS>, manifest and
// sidecar alike, and a manifest whose sidecar is not written yet (a daemon
// between its two steps) never gets this worker's sidecar.
func TestFinishNeverOverwrites(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 14)
	earlier := map[string]string{ // relative to a date folder's parent
		"processed/same.json":             "earlier manifest",
		"processed/same.json.report.json": "earlier report",
		"failed/bad.json":                 "earlier manifest",
		"failed/bad.json.error.json":      "earlier error",
		"processed/half.json":             "a daemon's manifest, sidecar not written yet",
	}
	// Today's folder, and tomorrow's in case the day turns during the run.
	var dates []string
	for _, t0 := range []time.Time{time.Now(), time.Now().Add(24 * time.Hour)} {
		dates = append(dates, protocol.DateDir(t0))
	}
	for _, date := range dates {
		for rel, content := range earlier {
			p := filepath.Join(d.wf, filepath.Dir(rel), date, filepath.Base(rel))
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(content), 0o644))
		}
	}
	d.queueManifest(t, d.manifest(t, "same", "qcow2", [2]string{disk, "raw"}))
	d.queueManifest(t, d.manifest(t, "half", "qcow2", [2]string{disk, "raw"}))
	bad := d.manifest(t, "bad", "qcow2", [2]string{disk, "raw"})
	bad.Disks[0].Checksum = "sha256:" + strings.Repeat("0", 64)
	d.queueManifest(t, bad)
	runWithin(t, newWorker(t, d.config()), time.Minute)

	for _, date := range dates {
		for rel, content := range earlier {
			p := filepath.Join(d.wf, filepath.Dir(rel), date, filepath.Base(rel))
			if b, err := os.ReadFile(p); err != nil || string(b) != content {
				t.Errorf("%s was overwritten or removed (%v): now %.40q…", p, err, b)
			}
		}
		if _, err := os.Stat(filepath.Join(d.wf, "processed", date, "half.json.report.json")); !os.IsNotExist(err) {
			t.Errorf("this worker's report was put beside another job's manifest half.json (%v)", err)
		}
	}
	for _, job := range []struct{ top, id, suffix, want string }{
		{protocol.DirProcessed, "same", protocol.ReportSuffix, `"success": true`},
		{protocol.DirProcessed, "half", protocol.ReportSuffix, `"success": true`},
		{protocol.DirFailed, "bad", protocol.ErrorSuffix, "checksum mismatch"},
	} {
		all, _ := filepath.Glob(filepath.Join(d.wf, job.top, "*", job.id+"_*.json"))
		var clash []string
		for _, p := range all {
			if fid, _, ok := protocol.JobFile(filepath.Base(p)); ok && fid != job.id && protocol.MatchesJob(fid, job.id) {
				clash = append(clash, p)
			}
		}
		if len(clash) != 1 {
			t.Errorf("%s: want one %s/<date>/%s_<YYYYMMDD_HHMMSS>.json, found %q", job.id, job.top, job.id, all)
			continue
		}
		b, err := os.ReadFile(clash[0] + job.suffix)
		if err != nil || !strings.Contains(string(b), job.want) {
			t.Errorf("%s: the sidecar beside %s: %v\n%s", job.id, clash[0], err, b)
		}
		if m, err := protocol.ParseManifest(mustRead(t, clash[0]), ".json"); err != nil || m.Metadata.JobID != job.id {
			t.Errorf("%s: %s is not the job's manifest (%v)", job.id, clash[0], err)
		}
	}
}

// TestFinishReplacesAnOrphanReport: a report with no manifest beside it
// is what a worker killed while filing leaves (it writes the report
// first); the job, taken back and converted again, is filed under its own
// name, its report replacing the orphan, not under a clash name.
func TestFinishReplacesAnOrphanReport(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 15)
	var dates []string
	for _, t0 := range []time.Time{time.Now(), time.Now().Add(24 * time.Hour)} {
		dates = append(dates, protocol.DateDir(t0))
		p := filepath.Join(d.wf, protocol.DirProcessed, protocol.DateDir(t0), "orphan.json"+protocol.ReportSuffix)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(`{"left": "by a worker killed while filing"}`), 0o644))
	}
	d.queueManifest(t, d.manifest(t, "orphan", "qcow2", [2]string{disk, "raw"}))
	runWithin(t, newWorker(t, d.config()), time.Minute)
	filed := 0
	for _, date := range dates {
		dir := filepath.Join(d.wf, protocol.DirProcessed, date)
		if clash, _ := filepath.Glob(filepath.Join(dir, "orphan_*")); len(clash) > 0 {
			t.Errorf("filed under a clash name: %v", clash)
		}
		if _, err := os.Stat(filepath.Join(dir, "orphan.json")); err != nil {
			continue
		}
		filed++
		if b := mustRead(t, filepath.Join(dir, "orphan.json"+protocol.ReportSuffix)); !strings.Contains(string(b), `"success": true`) {
			t.Errorf("the report beside orphan.json is not this run's:\n%s", b)
		}
	}
	if filed != 1 {
		t.Errorf("orphan.json filed %d times, want once under its own name", filed)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
