package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// leaseRenewEvery is how often the lease is renewed. vCenter drops an NFC
// lease that hears nothing for its timeout (about 5 minutes); govmomi's
// updater uses the same 2 s.
const leaseRenewEvery = 2 * time.Second

// waitLease polls the lease until it is ready and returns its device URLs.
// It replaces nfc.Lease.Wait, whose long poll (WaitForUpdatesEx) no call
// deadline can bound and whose cancellation cleans up with an unbounded
// context.
func (s *Source) waitLease(ctx context.Context, c *vim25.Client, lease *nfc.Lease) (*nfc.LeaseInfo, error) {
	var l mo.HttpNfcLease
	pc := property.DefaultCollector(c)
	err := s.poll(ctx, "export lease", s.timing.wait, func(ctx context.Context) (bool, error) {
		l = mo.HttpNfcLease{}
		if err := pc.RetrieveOne(ctx, lease.Reference(), []string{"state", "info", "error"}, &l); err != nil {
			return false, err
		}
		switch l.State {
		case types.HttpNfcLeaseStateInitializing:
			return false, nil
		case types.HttpNfcLeaseStateReady:
			if l.Info == nil {
				return true, errors.New("the lease is ready but lists no device URLs")
			}
			return true, nil
		case types.HttpNfcLeaseStateError:
			if l.Error != nil {
				return true, &task.Error{LocalizedMethodFault: l.Error}
			}
		}
		return true, fmt.Errorf("the lease is %s", l.State)
	})
	if err != nil {
		return nil, err
	}
	return leaseInfo(c, l.Info)
}

// leaseInfo lists the lease's device URLs as nfc.Lease.Wait would: a "*"
// host (ESXi) becomes the host connected to, and a host's thumbprint is
// pinned for its URLs. FileItem.Size is the size vSphere gives for the
// file, which it gives only for files that are not disks; 0 otherwise.
func leaseInfo(c *vim25.Client, li *types.HttpNfcLeaseInfo) (*nfc.LeaseInfo, error) {
	info := &nfc.LeaseInfo{HttpNfcLeaseInfo: *li}
	for _, d := range li.DeviceUrl {
		u, err := c.ParseURL(d.Url)
		if err != nil {
			return nil, fmt.Errorf("the lease's device URL for %s does not parse", d.Key)
		}
		if d.SslThumbprint != "" {
			c.SetThumbprint(u.Host, d.SslThumbprint)
		}
		item := types.OvfFileItem{DeviceId: d.Key, Path: d.TargetId, Size: max(d.FileSize, 0)}
		if item.Path == "" {
			item.Path = path.Base(u.Path)
		}
		info.Items = append(info.Items, nfc.NewFileItem(u, item))
	}
	return info, nil
}

// leaseKeeper renews an export lease while its files download, reporting
// the share of bytes done. It replaces govmomi's nfc.LeaseUpdater, which
// calls vSphere with context.TODO (a dead server holds it forever), logs
// through the standard library's global logger, stops renewing after one
// failed call, and divides by zero when vSphere gives no sizes.
type leaseKeeper struct {
	done  atomic.Int64 // bytes received, all files, retries included
	total int64        // estimate; 0 when unknown

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// keepLease starts renewing; the caller must call close.
func keepLease(ctx context.Context, lease *nfc.Lease, info *nfc.LeaseInfo, every time.Duration, log hclog.Logger) *leaseKeeper {
	ctx, cancel := context.WithCancel(ctx)
	k := &leaseKeeper{cancel: cancel, total: info.TotalDiskCapacityInKB * 1024}
	for _, it := range info.Items {
		k.total += it.Size
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The session's call deadline bounds each renewal.
			err := lease.Progress(ctx, k.percent())
			if err != nil && ctx.Err() == nil {
				// Keep trying: one lost renewal does not expire the lease.
				log.Warn("renew export lease", "lease", lease.Reference().Value, "error", err)
			}
		}
	}()
	return k
}

// add counts n more bytes received.
func (k *leaseKeeper) add(n int64) { k.done.Add(n) }

// percent is the share done, 0–100. A streamOptimized export is smaller
// than the disks' capacity, which vSphere reports as the size, so the
// share stays low until the end; it only has to keep the lease alive.
func (k *leaseKeeper) percent() int32 {
	if k.total <= 0 {
		return 0
	}
	return int32(min(100, 100*k.done.Load()/k.total))
}

// close stops renewing, cancelling a renewal in flight.
func (k *leaseKeeper) close() {
	k.cancel()
	k.wg.Wait()
}
