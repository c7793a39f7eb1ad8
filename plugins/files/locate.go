package files

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// vmKind is what a migration's vm names.
type vmKind int

const (
	kindOVF   vmKind = iota + 1 // an .ovf descriptor with its disks beside it
	kindOVA                     // a tar holding a descriptor and disks
	kindImage                   // one bare disk image
)

func (k vmKind) String() string {
	return map[vmKind]string{kindOVF: "OVF", kindOVA: "OVA", kindImage: "disk image"}[k]
}

// errEscape marks a vm path that leaves the source's dir.
var errEscape = errors.New("outside the source's dir")

// locate resolves vm (relative to dir, or absolute inside it) and says what
// it is. Symbolic links are resolved before the containment check, so a
// link inside dir that points elsewhere is refused as well. A missing path
// gives an error wrapping os.ErrNotExist.
func (s *Source) locate(vm string) (vmKind, string, error) {
	if vm == "" {
		return 0, "", fmt.Errorf("vm is empty")
	}
	p := vm
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.dir, p)
	}
	p = filepath.Clean(p)
	if !within(s.dir, p) {
		return 0, "", fmt.Errorf("%s: %w", vm, errEscape)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", vm, err)
	}
	root, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		return 0, "", fmt.Errorf("dir %s: %w", s.dir, err)
	}
	if !within(root, real) {
		return 0, "", fmt.Errorf("%s resolves to %s: %w", vm, real, errEscape)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", vm, err)
	}
	if fi.IsDir() {
		ovf, err := findOVF(real)
		return kindOVF, ovf, err
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("%s is not a regular file", vm)
	}
	switch strings.ToLower(filepath.Ext(real)) {
	case ".ovf":
		return kindOVF, real, nil
	case ".ova":
		return kindOVA, real, nil
	}
	if isTar(real) {
		return kindOVA, real, nil
	}
	return kindImage, real, nil
}

// findOVF finds the one descriptor in an OVF directory.
func findOVF(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range ents {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".ovf") && !strings.HasPrefix(e.Name(), ".") {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("directory %s holds no .ovf file: %w", dir, os.ErrNotExist)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("directory %s holds %d .ovf files; name one", dir, len(found))
}

// within reports whether p is root or below it (both clean).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// isTar reports whether path carries the POSIX tar magic of an OVA.
func isTar(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := f.ReadAt(b, 257); err != nil {
		return false
	}
	return string(b) == "ustar"
}
