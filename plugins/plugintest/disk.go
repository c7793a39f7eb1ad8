package plugintest

import (
	"math/rand/v2"
	"os"
	"testing"
)

// WriteSparseRaw writes a raw disk image of size bytes for tests that run
// real qemu-img: 64 KiB of pseudo-random data (from seed) at the start of
// every 256 KiB, holes between, so that a conversion has real content and
// real sparseness to handle, a quarter of the size in data.
func WriteSparseRaw(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	chunk := make([]byte, 64<<10)
	for off := int64(0); off < size; off += 256 << 10 {
		for i := range chunk {
			chunk[i] = byte(r.Uint32())
		}
		n := min(int64(len(chunk)), size-off)
		if _, err := f.WriteAt(chunk[:n], off); err != nil {
			t.Fatal(err)
		}
	}
}
