package vsphere

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vmwareStream writes data, the first bytes of a disk of capacity bytes, as
// vSphere's NFC serves a disk: a streamOptimized VMDK with its grain
// directory at the end (header gdOffset = GD_AT_END), deflated grains
// behind markers, a grain table marker after each table's grains, the
// grain directory, a footer and the end-of-stream marker. qemu-img reads
// it back (TestVMwareStreamIsAVMDK).
func vmwareStream(t testing.TB, data []byte, capacity int64) []byte {
	t.Helper()
	const grain, gtes, overhead = 128, 512, 128
	capSec := capacity / sectorSize
	var out bytes.Buffer
	pad := func() {
		if r := out.Len() % sectorSize; r != 0 {
			out.Write(make([]byte, sectorSize-r))
		}
	}
	header := func(gdOffset uint64) []byte {
		h := make([]byte, sectorSize)
		le := binary.LittleEndian
		le.PutUint32(h[0:], sparseMagic)
		le.PutUint32(h[4:], 3)
		le.PutUint32(h[8:], 1|flagComp|flagMarkers)
		le.PutUint64(h[12:], uint64(capSec))
		le.PutUint64(h[20:], grain)
		le.PutUint64(h[28:], 1) // descriptor offset
		le.PutUint64(h[36:], 1) // descriptor size
		le.PutUint32(h[44:], gtes)
		le.PutUint64(h[56:], gdOffset)
		le.PutUint64(h[64:], overhead)
		h[73], h[74], h[75], h[76] = '\n', ' ', '\r', '\n'
		le.PutUint16(h[77:], 1) // deflate
		return h
	}
	marker := func(val uint64, typ uint32) {
		m := make([]byte, sectorSize)
		binary.LittleEndian.PutUint64(m[0:], val)
		binary.LittleEndian.PutUint32(m[12:], typ)
		out.Write(m)
	}
	out.Write(header(gdAtEnd))
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n"+
		"# Extent description\nRW %d SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"4\"\n", capSec)
	out.WriteString(desc)
	out.Write(make([]byte, overhead*sectorSize-out.Len()))

	perGT := int64(grain * gtes)
	nGD := (capSec + perGT - 1) / perGT
	gd := make([]byte, ((nGD*4+sectorSize-1)/sectorSize)*sectorSize)
	for g0 := int64(0); g0 < nGD; g0++ {
		gt := make([]byte, gtes*4)
		any := false
		for i := range int64(gtes) {
			lba := (g0*gtes + i) * grain
			start := lba * sectorSize
			if start >= int64(len(data)) || lba >= capSec {
				break
			}
			chunk := make([]byte, grain*sectorSize)
			copy(chunk, data[start:])
			if bytes.Equal(chunk, make([]byte, len(chunk))) {
				continue
			}
			var z bytes.Buffer
			zw := zlib.NewWriter(&z)
			zw.Write(chunk)
			zw.Close()
			binary.LittleEndian.PutUint32(gt[4*i:], uint32(out.Len()/sectorSize))
			m := make([]byte, 12)
			binary.LittleEndian.PutUint64(m[0:], uint64(lba))
			binary.LittleEndian.PutUint32(m[8:], uint32(z.Len()))
			out.Write(m)
			out.Write(z.Bytes())
			pad()
			any = true
		}
		if any {
			marker(4, markerGT)
			binary.LittleEndian.PutUint32(gd[4*g0:], uint32(out.Len()/sectorSize))
			out.Write(gt)
		}
	}
	marker(uint64(len(gd)/sectorSize), markerGD)
	gdSector := out.Len() / sectorSize
	out.Write(gd)
	marker(1, markerFooter)
	out.Write(header(uint64(gdSector)))
	marker(0, markerEOS)
	return out.Bytes()
}

// qemuImage converts raw data with qemu-img into a VMDK of the given
// subformat and returns its bytes.
func qemuImage(t testing.TB, data []byte, capacity int64, subformat string) []byte {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img is needed (Debian qemu-utils): %v", err)
	}
	dir := t.TempDir()
	raw, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.vmdk")
	if err := os.WriteFile(raw, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raw, capacity); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+subformat, raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVMwareStreamIsAVMDK proves the test's stream writer produces what
// qemu-img reads as a streamOptimized VMDK holding the data, so the
// checker's tests on it are tests on a real format.
func TestVMwareStreamIsAVMDK(t *testing.T) {
	const capacity = 8 << 20
	data := content(3, 3<<20+1000)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "s.vmdk"), filepath.Join(dir, "s.raw")
	if err := os.WriteFile(in, vmwareStream(t, data, capacity), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("qemu-img", "info", in).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "streamOptimized") {
		t.Fatalf("qemu-img info: %v\n%s", err, info)
	}
	if b, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "raw", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, capacity)
	copy(want, data)
	if !bytes.Equal(got, want) {
		t.Fatal("qemu-img reads other bytes out of the stream than were written into it")
	}
}

// check feeds b to a checker in pieces of the given size.
func check(b []byte, capacity int64, piece int) error {
	c := newVMDKCheck(capacity)
	for len(b) > 0 {
		k := min(piece, len(b))
		if _, err := c.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return c.whole()
}

func TestVMDKCheck(t *testing.T) {
	const capacity = 8 << 20
	data := content(5, 3<<20+333)
	stream := vmwareStream(t, data, capacity)
	qemuStream := qemuImage(t, data, capacity, "streamOptimized")
	sparse := qemuImage(t, data, capacity, "monolithicSparse")
	flat := content(6, 1<<20)
	n := len(stream)
	tests := map[string]struct {
		b        []byte
		capacity int64
		want     string // "" whole, else a part of the error
	}{
		"vSphere stream":                         {b: stream, capacity: capacity},
		"vSphere stream, capacity unknown":       {b: stream},
		"vSphere stream cut mid-grain":           {b: stream[:n/2+7], want: "inside a grain"},
		"vSphere stream cut at a sector":         {b: stream[:n/2/512*512], want: "inside a grain"},
		"vSphere stream without its EOS":         {b: stream[:n-512], want: "before its end-of-stream marker"},
		"vSphere stream without footer and EOS":  {b: stream[:n-1024], want: "inside a grain or metadata block"},
		"vSphere stream ending at its GD":        {b: stream[:n-1536], want: "before its footer"},
		"vSphere stream cut in its header area":  {b: stream[:4096], want: "before its footer"},
		"vSphere stream with trailing data":      {b: append(append([]byte(nil), stream...), content(1, 512)...), want: "after its end-of-stream marker"},
		"vSphere stream padded with zeros":       {b: append(append([]byte(nil), stream...), make([]byte, 4096)...)},
		"vSphere stream of another disk":         {b: stream, capacity: 2 * capacity, want: "wrong disk"},
		"qemu-img streamOptimized":               {b: qemuStream, capacity: capacity},
		"qemu-img streamOptimized cut mid-grain": {b: qemuStream[:lastGrainStart(t, qemuStream)-10*512], want: "inside a grain"},
		"qemu-img streamOptimized cut at a grain": {b: qemuStream[:lastGrainStart(t, qemuStream)],
			want: "before the grain at sector"},
		"qemu-img monolithicSparse":         {b: sparse, capacity: capacity},
		"qemu-img monolithicSparse cut":     {b: sparse[:len(sparse)-64<<10], want: "before the end of the grain"},
		"qemu-img monolithicSparse cut odd": {b: sparse[:len(sparse)-100], want: "mid-sector"},
		"flat bytes":                        {b: flat, want: errNoStructure.Error()},
		"nothing":                           {b: nil, want: errNoStructure.Error()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, piece := range []int{1 << 20, 4096, 333, 1} {
				if piece == 1 && len(tc.b) > 1<<20 {
					continue
				}
				err := check(tc.b, tc.capacity, piece)
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("pieces of %d: %v", piece, err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Fatalf("pieces of %d: error %v, want %q", piece, err, tc.want)
				}
			}
		})
	}
	if err := check(stream, 2*capacity, 4096); !errors.Is(err, errWrongDisk) {
		t.Errorf("another disk's capacity: %v, want errWrongDisk", err)
	}
}

// lastGrainStart is the offset of the last grain marker of a qemu-img
// streamOptimized image: its grain tables list the largest sector.
func lastGrainStart(t *testing.T, b []byte) int {
	t.Helper()
	le := binary.LittleEndian
	gdOff := int(le.Uint64(b[56:])) * 512
	gtOff := int(le.Uint32(b[gdOff:])) * 512
	last := uint32(0)
	for i := 0; i < 512; i++ {
		last = max(last, le.Uint32(b[gtOff+4*i:]))
	}
	return int(last) * 512
}

// FuzzVMDKCheck: whatever arrives, the checker neither panics nor calls a
// prefix of a whole stream whole.
func FuzzVMDKCheck(f *testing.F) {
	// Small inputs keep the fuzzer fast (each exec, and the minimizing of
	// each new interesting input, costs in proportion): a few grains that
	// compress well, with some random bytes in each.
	data := make([]byte, 200<<10)
	for off := 0; off < len(data); off += 16 << 10 {
		copy(data[off:], content(uint64(off), 64))
	}
	whole := vmwareStream(f, data, 1<<20)
	if len(whole) > 128<<10 {
		f.Fatalf("the seed stream is %d bytes; keep it small", len(whole))
	}
	f.Add(whole, 100)
	f.Add(whole[:len(whole)-512], 7)
	f.Add(content(9, 2048), 512)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		_ = check(b, 0, 4096)
		if cut > 0 && cut < len(whole) {
			if err := check(whole[:cut], 1<<20, 4096); err == nil {
				t.Fatalf("a stream cut after %d of %d bytes passed", cut, len(whole))
			}
		}
	})
}

// BenchmarkVMDKCheck follows vSphere streams and a qemu-img sparse image
// as a download hands them over (128 KiB pieces): the check runs on every
// byte of an export, beside its sha256.
func BenchmarkVMDKCheck(b *testing.B) {
	const capacity = 64 << 20
	data := content(4, 48<<20)
	half := append(append([]byte(nil), data[:24<<20]...), make([]byte, 24<<20)...)
	for name, img := range map[string][]byte{
		"stream":  vmwareStream(b, data, capacity),
		"sparse":  qemuImage(b, data, capacity, "monolithicSparse"),
		"zeroish": vmwareStream(b, half, capacity),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(img)))
			for b.Loop() {
				if err := check(img, capacity, 128<<10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
