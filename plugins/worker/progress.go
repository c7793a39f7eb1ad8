package worker

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// The progress file (protocol.Progress): how far this worker is with a
// job it claimed, for the converter to read while it awaits the job. The
// figures are the job's input bytes (the disks' manifest bytes): the disks
// converted count whole, and the disk under way counts by the share
// qemu-img convert -p reports of it. That share is of the disk's sectors
// (unallocated ones go fast), so the bytes are an estimate in the middle
// of a disk and exact at its end.
//
// The file is rewritten by a goroutine of the job's own, at most every
// Config.ProgressInterval and only when the figures moved, and once more
// at once when the last byte is converted; the conversion never waits for
// it. It is written to a temp file renamed over the old one, so a reader
// sees a whole file, but neither is fsynced: the file says nothing that
// must survive a crash (after one, a leftover names a lease that is gone,
// and a torn one does not parse), and an fsync twice a second per job
// would add flushes to the disk the conversions write to.
//
// Only the holder of the job's lease touches the file while the job is
// claimed: it removes it once it sealed its lease (finish, hand back), and
// a worker that takes the job back from a dead holder removes it with the
// job (handBack). A holder that lost its job leaves the file to the new
// holder, whose claim has another token. What is left by a process that
// died is removed with the orphaned leases (reclaim.go).

// jobProgress publishes one claim's progress; nil publishes nothing (a
// job whose disks' bytes add up to nothing).
type jobProgress struct {
	w     *Worker
	path  string
	tmp   string
	file  protocol.Progress // Job, Token, TotalBytes fixed
	every time.Duration

	mu      sync.Mutex
	base    int64   // the bytes of the disks converted
	cur     int64   // the bytes of the disk under way
	share   float64 // of it done, 0 to 1
	written int64   // done_bytes last written, -1 before the first write

	now  chan struct{} // capacity 1: write at once (the last byte)
	stop chan struct{}
	done chan struct{}
}

// startProgress starts publishing c's progress over disks, whose manifest
// bytes are the total.
func (w *Worker) startProgress(c *claim, disks []protocol.Disk) *jobProgress {
	var total int64
	for _, d := range disks {
		if d.Bytes < 0 || total+d.Bytes < total {
			return nil
		}
		total += d.Bytes
	}
	if total <= 0 {
		return nil
	}
	path := w.dir(protocol.DirProcessing, protocol.ProgressName(c.name))
	p := &jobProgress{w: w, path: path, tmp: path + "." + c.lease.token + ".tmp", every: w.cfg.ProgressInterval,
		file:    protocol.Progress{Version: protocol.ProgressVersion, Job: c.name, Token: c.lease.token, TotalBytes: total},
		written: -1, now: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// disk says the conversion of d starts: the disks before it are done.
func (p *jobProgress) disk(d protocol.Disk) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base += p.cur
	p.cur, p.share, p.file.Disk = d.Bytes, 0, d.ID
}

// converted takes the share of the disk under way that qemu-img reports
// done. It never goes back (a conversion that starts over, without
// io_uring, does not unconvert the bytes before it).
func (p *jobProgress) converted(share float64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if share > p.share {
		p.share = min(share, 1)
	}
	last := p.doneLocked() == p.file.TotalBytes
	p.mu.Unlock()
	if last {
		select {
		case p.now <- struct{}{}:
		default:
		}
	}
}

func (p *jobProgress) doneLocked() int64 {
	return min(p.base+int64(p.share*float64(p.cur)), p.file.TotalBytes)
}

// run writes the file until end: a whole interval after each look, or at
// once for the last byte.
func (p *jobProgress) run() {
	defer close(p.done)
	t := time.NewTimer(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.now:
			t.Stop()
		}
		p.write()
		t.Reset(p.every)
	}
}

// write writes the file when the figures moved since the last write.
func (p *jobProgress) write() {
	p.mu.Lock()
	f := p.file
	f.DoneBytes = p.doneLocked()
	moved := f.DoneBytes != p.written
	p.written = f.DoneBytes
	p.mu.Unlock()
	if !moved {
		return
	}
	f.UpdatedAt = time.Now().UTC()
	b, err := f.Marshal()
	if err == nil {
		err = replaceFile(p.tmp, p.path, b)
	}
	if err != nil {
		p.w.log.Debug("progress file", "path", p.path, "error", err)
		return
	}
	p.w.testHook("progress", p.path)
}

// replaceFile puts data at path through tmp and a rename, without fsync
// (see above).
func replaceFile(tmp, path string, data []byte) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// end stops the writes; the file stays until the lease is sealed
// (removeProgress).
func (p *jobProgress) end() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	os.Remove(p.tmp)
}

// removeProgress removes the progress file of the job processing/<name>.
// The caller holds the job: it sealed the lease, or took it away.
func (w *Worker) removeProgress(name string) {
	p := w.dir(protocol.DirProcessing, protocol.ProgressName(name))
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Warn("progress file", "path", p, "error", err)
	}
}

// progressRecord is one record qemu-img convert -p prints:
// "    (12.34/100%)", records separated by \r, the last one ending in \n.
var progressRecord = regexp.MustCompile(`^\s*\(([0-9]{1,3}(?:\.[0-9]{1,6})?)/100%\)\s*$`)

// maxRecord bounds a record kept while its end has not come: qemu-img's
// are under 20 bytes, and anything longer is not one.
const maxRecord = 64

// progressParser is qemu-img convert -p's stdout: it passes each share
// done (0 to 1) to report, and ignores whatever is not a progress record.
type progressParser struct {
	report func(share float64)
	rec    []byte
	long   bool // the record under way overflowed maxRecord
}

func (pp *progressParser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			pp.keep(b)
			break
		}
		pp.keep(b[:i])
		pp.end()
		b = b[i+1:]
	}
	return n, nil
}

func (pp *progressParser) keep(b []byte) {
	if pp.long || len(pp.rec)+len(b) > maxRecord {
		pp.long, pp.rec = true, pp.rec[:0]
		return
	}
	pp.rec = append(pp.rec, b...)
}

func (pp *progressParser) end() {
	rec, long := pp.rec, pp.long
	pp.rec, pp.long = pp.rec[:0], false
	if long {
		return
	}
	m := progressRecord.FindSubmatch(rec)
	if m == nil {
		return
	}
	pct, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || pct < 0 || pct > 100 {
		return
	}
	pp.report(pct / 100)
}

// progressEntry reports whether a processing/ entry is a progress file
// (.<name>.progress.json) or one of its temp files
// (.<name>.progress.json.<token>.tmp), and the job file name it is for.
func progressEntry(entry string) (name string, ok bool) {
	const suffix = ".progress.json"
	i := strings.Index(entry, suffix)
	if i < 2 || entry[0] != '.' {
		return "", false
	}
	if rest := entry[i+len(suffix):]; rest != "" && !(strings.HasPrefix(rest, ".") && strings.HasSuffix(rest, ".tmp")) {
		return "", false
	}
	return entry[1:i], true
}
