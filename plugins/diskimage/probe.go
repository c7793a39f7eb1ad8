package diskimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Disk formats, as plugins.Disk.Format names them.
const (
	VMDK  = "vmdk"
	VHD   = "vhd"
	VHDX  = "vhdx"
	QCOW2 = "qcow2"
	VDI   = "vdi"
	Raw   = "raw"
)

// Probe identifies a disk image by its header, never by its name: a file
// called .img may be qcow2. What no magic matches is raw. capacity is the
// virtual size the header records (the file size for raw, 0 when the
// format keeps it somewhere this does not parse).
func Probe(path string) (format string, capacity int64, err error) {
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
		return VMDK, int64(binary.LittleEndian.Uint64(head[12:20])) * 512, nil
	case bytes.HasPrefix(head, []byte("COWD")):
		return VMDK, 0, nil
	case bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return VMDK, 0, nil
	case bytes.HasPrefix(head, []byte("QFI\xfb")) && n >= 32:
		return QCOW2, int64(binary.BigEndian.Uint64(head[24:32])), nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return VHDX, 0, nil
	case bytes.HasPrefix(head, []byte("conectix")) && n >= 56:
		// Dynamic VHD: a copy of the footer leads the file.
		return VHD, int64(binary.BigEndian.Uint64(head[48:56])), nil
	case n >= 0x44 && binary.LittleEndian.Uint32(head[0x40:0x44]) == 0xbeda107f:
		return VDI, 0, nil
	}
	// A fixed VHD is raw data followed by a 512-byte footer.
	if fi.Size() >= 512 {
		foot := make([]byte, 512)
		if _, err := f.ReadAt(foot, fi.Size()-512); err == nil && bytes.HasPrefix(foot, []byte("conectix")) {
			return VHD, int64(binary.BigEndian.Uint64(foot[48:56])), nil
		}
	}
	return Raw, fi.Size(), nil
}
