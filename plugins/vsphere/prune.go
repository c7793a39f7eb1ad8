package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
)

// PruneExport deletes exactly the files the export recorded, then its
// directory if that leaves it empty: a directory the engine claimed still
// holds its owner file, which the engine releases. A recorded path outside
// the export's directory is refused rather than deleted: state is not
// trusted to name arbitrary files.
func (s *Source) PruneExport(ctx context.Context, req plugins.PruneExportRequest) error {
	dir := filepath.Clean(req.Export.Dir)
	if dir == "" || dir == "." || !filepath.IsAbs(dir) {
		return plugins.Terminal(fmt.Errorf("export directory %q is not absolute", req.Export.Dir))
	}
	var errs []error
	for _, f := range req.Export.Files {
		p := filepath.Clean(f.Path)
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			errs = append(errs, plugins.Terminal(fmt.Errorf("%s is outside the export directory %s", f.Path, dir)))
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(dir); err == nil {
			s.log.Debug("removed empty export directory", "dir", dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			s.log.Debug("export directory kept", "dir", dir, "reason", err)
		}
	}
	return errors.Join(errs...)
}
