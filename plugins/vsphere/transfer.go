package vsphere

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/soap"

	"github.com/hypersdk/hyperagent/plugins"
)

// transfer is one device URL on its way into a .part file, across the
// GETs its retries take. Between two GETs the file keeps the bytes
// received; the next GET asks for the rest with a Range request, and
// starts over when the server answers with the whole file instead.
type transfer struct {
	s    *Source
	sc   *soap.Client
	u    *url.URL
	name string
	// fileSize is the length vSphere gives for the file (only files that
	// are not disks), or 0; capacity is the matched VM disk's, or 0.
	fileSize, capacity int64
	f                  *os.File
	rep                *reporter

	n     int64 // bytes in the file
	h     hash.Hash
	check *vmdkCheck
	// summed says h and check have seen exactly the n bytes in the file:
	// a resumed download goes on with them, else they are rebuilt from it.
	summed    bool
	length    int64  // the whole file's length as the server announced it, or -1
	framed    bool   // the last response marked its own end (length, chunks, HTTP/2)
	validator string // the first response's ETag or Last-Modified, for If-Range
	requests  int
}

func newTransfer(s *Source, sc *soap.Client, it leaseItem, f *os.File, rep *reporter) *transfer {
	t := &transfer{s: s, sc: sc, u: it.fi.URL, name: it.name, fileSize: it.fi.Size, f: f, rep: rep}
	if it.disk != nil {
		t.capacity = it.disk.fact.CapacityBytes
	}
	t.restart()
	return t
}

// restart forgets what the file held.
func (t *transfer) restart() {
	t.n, t.length, t.validator = 0, -1, ""
	t.h, t.check, t.summed = sha256.New(), newVMDKCheck(t.capacity), true
}

// get runs one GET: the whole file, or the rest of it.
func (t *transfer) get(ctx context.Context) error {
	t.requests++
	stall := t.s.timing.stall
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := retryable(fmt.Errorf("no data from %s for %s", t.u.Host, stall))
	idle := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer idle.Stop()

	from := t.n
	hdr := map[string]string{}
	if from > 0 {
		hdr["Range"] = fmt.Sprintf("bytes=%d-", from)
		if t.validator != "" {
			hdr["If-Range"] = t.validator
		}
	}
	res, err := t.sc.DownloadRequest(rctx, t.u, &soap.Download{Method: http.MethodGet, Headers: hdr})
	if err != nil {
		return t.failed(ctx, rctx, err)
	}
	defer res.Body.Close()
	if err := t.accept(res, from); err != nil {
		return err
	}
	if t.rep.total = t.length; t.fileSize > 0 {
		t.rep.total = t.fileSize
	}
	t.framed = res.ContentLength >= 0 || slices.Contains(res.TransferEncoding, "chunked") || res.ProtoMajor >= 2
	if err := t.f.Truncate(t.n); err != nil {
		return err
	}
	if _, err := t.f.Seek(t.n, io.SeekStart); err != nil {
		return err
	}
	start, moved := t.n, int64(0)
	body := idleReader{r: res.Body, t: idle, d: stall}
	n, summed, err := pipe(&writeback{f: t.f, off: start, flushed: start}, io.MultiWriter(t.h, t.check), body,
		func(done int64) {
			idle.Reset(stall) // a slow disk is not a silent server
			t.rep.add(done-moved, start+done)
			moved = done
		}, func() { cancel(errors.New("the write or the check failed")) })
	t.n, t.summed = start+n, t.summed && summed == n
	var pe *fs.PathError
	switch {
	case err == nil:
	case t.check.err != nil && errors.Is(t.check.err, errWrongDisk):
		return plugins.Terminal(t.check.err)
	case t.check.err != nil:
		return t.check.err
	case errors.As(err, &pe): // writing the file
		return err
	default:
		return t.failed(ctx, rctx, err)
	}
	if t.length >= 0 && t.n != t.length {
		return fmt.Errorf("received %d bytes of the %d the server announced", t.n, t.length)
	}
	return nil
}

// accept checks the response to a GET from byte from, and makes the file,
// hash and check ready for its body: kept after a 206 for the rest,
// emptied after a 200.
func (t *transfer) accept(res *http.Response, from int64) error {
	switch {
	case res.StatusCode == http.StatusPartialContent && from > 0:
		first, total, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok || first != from {
			t.restart()
			return retryable(fmt.Errorf("the server answered a request for the bytes from %d with %q; starting over",
				from, res.Header.Get("Content-Range")))
		}
		if !t.summed {
			if err := t.rehash(); err != nil {
				return err
			}
		}
		t.length = total
		t.s.log.Info("resuming a download", "file", t.name, "from", from, "total", total)
		return nil
	case res.StatusCode == http.StatusOK:
		if from > 0 {
			t.s.log.Info("the server sent the whole file again; starting over", "file", t.name, "had", from)
			t.restart()
		}
		t.length = res.ContentLength
		if v := res.Header.Get("ETag"); v != "" && !strings.HasPrefix(v, "W/") {
			t.validator = v
		} else if v := res.Header.Get("Last-Modified"); v != "" {
			t.validator = v
		}
		return nil
	}
	err := fmt.Errorf("%s answered %s", t.u.Host, res.Status)
	if res.StatusCode >= 500 || res.StatusCode == http.StatusRequestTimeout || res.StatusCode == http.StatusTooManyRequests {
		return retryable(err)
	}
	return err
}

// rehash rebuilds the hash and the structure check from the bytes the
// file kept, so that both cover the whole file once the rest arrives.
func (t *transfer) rehash() error {
	t.s.reread.Add(t.n)
	t.h, t.check, t.summed = sha256.New(), newVMDKCheck(t.capacity), true
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.CopyN(io.MultiWriter(t.h, t.check), t.f, t.n); err != nil {
		if errors.Is(err, errWrongDisk) {
			return plugins.Terminal(err)
		}
		return fmt.Errorf("re-read the %d bytes kept: %w", t.n, err)
	}
	return nil
}

// failed explains a GET or a body that failed: a stall, a cut connection,
// a refused one. The device URL itself is never shown: its path is the
// lease's ticket.
func (t *transfer) failed(ctx, rctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var te *transientError
	if c := context.Cause(rctx); errors.As(c, &te) {
		return fmt.Errorf("%w (after %d bytes)", c, t.n)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("connection to %s ended after %d bytes: %w", t.u.Host, t.n, err)
}

// whole says whether the file is the whole file: its own structure says
// where it ends (a sparse VMDK), or a length announced by vSphere or the
// server was met, or the response's framing marked its end. A body that
// simply stopped, with none of these, cannot be told from a cut one.
func (t *transfer) whole() error {
	err := t.check.whole()
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, errNoStructure):
		return err
	case t.fileSize > 0 && t.n != t.fileSize:
		return fmt.Errorf("received %d bytes; vSphere gives the file's size as %d", t.n, t.fileSize)
	case t.fileSize > 0, t.length >= 0, t.framed:
		return nil
	}
	return fmt.Errorf("cannot tell whether the %d bytes received are the whole file: the server announced no length and used no chunked framing, and the file's own structure cannot show its end (%v)", t.n, err)
}

// contentRange parses "bytes first-last/total"; total is -1 when "*".
func contentRange(v string) (first, total int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, size, found := strings.Cut(v, "/")
	a, _, found2 := strings.Cut(span, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return first, total, true
}

// idleReader pushes the stall deadline back with every byte read.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}
