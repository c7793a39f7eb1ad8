package files

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Disk formats, as plugins.Disk.Format names them.
const (
	formatVMDK  = "vmdk"
	formatVHD   = "vhd"
	formatVHDX  = "vhdx"
	formatQCOW2 = "qcow2"
	formatVDI   = "vdi"
	formatRaw   = "raw"
)

// probe identifies a disk image by its header, never by its name: a file
// called .img may be qcow2. What no magic matches is raw. capacity is the
// virtual size the header records (the file size for raw, 0 when the
// format keeps it somewhere this does not parse).
func probe(path string) (format string, capacity int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", 0, fmt.Errorf("read header of %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("KDMV")) && n >= 20:
		// Hosted sparse extent: capacity in sectors at offset 12.
		return formatVMDK, int64(binary.LittleEndian.Uint64(head[12:20])) * 512, nil
	case bytes.HasPrefix(head, []byte("COWD")):
		return formatVMDK, 0, nil
	case bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return formatVMDK, 0, nil
	case bytes.HasPrefix(head, []byte("QFI\xfb")) && n >= 32:
		return formatQCOW2, int64(binary.BigEndian.Uint64(head[24:32])), nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return formatVHDX, 0, nil
	case bytes.HasPrefix(head, []byte("conectix")) && n >= 56:
		// Dynamic VHD: a copy of the footer leads the file.
		return formatVHD, int64(binary.BigEndian.Uint64(head[48:56])), nil
	case n >= 0x44 && binary.LittleEndian.Uint32(head[0x40:0x44]) == 0xbeda107f:
		return formatVDI, 0, nil
	}
	// A fixed VHD is raw data followed by a 512-byte footer.
	if fi.Size() >= 512 {
		foot := make([]byte, 512)
		if _, err := f.ReadAt(foot, fi.Size()-512); err == nil && bytes.HasPrefix(foot, []byte("conectix")) {
			return formatVHD, int64(binary.BigEndian.Uint64(foot[48:56])), nil
		}
	}
	return formatRaw, fi.Size(), nil
}

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
