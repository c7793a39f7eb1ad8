package files

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// maxMembers bounds how many files an OVA may hold; real ones hold a
// descriptor, a manifest, maybe a certificate, and the disks.
const maxMembers = 1000

// ovaIndex is an OVA's table of contents, every member checked.
type ovaIndex struct {
	Members  map[string]int64 // clean name -> size
	Order    []string
	OVF      string // name of the descriptor member (the first .ovf)
	Envelope *ovfEnvelope
}

// readOVAIndex walks the tar headers (seeking over the contents), refuses
// any member that could write outside the unpack directory or is not a
// plain file, and parses the descriptor.
func readOVAIndex(ctx context.Context, p string) (*ovaIndex, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	idx := &ovaIndex{Members: map[string]int64{}}
	var total int64
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read OVA %s: %w", p, err)
		}
		name, skip, err := checkMember(hdr)
		if err != nil {
			return nil, fmt.Errorf("OVA %s: %w", p, err)
		}
		if skip {
			continue
		}
		if _, dup := idx.Members[name]; dup {
			return nil, fmt.Errorf("OVA %s: member %q appears twice", p, name)
		}
		if len(idx.Order) >= maxMembers {
			return nil, fmt.Errorf("OVA %s: more than %d members", p, maxMembers)
		}
		// A plain tar cannot hold more than its own size.
		total += hdr.Size
		if total > fi.Size() {
			return nil, fmt.Errorf("OVA %s: members claim %d bytes, more than the file's %d", p, total, fi.Size())
		}
		idx.Members[name] = hdr.Size
		idx.Order = append(idx.Order, name)
		if idx.OVF == "" && strings.EqualFold(path.Ext(name), ".ovf") {
			env, err := parseOVF(tr)
			if err != nil {
				return nil, fmt.Errorf("OVA %s: %s: %w", p, name, err)
			}
			idx.OVF, idx.Envelope = name, env
		}
	}
	if idx.OVF == "" {
		return nil, fmt.Errorf("OVA %s holds no .ovf descriptor", p)
	}
	return idx, nil
}

// checkMember returns the member's clean relative name, or skip for
// entries that carry nothing to extract (directories, pax global headers).
// Links, devices, FIFOs, sparse files, absolute names and names with ".."
// are refused: unpacking them could write outside the directory.
func checkMember(hdr *tar.Header) (name string, skip bool, err error) {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeDir, tar.TypeXGlobalHeader:
		return "", true, nil
	case tar.TypeSymlink, tar.TypeLink:
		return "", false, fmt.Errorf("member %q is a link (to %q); refused", hdr.Name, hdr.Linkname)
	default:
		return "", false, fmt.Errorf("member %q has type %q, not a regular file; refused", hdr.Name, hdr.Typeflag)
	}
	n := hdr.Name
	if n == "" || strings.ContainsAny(n, "\\\x00") || path.IsAbs(n) {
		return "", false, fmt.Errorf("member name %q is not a plain relative path; refused", n)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", false, fmt.Errorf("member name %q leaves the directory; refused", n)
		}
	}
	clean := path.Clean(n)
	if clean == "." || strings.HasPrefix(path.Base(clean), ".") {
		return "", false, fmt.Errorf("member name %q is empty or hidden; refused", n)
	}
	if hdr.Size < 0 {
		return "", false, fmt.Errorf("member %q has a negative size", n)
	}
	return clean, false, nil
}

// unpackOVA extracts every member into dir. Each one goes to a temporary
// name first and is hashed while written; only when all are complete are
// they renamed into place. It returns each extracted file's sha256 by path.
func unpackOVA(ctx context.Context, p, dir string, idx *ovaIndex, progress func(item string, done, total int64)) (_ map[string]string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	temps := map[string]string{} // final -> temp
	defer func() {
		if err != nil {
			for _, tmp := range temps {
				os.Remove(tmp)
			}
		}
	}()
	sums := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p, err)
		}
		name, skip, err := checkMember(hdr)
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p, err)
		}
		if skip {
			continue
		}
		if want, ok := idx.Members[name]; !ok || want != hdr.Size {
			return nil, fmt.Errorf("unpack %s: member %q changed since the OVA was read", p, name)
		}
		final := filepath.Join(dir, filepath.FromSlash(name))
		if _, dup := temps[final]; dup {
			return nil, fmt.Errorf("unpack %s: member %q appears twice", p, name)
		}
		tmp, sum, err := extractMember(ctx, tr, hdr.Size, final, func(done int64) { progress(name, done, hdr.Size) })
		if tmp != "" {
			temps[final] = tmp
		}
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %s: %w", p, name, err)
		}
		sums[final] = sum
	}
	dirs := map[string]bool{}
	for final, tmp := range temps {
		if err := os.Rename(tmp, final); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p, err)
		}
		delete(temps, final)
		dirs[filepath.Dir(final)] = true
	}
	for d := range dirs {
		if err := fsutil.SyncDir(d); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p, err)
		}
	}
	return sums, nil
}

// extractMember writes exactly size bytes of the current member to a
// synced temporary file beside final and returns its name and sha256.
func extractMember(ctx context.Context, r io.Reader, size int64, final string, progress func(int64)) (string, string, error) {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return "", "", err
	}
	defer tmp.Close()
	h := sha256.New()
	n, err := fsutil.CopyContext(ctx, io.MultiWriter(tmp, h), io.LimitReader(r, size), progress)
	if err != nil {
		return tmp.Name(), "", err
	}
	if n != size {
		return tmp.Name(), "", fmt.Errorf("member truncated: %d of %d bytes", n, size)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return tmp.Name(), "", err
	}
	if err := tmp.Sync(); err != nil {
		return tmp.Name(), "", err
	}
	return tmp.Name(), hex.EncodeToString(h.Sum(nil)), tmp.Close()
}
