package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// BenchmarkDiscoverCommand runs `hyperagent discover` in-process against
// govmomi's simulator holding HYPERAGENT_BENCH_DISCOVER_VMS VMs (default
// 300): the whole command, from loading the repo to the formatted blocks,
// with the target (libvirt qemu:///system) asked about every new domain.
// Building the simulator's inventory takes about 15 s first.
//
//	go test -run '^$' -bench DiscoverCommand -benchtime 5x ./cmd/hyperagent/
func BenchmarkDiscoverCommand(b *testing.B) {
	n := 300
	if v := os.Getenv("HYPERAGENT_BENCH_DISCOVER_VMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			b.Fatalf("HYPERAGENT_BENCH_DISCOVER_VMS=%q: want an even number ≥ 2", v)
		}
	}
	for _, k := range []string{"GOVC_URL", "GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_INSECURE", "GOVC_THUMBPRINT", "GOVC_DATACENTER", "GOVC_TLS_CA_CERTS"} {
		b.Setenv(k, "")
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{Machine: n / 2})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dir := b.TempDir()
	repo := fmt.Sprintf(`
variable "pw" {
  sensitive = true
}
source "vsphere" "sim" {
  url        = %q
  username   = %q
  password   = var.pw
  thumbprint = %q
}
converter "hyper2kvm" "local" {
  workflow_dir = "%[4]s/wf"
  output_dir   = "%[4]s/out"
}
target "libvirt" "kvm" {
  uri         = "qemu:///system"
  storage_dir = "%[4]s/images"
}
`, srv.URL.String(), srv.Username, srv.Thumbprint, dir)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(repo), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	args := []string{"discover", "-power-off", "-export-dir=" + filepath.Join(dir, "exports"), dir}
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		e := &env{stdout: &stdout, stderr: &stderr, registry: builtinRegistry(), log: hclog.NewNullLogger(),
			environ: []string{"HYPERAGENT_VAR_pw=" + srv.Password}}
		if code := run(ctx, args, e); code != exitOK {
			b.Fatalf("discover exited %d:\n%s", code, stderr.String())
		}
		if got := strings.Count(stdout.String(), `" = "/DC0/vm/`); got != n {
			_, _ = io.Copy(os.Stderr, &stderr)
			b.Fatalf("%d VMs in the blocks, want %d", got, n)
		}
	}
}
