// Command vsphere-bench measures the vSphere source's export against
// govmomi's simulator.
//
//	vsphere-bench serve [-size-mib 1024]   serve vcsim with one powered-off VM whose disk holds
//	                                      size-mib of seeded bytes; print GOVC_URL, GOVC_THUMBPRINT,
//	                                      VM, DISK and SHA256 lines, then READY; run until SIGINT
//	                                      or SIGTERM
//	vsphere-bench export -dir DIR -sha256 HEX
//	                                      export $VM through the vsphere source, configured only
//	                                      from govc's environment; verify the disk's sha256; print
//	                                      seconds, bytes and MB/s
//	vsphere-bench fetch -dir DIR          the transport baseline: open the lease and copy each
//	                                      device URL to a file (io.Copy, fsync), nothing else
//
// bench/vsphere/export.sh runs both beside a raw copy and `govc export.ovf`.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

const vmName = "DC0_H0_VM0"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: vsphere-bench serve|export|fetch [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "export":
		err = export(os.Args[2:])
	case "fetch":
		err = fetch(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vsphere-bench:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sizeMiB := fs.Int64("size-mib", 1024, "disk size to seed, MiB")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{Listen: *listen})
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx := context.Background()
	ref, err := srv.FindVM(vmName)
	if err != nil {
		return err
	}
	if err := powerOff(ctx, srv, ref); err != nil {
		return err
	}
	if err := srv.MakeExportable(ref); err != nil {
		return err
	}
	// ChaCha8 bytes: incompressible, so no layer can shortcut them.
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{42}), *sizeMiB<<20), h)
	if _, err := srv.Seed(ref, 0, src); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	disk, err := srv.DiskFile(ref, 0)
	if err != nil {
		return err
	}
	fmt.Printf("GOVC_URL=%s\nGOVC_THUMBPRINT=%s\nVM=/DC0/vm/%s\nDISK=%s\nSHA256=%s\nREADY\n",
		srv.GovcURL(), srv.Thumbprint, vmName, disk, hex.EncodeToString(h.Sum(nil)))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// powerOff powers the VM off through the API: ExportVm, ours and govc's,
// needs it off, and the benchmark times the export alone.
func powerOff(ctx context.Context, srv *vcsimtest.Server, ref types.ManagedObjectReference) error {
	c, err := srv.Client(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Logout(ctx) }()
	task, err := object.NewVirtualMachine(c.Client, ref).PowerOff(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

func export(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	dir := fs.String("dir", "", "export directory")
	want := fs.String("sha256", "", "expected sha256 of the disk")
	disks := fs.Int("parallel-disks", 2, "max_parallel_disks")
	level := fs.String("log-level", "warn", "the source's log level (trace, debug, info, warn, error)")
	var prof profiles
	prof.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	vmPath := os.Getenv("VM")
	if *dir == "" || vmPath == "" {
		return errors.New("export needs -dir and $VM (and GOVC_URL, GOVC_THUMBPRINT)")
	}
	cfg := map[string]cty.Value{}
	for _, a := range vsphere.BlockSchema.Attributes {
		cfg[a.Name] = cty.NullVal(a.Type)
	}
	cfg["max_parallel_disks"] = cty.NumberIntVal(int64(*disks))
	log := hclog.New(&hclog.LoggerOptions{Name: "vsphere", Output: os.Stderr, Level: hclog.LevelFromString(*level)})
	ctx := context.Background()
	v, err := vsphere.Factory().New(ctx, plugins.NewRequest{
		Addr: addrs.Plugin{Kind: addrs.KindSource, Type: vsphere.Type, Name: "bench"}, Config: cty.ObjectVal(cfg), Logger: log})
	if err != nil {
		return err
	}
	src := v.(plugins.Source)
	defer func() { _ = v.(plugins.Closer).Close() }()
	var events atomic.Int64
	stop, err := prof.start()
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := src.Export(ctx, plugins.ExportRequest{
		Address: "migration.bench", VM: vmPath, Dir: *dir,
		Settings: schema.ExportSettings{Dir: *dir},
		Progress: func(plugins.ProgressEvent) { events.Add(1) },
	})
	elapsed := time.Since(start)
	if perr := stop(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if len(res.Export.Disks) != 1 {
		return fmt.Errorf("exported %d disks, want 1", len(res.Export.Disks))
	}
	d := res.Export.Disks[0]
	if *want != "" && d.SHA256 != *want {
		return fmt.Errorf("disk sha256 %s, want %s", d.SHA256, *want)
	}
	fmt.Printf("seconds=%.3f bytes=%d MBps=%.1f progress_events=%d\n",
		elapsed.Seconds(), d.Size, float64(d.Size)/1e6/elapsed.Seconds(), events.Load())
	return nil
}
