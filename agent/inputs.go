package agent

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// configReread bounds how long a configuration is trusted without being
// read again although its files did not move: it catches what a stat of
// the repository cannot see, such as a file() outside it.
const configReread = 5 * time.Minute

// inputsDigest identifies the state of the configuration's inputs: every
// file under the repository (hidden entries, such as .git and a state
// directory kept there, left out) and the -var-file files, by name, size,
// mtime, ctime and inode. Loading a large repository costs far more than
// this walk, so an unchanged digest skips the load.
func inputsDigest(dir string, files []string) uint64 {
	h := fnv.New64a()
	add := func(p string, fi fs.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fmt.Fprintf(h, "%d\x00%d\x00", st.Ctim.Nano(), st.Ino)
		}
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "%s\x00!%v\x00", p, err)
			return nil
		}
		if p != dir && d.Name()[0] == '.' {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if fi, err := d.Info(); err == nil {
			add(p, fi)
		}
		return nil
	})
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			add(f, fi)
		} else {
			fmt.Fprintf(h, "%s\x00!%v\x00", f, err)
		}
	}
	return h.Sum64()
}
