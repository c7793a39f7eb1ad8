package worker

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// qemuHasZstd asks the real qemu-img, independently of the worker's probe,
// whether it writes zstd-compressed qcow2.
func qemuHasZstd(t testing.TB) bool {
	t.Helper()
	err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", filepath.Join(t.TempDir(), "z.qcow2"), "1M").Run()
	return err == nil
}

// compressionType is what qemu-img info says of a qcow2 image's codec.
func compressionType(t testing.TB, path string) string {
	t.Helper()
	var info struct {
		FormatSpecific struct {
			Data struct {
				CompressionType string `json:"compression-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(qemu(t, "info", "--output=json", "-f", "qcow2", path)), &info); err != nil {
		t.Fatal(err)
	}
	return info.FormatSpecific.Data.CompressionType
}

// refuseSpy passes everything to the real qemu-img and logs convert command
// lines, except what it is told to refuse: with zstd=1 any use of
// compression_type=zstd (as a qemu-img built without libzstd refuses it),
// with w=1 a convert asking for both -W and -c (as older qemu-img did).
const refuseSpy = `#!/bin/bash
real=%q dir=%q zstd=%d w=%d
if [ "$zstd" = 1 ] && [[ "$*" == *compression_type=zstd* ]]; then
  echo "qemu-img: zstd compression is not supported by this build" >&2; exit 1
fi
if [ "$1" = convert ]; then
  echo "$*" >>"$dir/converts"
  if [ "$w" = 1 ] && [[ " $* " == *" -W "* ]] && [[ " $* " == *" -c "* ]]; then
    echo "qemu-img: Out of order write and compress are mutually exclusive" >&2; exit 1
  fi
fi
exec "$real" "$@"
`

// TestCompression: a compressed job's qcow2 is zstd-compressed where
// qemu-img can (and written out of order, -W, with -m coroutines), and the
// heartbeat lists compress:zstd. Where the probe finds no zstd (forced
// here by a qemu-img that refuses it), it is zlib: the log, the report and
// the heartbeat say so. Where qemu-img refuses -W with -c, compressed
// conversions run in order. Every output is checked and compared with the
// input.
func TestCompression(t *testing.T) {
	requireQemuImg(t)
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	zstd := qemuHasZstd(t)
	tests := []struct {
		name             string
		refuseZstd, refW int
		wantCodec        string
		wantW            bool
		wantWarn         string
	}{
		{name: "as installed", wantCodec: map[bool]string{true: "zstd", false: "zlib"}[zstd], wantW: true},
		{name: "no zstd", refuseZstd: 1, wantCodec: "zlib", wantW: true, wantWarn: "compressed with zlib: this worker's qemu-img cannot write zstd-compressed qcow2"},
		{name: "no -W with -c", refW: 1, wantCodec: map[bool]string{true: "zstd", false: "zlib"}[zstd], wantW: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirs(t)
			spy := t.TempDir()
			script := filepath.Join(spy, "qemu-img")
			if err := os.WriteFile(script, []byte(fmt.Sprintf(refuseSpy, real, spy, tt.refuseZstd, tt.refW)), 0o755); err != nil {
				t.Fatal(err)
			}
			raw := filepath.Join(d.in, "a.raw")
			makeRaw(t, raw, 4<<20, 13)
			m := d.manifest(t, "c", "qcow2", [2]string{raw, "raw"})
			m.Pipeline.Convert.Compress = true
			d.queueManifest(t, m)
			logs := &syncBuffer{}
			cfg := d.config()
			cfg.QemuImg, cfg.Coroutines = script, 2
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
			w := runOnce(t, cfg)

			_, b := d.finished(t, protocol.DirProcessed, "c.json", protocol.ReportSuffix)
			rep := readReport(t, b)
			out := filepath.Join(d.out, "c", "disk0.qcow2")
			if got := compressionType(t, out); got != tt.wantCodec {
				t.Errorf("output compression type %q, want %q", got, tt.wantCodec)
			}
			qemu(t, "check", "-f", "qcow2", out)
			qemu(t, "compare", "-f", "raw", "-F", "qcow2", raw, out)
			if len(rep.Artifacts) != 1 || !rep.Artifacts[0].Compressed {
				t.Errorf("artifacts %+v, want one compressed", rep.Artifacts)
			}
			wantCap := map[string]string{"zstd": protocol.CapCompressZstd, "zlib": protocol.CapCompressZlib}[tt.wantCodec]
			if caps := w.capabilities(); caps[len(caps)-1] != wantCap {
				t.Errorf("heartbeat capabilities %v, want %s", caps, wantCap)
			}
			var warns []string
			for _, n := range rep.Warnings {
				warns = append(warns, n.Message)
			}
			if all := strings.Join(warns, "\n"); tt.wantWarn != "" && !strings.Contains(all, tt.wantWarn) || tt.wantWarn == "" && all != "" {
				t.Errorf("report warnings %q, want %q", all, tt.wantWarn)
			}
			if tt.wantWarn != "" && !strings.Contains(logs.String(), "compressed output uses zlib") {
				t.Errorf("the log does not say zlib is used:\n%s", logs)
			}
			converts, err := os.ReadFile(filepath.Join(spy, "converts"))
			if err != nil {
				t.Fatal(err)
			}
			var job string // the job's own conversion, not the probe's
			for _, l := range strings.Split(strings.TrimSpace(string(converts)), "\n") {
				if strings.Contains(l, ".disk0.qcow2.") {
					job = l
				}
			}
			wantArgs := "-c -o compression_type=" + tt.wantCodec
			if !strings.Contains(job, "-m 2") || !strings.Contains(job, wantArgs) || strings.Contains(" "+job+" ", " -W ") != tt.wantW {
				t.Errorf("the job's conversion ran %q, want -m 2, %q and -W %v", job, wantArgs, tt.wantW)
			}
		})
	}
}

// TestCoroutines: -m is the cores shared among the jobs run at once, at
// least 1, unless set; qemu-img's limit of 16 is never passed.
func TestCoroutines(t *testing.T) {
	for _, tt := range []struct{ set, jobs, cpus, want int }{
		{0, 1, 2, 2}, {0, 2, 2, 1}, {0, 3, 2, 1}, {0, 1, 64, 16}, {0, 4, 64, 16}, {0, 8, 64, 8}, {3, 1, 2, 3}, {16, 1, 2, 16},
	} {
		if got := coroutinesFor(tt.set, tt.jobs, tt.cpus); got != tt.want {
			t.Errorf("coroutines(set %d, jobs %d, %d cores) = %d, want %d", tt.set, tt.jobs, tt.cpus, got, tt.want)
		}
	}
	d := newDirs(t)
	cfg := d.config()
	for _, bad := range []int{-1, 17} {
		cfg.Coroutines = bad
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "1 to 16") {
			t.Errorf("New with %d coroutines: %v, want refused", bad, err)
		}
	}
}
