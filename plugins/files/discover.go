package files

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/hypersdk/hyperagent/plugins"
)

var _ plugins.Discoverer = (*Source)(nil)

// imageExts are the file names taken for bare disk images. Other files
// are passed over: a .ovf's disks beside it, manifests, checksums, notes.
var imageExts = map[string]bool{".vmdk": true, ".qcow2": true, ".img": true, ".raw": true, ".vhd": true, ".vhdx": true, ".vdi": true}

// Discover lists the VMs under the folder: every .ovf descriptor (the
// images in its directory are its disks), every OVA, and every bare disk
// image elsewhere that is not an extent of a VMDK descriptor beside it.
// Hidden entries and symbolic links are passed over. Each is inspected as
// ObserveVMs does, without hashing its disks. A VM's name, for Match, is
// its file name without the extension.
func (s *Source) Discover(ctx context.Context, req plugins.DiscoverRequest) (plugins.DiscoverResponse, error) {
	var out plugins.DiscoverResponse
	if err := plugins.CheckMatch(req.Match); err != nil {
		return out, plugins.Terminal(err)
	}
	root := s.dir
	if req.Folder != "" && req.Folder != "." {
		root = filepath.Clean(filepath.Join(s.dir, req.Folder))
		if filepath.IsAbs(req.Folder) {
			root = filepath.Clean(req.Folder)
		}
		if !within(s.dir, root) {
			return out, plugins.Terminal(fmt.Errorf("folder %s: %w", req.Folder, errEscape))
		}
	}
	found, err := s.candidates(ctx, root)
	if err != nil {
		return out, err
	}
	var keep []string
	for _, rel := range found {
		if plugins.Matches(req.Match, stem(rel)) {
			keep = append(keep, rel)
		}
	}
	known := s.knownVMs(req.Known)
	out.VMs = make([]plugins.DiscoveredVM, len(keep))
	var g errgroup.Group
	g.SetLimit(observeParallel)
	for i, rel := range keep {
		g.Go(func() error {
			obs, _, err := s.look(ctx, rel)
			d := plugins.DiscoveredVM{Path: rel, Name: stem(rel), Folder: filepath.ToSlash(filepath.Dir(rel)), Observation: obs}
			if _, p, lerr := s.locate(rel); lerr == nil {
				d.NamedBy = known[p]
			}
			out.VMs[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return plugins.DiscoverResponse{}, err
	}
	return out, nil
}

// candidates walks root for VMs, returning their paths relative to the
// source's dir (slash-separated), sorted.
func (s *Source) candidates(ctx context.Context, root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p != root && hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		vms, err := dirCandidates(p)
		if err != nil {
			return err
		}
		for _, v := range vms {
			rel, err := filepath.Rel(s.dir, v)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("discover VMs in %s: %w", root, err)
	}
	sort.Strings(out)
	return out, nil
}

// dirCandidates are the VMs among one directory's regular files.
func dirCandidates(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ovfs, ovas, images []string
	for _, e := range ents {
		if !e.Type().IsRegular() || hidden(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		switch ext := strings.ToLower(filepath.Ext(e.Name())); {
		case ext == ".ovf":
			ovfs = append(ovfs, p)
		case ext == ".ova":
			ovas = append(ovas, p)
		case imageExts[ext]:
			images = append(images, p)
		}
	}
	if len(ovfs) > 0 {
		// The images beside a descriptor are its disks.
		return append(ovfs, ovas...), nil
	}
	extents := map[string]bool{}
	for _, p := range images {
		exts, err := vmdkExtents(p)
		if err != nil {
			continue // inspecting it reports the problem
		}
		for _, x := range exts {
			if x != p {
				extents[x] = true
			}
		}
	}
	out := ovas
	for _, p := range images {
		if !extents[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// knownVMs resolves the existing migrations' vm values to the files they
// name; a VM named by several gets the first address in order.
func (s *Source) knownVMs(known map[string]string) map[string]string {
	addrs := make([]string, 0, len(known))
	for a := range known {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	out := map[string]string{}
	for _, a := range addrs {
		if _, p, err := s.locate(known[a]); err == nil {
			if _, dup := out[p]; !dup {
				out[p] = a
			}
		}
	}
	return out
}

// stem is a VM file's name without its directory and extension.
func stem(rel string) string {
	base := filepath.Base(rel)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
