package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// verification is how a disk's input was found to be what the manifest
// says.
type verification int

const (
	// hashed: read in full and its sha256 compared with the checksum.
	hashed verification = iota
	// byIdentity: the checksum the export computed while writing the file,
	// taken as the file's because the file is provably unchanged since
	// (identity.go).
	byIdentity
	// sizeOnly: the manifest has no checksum; only the size was compared.
	sizeOnly
)

// input is one disk's input file and how it is verified.
type input struct {
	path   string
	pinned protocol.FileIdentity // the file as it was before the conversion
	how    verification
}

// planInput decides how disk d's input at path (resolved, under an input
// root) is verified, and pins its identity. A disk without checksum has its
// size compared here; a recorded identity that cannot stand in for hashing
// is logged, and a warning added to the report when the file changed since
// its checksum was computed.
func (w *Worker) planInput(m *protocol.Manifest, d protocol.Disk, path string, rep *report) (*input, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	id := plugins.IdentityOf(fi)
	if id == nil {
		return nil, fmt.Errorf("%s: this platform gives no file identity", path)
	}
	pinned := protocol.FileIdentity(*id)
	in := &input{path: path, pinned: pinned, how: hashed}
	if d.Checksum == "" {
		if pinned.Size != d.Bytes {
			return nil, fmt.Errorf("input %s is %d bytes, the manifest says %d", path, pinned.Size, d.Bytes)
		}
		in.how = sizeOnly
		return in, nil
	}
	want, ok, err := m.Identity(d)
	if err != nil || !ok {
		return in, nil // Validate refused malformed identities: err is nil here
	}
	why := trustIdentity(path, fi, want)
	if why == "" {
		in.how = byIdentity
		return in, nil
	}
	w.log.Info("hashing the input in full: its recorded identity cannot vouch for its checksum", "disk", d.ID, "path", path, "reason", why)
	if identityDiff(pinned, want) != "" {
		rep.warn("convert", fmt.Sprintf("disk %s: %s: the input was hashed in full", d.ID, why))
	}
	return in, nil
}

// unchanged fails when the input is no longer the file it was before the
// conversion: whatever qemu-img read may not be what was verified.
func (in *input) unchanged() error {
	now, err := statIdentity(in.path)
	if err != nil {
		return fmt.Errorf("input %s: %w", in.path, err)
	}
	if why := identityDiff(now, in.pinned); why != "" {
		return fmt.Errorf("input %s changed while it was converted (%s)", in.path, why)
	}
	return nil
}

// verifyInput reads the input in full and checks its size and sha256
// against the manifest.
func (w *Worker) verifyInput(ctx context.Context, path string, d protocol.Disk) error {
	f, err := w.openInput(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	if n != d.Bytes {
		return fmt.Errorf("input %s is %d bytes, the manifest says %d", path, n, d.Bytes)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Checksum {
		return fmt.Errorf("input %s checksum mismatch: file has %s, the manifest says %s", path, got, d.Checksum)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
