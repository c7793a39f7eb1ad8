package vsphere

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/nfc"
)

// leaseRenewEvery is how often the lease is renewed. vCenter drops an NFC
// lease that hears nothing for its timeout (about 5 minutes); govmomi's
// updater uses the same 2 s.
const leaseRenewEvery = 2 * time.Second

// leaseKeeper renews an export lease while its files download, reporting
// the share of bytes done. It replaces govmomi's nfc.LeaseUpdater, which
// calls vSphere with context.TODO (a dead server holds it forever), logs
// through the standard library's global logger, stops renewing after one
// failed call, and divides by zero when vSphere gives no sizes.
type leaseKeeper struct {
	done  atomic.Int64 // bytes written, all files
	total int64        // estimate; 0 when unknown

	stop chan struct{}
	wg   sync.WaitGroup
}

// keepLease starts renewing; the caller must call stop.
func keepLease(ctx context.Context, lease *nfc.Lease, info *nfc.LeaseInfo, every time.Duration, log hclog.Logger) *leaseKeeper {
	k := &leaseKeeper{stop: make(chan struct{})}
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
			case <-k.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := lease.Progress(rctx, k.percent())
			cancel()
			if err != nil && ctx.Err() == nil {
				// Keep trying: one lost renewal does not expire the lease.
				log.Warn("renew export lease", "lease", lease.Reference().Value, "error", err)
			}
		}
	}()
	return k
}

// add counts n more bytes written.
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

// close stops renewing and waits for a renewal in flight.
func (k *leaseKeeper) close() {
	close(k.stop)
	k.wg.Wait()
}
