package files

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// extentRe matches an extent line of a VMDK descriptor:
// RW 16777216 FLAT "disk-flat.vmdk" 0
var extentRe = regexp.MustCompile(`^(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]+)"`)

// vmdkExtents returns the extent files a text VMDK descriptor names, as
// absolute paths beside it; nil for any other file. A descriptor is only
// the map: the data is in its extents, which belong to the disk.
func vmdkExtents(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, len("# Disk DescriptorFile"))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != "# Disk DescriptorFile" {
		return nil, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		m := extentRe.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if err := checkHref(m[1]); err != nil {
			return nil, fmt.Errorf("VMDK descriptor %s: extent: %w", p, err)
		}
		out = append(out, filepath.Join(filepath.Dir(p), filepath.FromSlash(m[1])))
	}
	return out, sc.Err()
}
