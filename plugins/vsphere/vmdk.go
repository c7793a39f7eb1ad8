package vsphere

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A disk image arrives as a stream whose length the server often does not
// announce: vSphere's NFC serves a streamOptimized VMDK generated on the
// fly, with no Content-Length. vmdkCheck follows the image's own structure
// as it streams by, so that a cut stream is never taken for a whole one:
//
//   - a stream whose grain directory is at its end (vSphere's
//     streamOptimized: header gdOffset = GD_AT_END) is whole only when
//     every marker is complete and it ends with a footer marker, the
//     footer and the end-of-stream marker, and nothing after;
//   - a sparse image whose grain directory is in its header (qemu-img's
//     streamOptimized, monolithicSparse) is whole only when it reaches the
//     last grain its grain tables list, that grain included;
//   - the header's capacity must be the capacity of the VM disk it was
//     matched to: anything else is another disk.
//
// Anything that is not a sparse VMDK (a flat image, vcsim's seeded bytes)
// has no structure to check: errNoStructure, and the download's framing or
// an announced length decides.
type vmdkCheck struct {
	capacity int64 // the VM disk's capacity in bytes; 0 skips the check

	off  int64 // bytes seen
	part [sectorSize]byte
	np   int // bytes in part
	err  error

	kind vmdkKind
	hdr  sparseHeader

	// The marker walk, from sector hdr.overHead on.
	skip          int64 // sectors of the current grain or metadata left to pass
	lastGrain     int64 // file sector of the last grain marker seen; -1 before one
	gdData        int64 // file sector where the last GD marker's data starts
	footerPending bool  // the next sector is the footer
	footer        bool
	eos           bool

	// The grain directory and tables of a sparse image that keeps them in
	// its header area.
	gd        []byte
	gts       []int64 // sorted first sectors of the grain tables
	gtSectors int64
	maxGrain  int64 // highest grain sector the tables list; -1 when none
	noTables  string
}

type vmdkKind int

const (
	kindUnknown vmdkKind = iota // no sector seen yet
	kindFlat                    // not a sparse VMDK
	kindSparse                  // grain directory in the header area
	kindStream                  // grain directory at the end (GD_AT_END)
)

const (
	sectorSize  = 512
	sparseMagic = 0x564d444b // "KDMV"
	gdAtEnd     = 0xffffffffffffffff
	flagComp    = 1 << 16
	flagMarkers = 1 << 17

	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3
)

// errNoStructure says the data is not a sparse VMDK, so its own structure
// cannot tell whether it is whole.
var errNoStructure = errors.New("not a sparse VMDK")

// errWrongDisk is a VMDK whose capacity is not the matched VM disk's.
var errWrongDisk = errors.New("wrong disk")

type sparseHeader struct {
	version, flags       uint32
	capacity, grainSize  int64 // sectors
	gtes                 int64 // grain table entries per grain table
	gdOffset, overHead   uint64
	compressAlgorithm    uint16
	gdEntries, gdSectors int64
}

func newVMDKCheck(capacity int64) *vmdkCheck {
	return &vmdkCheck{capacity: capacity, lastGrain: -1, maxGrain: -1}
}

// Write follows p. It fails as soon as the structure is broken or names
// another disk, so a wrong download stops early.
func (c *vmdkCheck) Write(p []byte) (int, error) {
	n := len(p)
	if c.err != nil {
		return 0, c.err
	}
	if c.kind == kindFlat {
		c.off += int64(n)
		return n, nil
	}
	for len(p) > 0 {
		if c.np > 0 || len(p) < sectorSize {
			k := copy(c.part[c.np:], p)
			c.np += k
			p = p[k:]
			if c.np < sectorSize {
				break
			}
			c.sector(c.part[:])
			c.np = 0
		} else {
			c.sector(p[:sectorSize])
			p = p[sectorSize:]
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.kind == kindFlat {
			c.off += int64(len(p)) + int64(c.np)
			c.np = 0
			return n, nil
		}
	}
	return n, nil
}

// sector handles one whole sector at c.off.
func (c *vmdkCheck) sector(b []byte) {
	n := c.off / sectorSize
	c.off += sectorSize
	switch {
	case n == 0:
		c.header(b)
	case uint64(n) < c.hdr.overHead:
		if c.kind == kindSparse {
			c.tables(n, b)
		}
	case c.hdr.flags&flagMarkers != 0:
		c.marker(n, b)
	}
}

func (c *vmdkCheck) header(b []byte) {
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != sparseMagic {
		c.kind = kindFlat
		return
	}
	h := sparseHeader{version: le.Uint32(b[4:]), flags: le.Uint32(b[8:]),
		capacity: int64(le.Uint64(b[12:])), grainSize: int64(le.Uint64(b[20:])),
		gtes: int64(le.Uint32(b[44:])), gdOffset: le.Uint64(b[56:]), overHead: le.Uint64(b[64:]),
		compressAlgorithm: le.Uint16(b[77:])}
	switch {
	case h.capacity <= 0 || h.capacity > 1<<40: // 512 TiB
		c.err = fmt.Errorf("VMDK header: capacity of %d sectors", h.capacity)
	case h.grainSize < 8 || h.grainSize > 1<<16 || h.grainSize&(h.grainSize-1) != 0:
		c.err = fmt.Errorf("VMDK header: grain size of %d sectors", h.grainSize)
	case h.gtes != 512:
		c.err = fmt.Errorf("VMDK header: %d entries per grain table, want 512", h.gtes)
	case h.overHead == 0 || h.overHead > 1<<32:
		c.err = fmt.Errorf("VMDK header: overhead of %d sectors", h.overHead)
	case h.gdOffset == gdAtEnd && h.flags&flagMarkers == 0:
		c.err = errors.New("VMDK header: grain directory at the end without markers")
	}
	if c.err != nil {
		return
	}
	if c.capacity > 0 && h.capacity*sectorSize != c.capacity {
		c.err = fmt.Errorf("%w: the VMDK's capacity is %d bytes, the VM disk's %d", errWrongDisk, h.capacity*sectorSize, c.capacity)
		return
	}
	perGT := h.grainSize * h.gtes
	h.gdEntries = (h.capacity + perGT - 1) / perGT
	h.gdSectors = (h.gdEntries*4 + sectorSize - 1) / sectorSize
	c.gtSectors = (h.gtes*4 + sectorSize - 1) / sectorSize
	c.hdr = h
	if h.gdOffset == gdAtEnd {
		c.kind = kindStream
		return
	}
	c.kind = kindSparse
	if h.gdOffset == 0 || h.gdOffset+uint64(h.gdSectors) > h.overHead {
		c.noTables = fmt.Sprintf("its grain directory (sector %d) is not in its header area", h.gdOffset)
	}
}

// tables reads the grain directory, then the grain tables it lists, as
// their sectors stream by; both precede the grains.
func (c *vmdkCheck) tables(n int64, b []byte) {
	if c.noTables != "" {
		return
	}
	gd := int64(c.hdr.gdOffset)
	if n >= gd && n < gd+c.hdr.gdSectors {
		c.gd = append(c.gd, b...)
		if n == gd+c.hdr.gdSectors-1 {
			for i := range c.hdr.gdEntries {
				if s := int64(binary.LittleEndian.Uint32(c.gd[4*i:])); s != 0 {
					if s <= n {
						c.noTables = fmt.Sprintf("a grain table (sector %d) precedes its grain directory", s)
						return
					}
					c.gts = append(c.gts, s)
				}
			}
			slices.Sort(c.gts)
		}
		return
	}
	i, found := slices.BinarySearch(c.gts, n)
	if !found {
		i--
	}
	if i < 0 || n >= c.gts[i]+c.gtSectors {
		return
	}
	for k := 0; k < sectorSize; k += 4 {
		if e := int64(binary.LittleEndian.Uint32(b[k:])); e > 1 && e > c.maxGrain { // 0 unallocated, 1 zeroed
			c.maxGrain = e
		}
	}
}

// marker walks the markers of a stream: each grain is a marker (LBA,
// compressed size) with its data, padded to a sector; each piece of
// metadata is a marker sector (sectors that follow, 0, type) and its
// sectors.
func (c *vmdkCheck) marker(n int64, b []byte) {
	if c.eos {
		// qemu-img pads its images with zero sectors; anything else
		// after the end is not part of a disk.
		if !allZero(b) {
			c.err = fmt.Errorf("VMDK has data after its end-of-stream marker (sector %d)", n)
		}
		return
	}
	if c.skip > 0 {
		c.skip--
		if c.footerPending {
			c.footerPending = false
			c.checkFooter(b)
		}
		return
	}
	le := binary.LittleEndian
	val, size, typ := int64(le.Uint64(b[0:])), int64(le.Uint32(b[8:])), le.Uint32(b[12:])
	if size > 0 {
		if val < 0 || val >= c.hdr.capacity || val%c.hdr.grainSize != 0 || size > 2*c.hdr.grainSize*sectorSize {
			c.err = fmt.Errorf("VMDK grain marker at sector %d is malformed (LBA %d, %d bytes)", n, val, size)
			return
		}
		c.skip = (12+size+sectorSize-1)/sectorSize - 1
		c.lastGrain = n
		return
	}
	switch typ {
	case markerEOS:
		if c.kind == kindStream && !c.footer {
			c.err = fmt.Errorf("VMDK end-of-stream marker at sector %d comes before any footer", n)
		}
		c.eos = true
	case markerGT, markerGD:
		if val <= 0 || val > c.hdr.gdEntries*512 {
			c.err = fmt.Errorf("VMDK metadata marker at sector %d announces %d sectors", n, val)
			return
		}
		c.skip = val
		if typ == markerGD {
			c.gdData = n + 1
		}
	case markerFooter:
		if val != 1 {
			c.err = fmt.Errorf("VMDK footer marker at sector %d announces %d sectors, want 1", n, val)
			return
		}
		c.skip, c.footerPending = 1, true
	default:
		c.err = fmt.Errorf("VMDK marker of unknown type %d at sector %d", typ, n)
	}
}

func (c *vmdkCheck) checkFooter(b []byte) {
	le := binary.LittleEndian
	switch {
	case le.Uint32(b[0:]) != sparseMagic:
		c.err = errors.New("VMDK footer lacks the sparse magic number")
	case int64(le.Uint64(b[12:])) != c.hdr.capacity:
		c.err = fmt.Errorf("VMDK footer's capacity %d differs from the header's %d", le.Uint64(b[12:]), c.hdr.capacity)
	case c.kind == kindStream && (c.gdData == 0 || int64(le.Uint64(b[56:])) != c.gdData):
		c.err = fmt.Errorf("VMDK footer's grain directory (sector %d) is not the one the stream carried (sector %d)", le.Uint64(b[56:]), c.gdData)
	default:
		c.footer = true
	}
}

// whole says whether the image ended where its structure says it ends:
// nil, an error describing what is missing, or errNoStructure.
func (c *vmdkCheck) whole() error {
	if c.err != nil {
		return c.err
	}
	end := fmt.Sprintf("ends after %d bytes", c.off+int64(c.np))
	switch c.kind {
	case kindUnknown, kindFlat:
		return errNoStructure
	case kindStream:
		switch {
		case c.np != 0 || c.skip != 0:
			return fmt.Errorf("VMDK stream %s, inside a grain or metadata block", end)
		case !c.footer:
			return fmt.Errorf("VMDK stream %s, before its footer", end)
		case !c.eos:
			return fmt.Errorf("VMDK stream %s, before its end-of-stream marker", end)
		}
		return nil
	}
	if c.noTables != "" {
		return fmt.Errorf("%w: sparse VMDK whose end cannot be located: %s", errNoStructure, c.noTables)
	}
	switch {
	case c.np != 0:
		return fmt.Errorf("sparse VMDK %s, mid-sector", end)
	case uint64(c.off/sectorSize) < c.hdr.overHead:
		return fmt.Errorf("sparse VMDK %s, inside its header area (%d sectors)", end, c.hdr.overHead)
	case c.hdr.flags&flagMarkers != 0 && c.skip != 0:
		return fmt.Errorf("sparse VMDK %s, inside a grain", end)
	case c.hdr.flags&flagMarkers != 0 && c.lastGrain < c.maxGrain:
		return fmt.Errorf("sparse VMDK %s, before the grain at sector %d that its grain tables list", end, c.maxGrain)
	case c.hdr.flags&flagMarkers == 0 && c.maxGrain >= 0 && c.off < (c.maxGrain+c.hdr.grainSize)*sectorSize:
		return fmt.Errorf("sparse VMDK %s, before the end of the grain at sector %d that its grain tables list", end, c.maxGrain)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
