package files

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/diskimage"
)

// Export implements plugins.Source. The files are exported already, so it
// copies nothing: it validates them, hashes them (through the cache), and
// unpacks an OVA into req.Dir. It never deletes or modifies the user's files.
func (s *Source) Export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResponse, error) {
	res, err := s.export(ctx, req)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			// Wrong, missing or hostile files: retrying does not fix them.
			err = plugins.Terminal(err)
		}
		return plugins.ExportResponse{}, err
	}
	if err := s.cache.save(); err != nil {
		s.log.Warn("hash cache not saved", "file", s.cfg.HashCache, "error", err)
	}
	return plugins.ExportResponse{Export: res}, nil
}

func (s *Source) export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResult, error) {
	v, err := s.inspect(ctx, req.VM)
	if err != nil {
		return plugins.ExportResult{}, err
	}
	if err := firstError(v.findings); err != nil {
		return plugins.ExportResult{}, err
	}
	dir := filepath.Dir(v.path)
	progress := func(item string, total int64) func(int64) {
		return func(done int64) {
			req.Progress(plugins.ProgressEvent{Address: req.Address, Item: item, Done: done, Total: total})
		}
	}
	if v.kind == kindOVA {
		if req.Dir == "" {
			return plugins.ExportResult{}, fmt.Errorf("an OVA is unpacked, and the export has no dir")
		}
		idx, err := readOVAIndex(ctx, v.path)
		if err != nil {
			return plugins.ExportResult{}, err
		}
		sums, err := unpackOVA(ctx, v.path, req.Dir, idx, func(item string, done, total int64) {
			progress(item, total)(done)
		})
		if err != nil {
			return plugins.ExportResult{}, err
		}
		for p, sum := range sums {
			s.cache.put(p, sum)
		}
		s.log.Info("OVA unpacked", "address", req.Address, "ova", v.path, "dir", req.Dir, "files", len(sums))
		unpacked := vmView{kind: kindOVF, path: filepath.Join(req.Dir, filepath.FromSlash(idx.OVF)), root: req.Dir}
		if err := s.inspectOVF(&unpacked); err != nil {
			return plugins.ExportResult{}, err
		}
		if err := firstError(unpacked.findings); err != nil {
			return plugins.ExportResult{}, err
		}
		unpacked.fingerprint = v.fingerprint // of the VM as the user keeps it
		v, dir = unpacked, req.Dir
	}

	res := plugins.ExportResult{Dir: dir, Facts: v.facts, Fingerprint: v.fingerprint, ExportedAt: time.Now().UTC()}
	sums := map[string]string{}
	for _, f := range v.files {
		fi, err := os.Stat(f)
		if err != nil {
			return plugins.ExportResult{}, err
		}
		sum, err := s.cache.sum(ctx, f, progress(filepath.Base(f), fi.Size()))
		if err != nil {
			return plugins.ExportResult{}, err
		}
		sums[f] = sum
		res.Files = append(res.Files, plugins.File{Path: f, Size: fi.Size(), SHA256: sum})
	}
	if v.kind == kindOVF {
		if err := verifyManifest(manifestPath(v.path), sums); err != nil {
			return plugins.ExportResult{}, err
		}
	}
	for i, dp := range v.disks {
		format, _, err := diskimage.Probe(dp)
		if err != nil {
			return plugins.ExportResult{}, err
		}
		fi, err := os.Stat(dp)
		if err != nil {
			return plugins.ExportResult{}, err
		}
		fact := v.facts.Disks[i]
		res.Disks = append(res.Disks, plugins.Disk{
			ID: fact.ID, Path: dp, Format: format, Size: fi.Size(), SHA256: sums[dp],
			BootOrder: fact.BootOrder, Label: fact.Label, CapacityBytes: fact.CapacityBytes,
		})
	}
	return res, nil
}

func firstError(fs []plugins.Finding) error {
	for _, f := range fs {
		if f.Severity == plugins.SeverityError {
			return fmt.Errorf("%s: %s", f.Summary, f.Detail)
		}
	}
	return nil
}

// mfLine is one line of an OVF manifest: "SHA256(disk1.vmdk)= 3a…".
var mfLine = regexp.MustCompile(`^(SHA1|SHA256|SHA512)\((.+)\)\s*=\s*([0-9a-fA-F]+)$`)

// verifyManifest checks the manifest's SHA256 entries against the sums of
// the files beside it. A missing manifest is fine (it is optional); SHA1
// and SHA512 entries are not checked, as nothing else computes them.
func verifyManifest(mf string, sums map[string]string) error {
	f, err := os.Open(mf)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	dir := filepath.Dir(mf)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := mfLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil || m[1] != "SHA256" {
			continue
		}
		if err := checkHref(m[2]); err != nil {
			return fmt.Errorf("manifest %s: %w", mf, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(m[2]))
		got, ok := sums[p]
		if !ok {
			continue // e.g. a certificate hyperagent does not use
		}
		if !strings.EqualFold(got, m[3]) {
			return fmt.Errorf("manifest %s: %s has sha256 %s, the manifest says %s", filepath.Base(mf), m[2], got, strings.ToLower(m[3]))
		}
	}
	return sc.Err()
}
