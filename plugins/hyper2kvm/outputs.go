package hyper2kvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// outputs lists a succeeded job's converted disks, each checked to exist,
// sized and sha256'd. A full report names them; for a legacy short report
// they are found under output.directory by the manifest's disk ids.
func (c *Converter) outputs(ctx context.Context, f *jobFile, oc protocol.Outcome) ([]plugins.Output, error) {
	var arts []protocol.Artifact
	if oc.Full {
		arts = oc.Artifacts
	} else {
		data, err := fsutil.ReadRegular(f.path, maxManifest)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		m, err := protocol.ParseManifest(data, f.ext)
		if err != nil {
			return nil, err
		}
		for _, d := range m.Disks {
			arts = append(arts, protocol.Artifact{Type: "converted_disk", Path: m.OutputPath(d), DiskID: d.ID,
				Format: m.Output.Format, BootOrderHint: d.BootOrderHint})
		}
	}
	var outs []plugins.Output
	for _, a := range arts {
		if a.Type != "" && a.Type != "converted_disk" {
			continue
		}
		sum, size, err := c.hash(ctx, a.Path)
		if err != nil {
			return nil, fmt.Errorf("output %s of disk %s: %w", a.Path, a.DiskID, err)
		}
		outs = append(outs, plugins.Output{DiskID: a.DiskID, Path: a.Path, Format: a.Format, Size: size, SHA256: sum, BootOrder: a.BootOrderHint})
	}
	if len(outs) == 0 {
		return nil, fmt.Errorf("no converted disk found")
	}
	return outs, nil
}

type hashKey struct {
	path  string
	size  int64
	mtime time.Time
}

// hash returns the file's sha256 (hex) and size, computed once per
// path+size+mtime: observation runs often, and outputs are large.
func (c *Converter) hash(ctx context.Context, path string) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("not a regular file")
	}
	key := hashKey{path, fi.Size(), fi.ModTime()}
	c.mu.Lock()
	sum, ok := c.hashes[key]
	c.mu.Unlock()
	if ok {
		return sum, fi.Size(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, err
		}
	}
	sum = hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.hashes[key] = sum
	c.mu.Unlock()
	return sum, fi.Size(), nil
}
