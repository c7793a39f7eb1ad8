package vsphere

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/vim25/soap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins"
)

// leaseItem is one device URL of the lease and where it goes.
type leaseItem struct {
	fi   nfc.FileItem
	name string  // file name in the export directory
	disk *vmDisk // nil for a file that is not a disk (nvram)
}

// mediaExt are device images the lease may offer (a mounted ISO, a floppy
// image) that are not part of the VM's state and are not exported.
var mediaExt = map[string]bool{".iso": true, ".flp": true, ".img": true}

// planItems names every device URL's file and matches disk URLs to the
// VM's disks: by controller type, bus and unit when the device key says
// them (vCenter: "/vm-12/VirtualLsiLogicController0:1"), else by position
// among the disks in device order.
func planItems(info *nfc.LeaseInfo, vmDisks []vmDisk) ([]leaseItem, error) {
	byOrd := append([]vmDisk(nil), vmDisks...)
	sortByDeviceOrder(byOrd)
	used := map[string]bool{}
	var out []leaseItem
	nDisk := 0
	for i, fi := range info.Items {
		isDisk := strings.HasSuffix(fi.Path, ".vmdk")
		if i < len(info.DeviceUrl) && info.DeviceUrl[i].Disk != nil {
			isDisk = *info.DeviceUrl[i].Disk
		}
		it := leaseItem{fi: fi}
		if isDisk {
			d := matchDisk(fi.DeviceId, byOrd)
			if d == nil && nDisk < len(byOrd) {
				d = &byOrd[nDisk]
			}
			if d == nil {
				return nil, fmt.Errorf("lease offers disk %s (%s) that the VM's configuration does not list", fi.DeviceId, fi.Path)
			}
			nDisk++
			it.disk, it.name = d, d.fact.ID+".vmdk"
		} else {
			base := path.Base(fi.Path)
			if mediaExt[strings.ToLower(path.Ext(base))] {
				continue
			}
			it.name = safeName(base)
		}
		if used[it.name] {
			it.name = strconv.Itoa(i) + "-" + it.name
		}
		used[it.name] = true
		out = append(out, it)
	}
	return out, nil
}

func matchDisk(deviceID string, ds []vmDisk) *vmDisk {
	last := deviceID[strings.LastIndex(deviceID, "/")+1:]
	ctrl, unit, ok := strings.Cut(last, ":")
	if !ok {
		return nil
	}
	for i := range ds {
		if ds[i].ctrlType != "" && ctrl == ds[i].ctrlType+strconv.Itoa(int(ds[i].bus)) && unit == strconv.Itoa(int(ds[i].unit)) {
			return &ds[i]
		}
	}
	return nil
}

// fetched is one file downloaded.
type fetched struct {
	plugins.File
	requests int // GETs it took: more than one when a download was retried
	// identity is the file right after its last byte was written, fsynced
	// and renamed into place: what File.SHA256 is the hash of.
	identity *plugins.FileIdentity
}

// fetchAll downloads the items, at most limit at once. The first failure
// cancels the rest.
func (s *Source) fetchAll(ctx context.Context, sc *soap.Client, items []leaseItem, dir string, req plugins.ExportRequest, w *written, k *leaseKeeper) ([]fetched, error) {
	files := make([]fetched, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.set.disks)
	for i, it := range items {
		g.Go(func() error {
			f, err := s.fetch(gctx, sc, it, dir, req, w, k)
			if err != nil {
				return fmt.Errorf("download %s: %w", it.name, err)
			}
			files[i] = f
			return nil
		})
	}
	return files, g.Wait()
}

// fetch streams one device URL to name.part, hashing and checking as it
// writes, retrying a cut, stalled or refused download (resuming it where
// the server honours Range), then refuses a file that is not whole, and
// fsyncs and renames it into place. Whatever it leaves behind on failure
// is recorded in w for the caller's cleanup.
//
// The sha256 is of the bytes this process wrote. The file's identity
// (plugins.FileIdentity) is taken with fstat on the descriptor that wrote
// them, after the rename (a rename sets the change time): from then on,
// any change to the file changes that identity, so a converter that finds
// it unchanged may take the sha256 as the file's without reading it again.
// A change made by another writer while this one still writes (or within
// the same timestamp tick as the rename) is not seen by the identity, nor
// was it ever by the streamed hash: that was always the export's own
// window.
func (s *Source) fetch(ctx context.Context, sc *soap.Client, it leaseItem, dir string, req plugins.ExportRequest, w *written, k *leaseKeeper) (fetched, error) {
	final := filepath.Join(dir, it.name)
	part := final + ".part"
	if err := os.Remove(part); err != nil && !os.IsNotExist(err) {
		return fetched{}, err
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fetched{}, err
	}
	w.add(part)
	t := newTransfer(s, sc, it, f, &reporter{item: it.name, addr: req.Address, total: -1, progress: req.Progress, lease: k})
	start := time.Now()
	err = s.retry(ctx, "download "+it.name, func() error { return t.get(ctx) })
	if err == nil {
		err = t.whole()
	}
	streamed := time.Since(start)
	if err == nil {
		err = f.Sync()
	}
	var fi os.FileInfo
	if err == nil {
		w.add(final)
		err = os.Rename(part, final)
	}
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fetched{}, err
	}
	if fi.Size() != t.n {
		return fetched{}, fmt.Errorf("%s is %d bytes, %d were written", final, fi.Size(), t.n)
	}
	t.rep.finish(t.n)
	s.log.Debug("file downloaded", "file", it.name, "bytes", t.n, "requests", t.requests,
		"streamed", streamed, "synced", time.Since(start)-streamed)
	return fetched{File: plugins.File{Path: final, Size: t.n, SHA256: hex.EncodeToString(t.h.Sum(nil))}, requests: t.requests,
		identity: plugins.IdentityOf(fi)}, nil
}

// writeback starts writing each 32 MiB back to disk as soon as it is
// written (sync_file_range, asynchronous), so the disk works while the
// download goes on and the fsync before the rename has little left to
// wait for. Without it the kernel may hold a whole disk image dirty in
// memory until that fsync.
type writeback struct {
	f            *os.File
	off, flushed int64
}

const writebackChunk = 32 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.flushed >= writebackChunk {
		// Advisory: a failure here shows up in the fsync.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.off-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.off
	}
	return n, err
}

// reporter counts every byte received toward the lease's renewals and
// sends progress to the engine at most every 8 MiB or second, and at once
// when a download starts over.
type reporter struct {
	item     string
	addr     string
	total    int64 // the file's length when known, else -1
	progress plugins.Progress
	lease    *leaseKeeper
	last     int64
	lastT    time.Time
}

// add counts n more bytes received, done being the file's bytes so far.
func (r *reporter) add(n, done int64) {
	r.lease.add(n)
	if done >= r.last && done-r.last < 8<<20 && time.Since(r.lastT) < time.Second {
		return
	}
	r.last, r.lastT = done, time.Now()
	r.progress(plugins.ProgressEvent{Address: r.addr, Item: r.item, Done: done, Total: r.total})
}

func (r *reporter) finish(done int64) {
	r.progress(plugins.ProgressEvent{Address: r.addr, Item: r.item, Done: done, Total: done})
}

func sortByDeviceOrder(ds []vmDisk) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].ord < ds[j-1].ord; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}
