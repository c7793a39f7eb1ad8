package hyper2kvm

import (
	"fmt"
	"os"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// outputs lists a succeeded job's converted disks, each checked to exist
// and sized. A full report names them; for a legacy short report
// they are found under output.directory by the manifest's disk ids.
func (c *Converter) outputs(f *jobFile, oc protocol.Outcome) ([]plugins.Output, error) {
	var arts []protocol.Artifact
	if oc.Full {
		arts = oc.Artifacts
	} else {
		data, err := fsutil.ReadRegular(f.path, maxManifest)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		m, err := protocol.ParseManifest(data, f.ext)
		if err != nil {
			return nil, err
		}
		for _, d := range m.Disks {
			arts = append(arts, protocol.Artifact{Type: "converted_disk", Path: m.OutputPath(d), DiskID: d.ID,
				Format: m.Output.Format, BootOrderHint: d.BootOrderHint})
		}
	}
	var outs []plugins.Output
	for _, a := range arts {
		if a.Type != "" && a.Type != "converted_disk" {
			continue
		}
		size, err := sized(a.Path)
		if err != nil {
			return nil, fmt.Errorf("output %s of disk %s: %w", a.Path, a.DiskID, err)
		}
		outs = append(outs, plugins.Output{DiskID: a.DiskID, Path: a.Path, Format: a.Format, Size: size, BootOrder: a.BootOrderHint})
	}
	if len(outs) == 0 {
		return nil, fmt.Errorf("no converted disk found")
	}
	return outs, nil
}

// sized returns the size of the output at path, which must be a regular
// file. Its sha256 is the engine's to compute (plugins.JobObservation),
// once, in the migration's await step.
func sized(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("not a regular file")
	}
	return fi.Size(), nil
}
