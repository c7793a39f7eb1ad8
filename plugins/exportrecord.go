package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// ExportRecordFile is the last file a source that implements
// ExportAdopter writes into an export directory: the ExportResult of the
// whole export. Its presence says the export completed; a process killed
// after it was written and before the engine recorded the result in state
// finds the export with AdoptExport instead of doing it again.
const ExportRecordFile = ".hyperagent-export.json"

// ForgetExportRecord removes dir's export record: called when an export
// into dir starts, so that a run killed midway never finds the record of
// an export it is replacing.
func ForgetExportRecord(dir string) error {
	err := os.Remove(filepath.Join(dir, ExportRecordFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fsutil.SyncDir(dir)
}

// WriteExportRecord writes res as dir's export record (atomically and
// durably) and returns res with the record among its Files, so that prune
// removes it too.
func WriteExportRecord(dir string, res ExportResult) (ExportResult, error) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	b = append(b, '\n')
	p := filepath.Join(dir, ExportRecordFile)
	if err := fsutil.WriteFileAtomic(p, b, 0o640); err != nil {
		return res, err
	}
	sum := sha256.Sum256(b)
	res.Files = append(res.Files, File{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	return res, nil
}

// ReadExportRecord reads dir's export record and checks that every file it
// lists is still there with its recorded size; ok is false when there is
// no record or the export it describes is no longer whole.
func ReadExportRecord(dir string) (res ExportResult, ok bool, err error) {
	p := filepath.Join(dir, ExportRecordFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ExportResult{}, false, nil
	}
	if err != nil {
		return ExportResult{}, false, err
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return ExportResult{}, false, fmt.Errorf("%s: %w", p, err)
	}
	for _, f := range res.Files {
		fi, err := os.Stat(f.Path)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return ExportResult{}, false, nil
		}
	}
	sum := sha256.Sum256(b)
	res.Files = append(res.Files, File{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	return res, true, nil
}
