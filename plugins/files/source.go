package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/hypersdk/hyperagent/plugins"
)

// Source serves VMs from files that were exported already. It is safe for
// concurrent use.
type Source struct {
	dir   string
	cfg   Config
	log   hclog.Logger
	cache *hashCache
}

var (
	_ plugins.Source  = (*Source)(nil)
	_ plugins.Limited = (*Source)(nil)
)

// New checks cfg and returns a Source; it reads nothing yet.
func New(cfg Config, log hclog.Logger) (*Source, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return nil, plugins.Terminal(fmt.Errorf("source %q: dir %q must be an absolute path", Type, cfg.Dir))
	}
	if cfg.MaxParallelExports < 0 {
		return nil, plugins.Terminal(fmt.Errorf("source %q: max_parallel_exports must not be negative", Type))
	}
	return &Source{
		dir:   filepath.Clean(cfg.Dir),
		cfg:   cfg,
		log:   log,
		cache: &hashCache{file: cfg.HashCache},
	}, nil
}

// Limits implements plugins.Limited.
func (s *Source) Limits() plugins.Limits {
	return plugins.Limits{MaxParallel: s.cfg.MaxParallelExports}
}

// vmView is one VM as the files show it.
type vmView struct {
	kind        vmKind
	path        string // the descriptor, the OVA, or the image
	facts       plugins.VMFacts
	files       []string // what makes up the VM on disk, absolute
	disks       []string // absolute disk paths in boot order (not for an OVA)
	fingerprint string
	findings    []plugins.Finding
}

// ObserveVMs implements plugins.Source. Per-VM problems are findings, not
// errors: a missing file must not hide the other VMs.
func (s *Source) ObserveVMs(ctx context.Context, req plugins.ObserveVMsRequest) (plugins.ObserveVMsResponse, error) {
	resp := plugins.ObserveVMsResponse{VMs: map[string]plugins.VMObservation{}}
	obs := make([]plugins.VMObservation, len(req.VMs))
	// VMs are independent; on NFS each stat is a round trip, so several
	// are looked at at once.
	var g errgroup.Group
	g.SetLimit(observeParallel)
	for i, q := range req.VMs {
		g.Go(func() error {
			o, err := s.observeOne(ctx, q.Path)
			obs[i] = o
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return resp, err
	}
	for i, q := range req.VMs {
		resp.VMs[q.Address] = obs[i]
	}
	if err := s.cache.save(); err != nil {
		s.log.Warn("hash cache not saved", "file", s.cfg.HashCache, "error", err)
	}
	return resp, nil
}

// observeParallel bounds the VMs observed at once.
const observeParallel = 8

// observeOne looks at one VM; only a cancelled context is an error.
func (s *Source) observeOne(ctx context.Context, vm string) (plugins.VMObservation, error) {
	if err := ctx.Err(); err != nil {
		return plugins.VMObservation{}, err
	}
	v, err := s.inspect(ctx, vm)
	switch {
	case errors.Is(err, errEscape):
		return plugins.VMObservation{Findings: []plugins.Finding{errFinding("VM path refused", err)}}, nil
	case errors.Is(err, os.ErrNotExist):
		return plugins.VMObservation{Findings: []plugins.Finding{errFinding("VM files not found", err)}}, nil
	case ctx.Err() != nil:
		return plugins.VMObservation{}, ctx.Err()
	case err != nil:
		return plugins.VMObservation{Found: true, Findings: []plugins.Finding{errFinding("VM files unreadable", err)}}, nil
	}
	obs := plugins.VMObservation{Found: true, Fingerprint: v.fingerprint, Facts: v.facts, Findings: v.findings}
	for _, f := range v.files {
		if v.kind == kindOVA {
			// Export hashes an OVA's members while unpacking them; the
			// archive's own digest would serve nothing.
			break
		}
		if _, err := s.cache.sum(ctx, f, nil); err != nil {
			if ctx.Err() != nil {
				return plugins.VMObservation{}, ctx.Err()
			}
			obs.Findings = append(obs.Findings, errFinding("cannot hash "+filepath.Base(f), err))
		}
	}
	return obs, nil
}

func noDisks(p string) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityError, Summary: "the OVF declares no disks", Detail: p + " has no disk items to convert"}
}

func errFinding(summary string, err error) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityError, Summary: summary, Detail: err.Error()}
}

// inspect locates vm and reads its facts without copying anything.
func (s *Source) inspect(ctx context.Context, vm string) (vmView, error) {
	kind, p, err := s.locate(vm)
	if err != nil {
		return vmView{}, err
	}
	v := vmView{kind: kind, path: p}
	switch kind {
	case kindOVF:
		err = s.inspectOVF(&v)
	case kindOVA:
		err = s.inspectOVA(ctx, &v)
	case kindImage:
		err = inspectImage(&v)
	}
	if err != nil {
		return vmView{}, err
	}
	v.fingerprint, err = fingerprint(s.dir, v.files)
	return v, err
}

func (s *Source) inspectOVF(v *vmView) error {
	f, err := os.Open(v.path)
	if err != nil {
		return err
	}
	env, err := parseOVF(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	vm, err := env.facts()
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	v.facts = vm.Facts
	v.files = []string{v.path}
	if len(vm.Files) == 0 {
		v.findings = append(v.findings, noDisks(v.path))
	}
	if mf := manifestPath(v.path); fileExists(mf) {
		v.files = append(v.files, mf)
	}
	base := filepath.Dir(v.path)
	for i, href := range vm.Files {
		if err := checkHref(href); err != nil {
			return fmt.Errorf("%s: %w", v.path, err)
		}
		dp := filepath.Join(base, filepath.FromSlash(href))
		v.disks = append(v.disks, dp)
		if !fileExists(dp) {
			v.findings = append(v.findings, plugins.Finding{
				Severity: plugins.SeverityError,
				Summary:  fmt.Sprintf("disk %s is missing", href),
				Detail:   fmt.Sprintf("%s names disk %s (%s) in %s, which does not exist", filepath.Base(v.path), vm.Facts.Disks[i].ID, href, base),
			})
			continue
		}
		if want := vm.Sizes[i]; want > 0 {
			if fi, err := os.Stat(dp); err == nil && fi.Size() != want {
				v.findings = append(v.findings, plugins.Finding{
					Severity: plugins.SeverityError,
					Summary:  fmt.Sprintf("disk %s is incomplete", href),
					Detail:   fmt.Sprintf("%s is %d bytes; %s says %d", dp, fi.Size(), filepath.Base(v.path), want),
				})
			}
		}
		v.files = append(v.files, dp)
		v.addExtents(dp)
	}
	return nil
}

// addExtents adds the extent files of a VMDK descriptor disk to the VM's
// files, with a finding for each that is missing.
func (v *vmView) addExtents(disk string) {
	exts, err := vmdkExtents(disk)
	if err != nil {
		v.findings = append(v.findings, errFinding("VMDK descriptor unreadable", err))
		return
	}
	for _, e := range exts {
		if !fileExists(e) {
			v.findings = append(v.findings, plugins.Finding{
				Severity: plugins.SeverityError,
				Summary:  fmt.Sprintf("extent %s is missing", filepath.Base(e)),
				Detail:   fmt.Sprintf("%s names extent %s, which does not exist", disk, e),
			})
			continue
		}
		v.files = append(v.files, e)
	}
}

func (s *Source) inspectOVA(ctx context.Context, v *vmView) error {
	idx, err := readOVAIndex(ctx, v.path)
	if err != nil {
		return err
	}
	vm, err := idx.Envelope.facts()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", v.path, idx.OVF, err)
	}
	v.facts = vm.Facts
	v.files = []string{v.path}
	if len(vm.Files) == 0 {
		v.findings = append(v.findings, noDisks(v.path))
	}
	base := pathDir(idx.OVF)
	for _, href := range vm.Files {
		if err := checkHref(href); err != nil {
			return fmt.Errorf("%s: %w", v.path, err)
		}
		if _, ok := idx.Members[path.Join(base, href)]; !ok {
			v.findings = append(v.findings, plugins.Finding{
				Severity: plugins.SeverityError,
				Summary:  fmt.Sprintf("disk %s is missing", href),
				Detail:   fmt.Sprintf("%s names %s, which %s does not hold", idx.OVF, href, filepath.Base(v.path)),
			})
		}
	}
	return nil
}

// inspectImage describes a bare disk: one disk and what its header says.
// The image carries no CPU, memory, firmware or NIC facts: the migration's
// domain block has to give them.
func inspectImage(v *vmView) error {
	format, capacity, err := probe(v.path)
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(v.path), filepath.Ext(v.path))
	v.facts = plugins.VMFacts{
		Name: name, OSFamily: "unknown", Firmware: "unknown",
		Disks: []plugins.DiskFact{{ID: "disk-0", Label: filepath.Base(v.path), CapacityBytes: capacity, Backing: format}},
		NICs:  []plugins.NIC{},
	}
	v.files = []string{v.path}
	v.disks = []string{v.path}
	v.addExtents(v.path)
	return nil
}

// fingerprint is the sha256 of every file's name, size and mtime: it moves
// whenever a file is replaced or rewritten, without reading any content.
func fingerprint(dir string, files []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			rel = f
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", rel, fi.Size(), fi.ModTime().UnixNano())
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// manifestPath is the .mf that accompanies an .ovf of the same stem.
func manifestPath(ovf string) string {
	return strings.TrimSuffix(ovf, filepath.Ext(ovf)) + ".mf"
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func pathDir(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[:i]
	}
	return ""
}
