package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// fetch is the transport baseline: log in, open the export lease and copy
// each device URL to a file with io.Copy and an fsync — no hashing, no
// pipelining, no lease renewal, no descriptor. It measures what the TLS
// stream from the simulator can deliver on this machine.
func fetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory")
	var prof profiles
	prof.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := soap.ParseURL(os.Getenv("GOVC_URL"))
	if err != nil || u == nil || *dir == "" || os.Getenv("VM") == "" {
		return errors.New("fetch needs -dir, $VM, $GOVC_URL and $GOVC_THUMBPRINT")
	}
	ctx := context.Background()
	sc := soap.NewClient(u, false)
	sc.SetThumbprint(u.Host, os.Getenv("GOVC_THUMBPRINT"))
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return err
	}
	m := session.NewManager(c)
	if err := m.Login(ctx, u.User); err != nil {
		return err
	}
	defer func() { _ = m.Logout(ctx) }()
	vm, err := find.NewFinder(c).VirtualMachine(ctx, os.Getenv("VM"))
	if err != nil {
		return err
	}
	stop, err := prof.start()
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	start := time.Now()
	lease, err := vm.Export(ctx)
	if err != nil {
		return err
	}
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	var total int64
	for _, it := range info.Items {
		n, err := copyURL(ctx, sc, it.URL, filepath.Join(*dir, path.Base(it.Path)))
		if err != nil {
			return errors.Join(err, lease.Abort(ctx, nil))
		}
		total += n
	}
	if err := lease.Complete(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("seconds=%.3f bytes=%d MBps=%.1f\n", elapsed.Seconds(), total, float64(total)/1e6/elapsed.Seconds())
	return nil
}

func copyURL(ctx context.Context, sc *soap.Client, u *url.URL, name string) (int64, error) {
	body, _, err := sc.Download(ctx, u, &soap.DefaultDownload)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
