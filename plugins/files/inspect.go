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

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/diskimage"
)

// vmView is one VM as the files show it.
type vmView struct {
	kind        vmKind
	path        string // the descriptor, the OVA, or the image
	root        string // every file of the VM must resolve inside it
	facts       plugins.VMFacts
	files       []string // what makes up the VM on disk, absolute
	disks       []string // absolute disk paths in boot order (not for an OVA)
	fingerprint string
	findings    []plugins.Finding
}

// inspect locates vm and reads its facts without copying anything.
func (s *Source) inspect(ctx context.Context, vm string) (vmView, error) {
	kind, p, err := s.locate(vm)
	if err != nil {
		return vmView{}, err
	}
	v := vmView{kind: kind, path: p, root: s.dir}
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
		if err := contained(v.root, mf); err != nil {
			return err
		}
		v.files = append(v.files, mf)
	}
	base := filepath.Dir(v.path)
	for i, href := range vm.Files {
		if err := checkHref(href); err != nil {
			return fmt.Errorf("%s: %w", v.path, err)
		}
		dp := filepath.Join(base, filepath.FromSlash(href))
		if err := contained(v.root, dp); err != nil {
			return err
		}
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
		if err := contained(v.root, e); err != nil {
			v.findings = append(v.findings, errFinding("VMDK extent refused", err))
			continue
		}
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
	format, capacity, err := diskimage.Probe(v.path)
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

// fingerprint is the sha256 of every file's name, size, mtime, change time
// and inode: it moves whenever a file is replaced or rewritten, without
// reading any content — also when the writer sets the mtime back, which
// the change time does not allow.
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
		id := identity(fi)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d\n", rel, id.Size, id.MtimeNS, id.CtimeNS, id.Ino)
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

// contained refuses p when it resolves (through symbolic links) outside
// root: a disk beside the OVF that links to /etc/shadow is not a disk. A
// missing p passes; the caller reports it as missing.
func contained(root, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	if !within(r, real) {
		return fmt.Errorf("%s resolves to %s: %w", p, real, errEscape)
	}
	return nil
}
