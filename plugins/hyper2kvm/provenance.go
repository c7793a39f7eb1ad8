package hyper2kvm

import (
	"fmt"
	"syscall"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// The manifest's metadata.tags carry what a job was made from; daemons
// pass tags through untouched. A job found in the workflow directory under
// an id hyperagent would use is adopted only when its tags say exactly
// what the caller expects: several campaigns may share one directory.
const (
	tagAddress      = "address"
	tagCampaign     = "campaign"
	tagFingerprint  = "fingerprint"
	tagExportDigest = "export_digest"
)

func provenanceTags(p plugins.JobProvenance) map[string]string {
	return map[string]string{
		tagAddress: p.Address, tagCampaign: p.Campaign,
		tagFingerprint: p.Fingerprint, tagExportDigest: p.ExportDigest,
	}
}

func tagsProvenance(tags map[string]string) plugins.JobProvenance {
	return plugins.JobProvenance{Address: tags[tagAddress], Campaign: tags[tagCampaign],
		Fingerprint: tags[tagFingerprint], ExportDigest: tags[tagExportDigest]}
}

// What the observer reads of files others write into the workflow
// directory, at most: a manifest hyperagent writes is a few KiB (the
// worker refuses more than 4 MiB), a report or heartbeat as much.
const (
	maxManifest = 4 << 20
	maxSidecar  = 16 << 20
)

// provKey identifies one version of a job file: a job file is renamed
// between directories but never rewritten, so inode, size and change time
// tell whether its provenance must be read again.
type provKey struct {
	dev, ino uint64
	size     int64
	ctime    int64
}

// provenance reads the provenance a job file records, once per version of
// the file.
func (c *Converter) provenance(f *jobFile) (plugins.JobProvenance, error) {
	var k provKey
	st, ok := f.info.Sys().(*syscall.Stat_t)
	if ok {
		k = provKey{dev: uint64(st.Dev), ino: st.Ino, size: f.info.Size(), ctime: st.Ctim.Nano()}
		c.mu.Lock()
		p, hit := c.provs[k]
		c.mu.Unlock()
		if hit {
			return p, nil
		}
	}
	b, err := fsutil.ReadRegular(f.path, maxManifest)
	if err != nil {
		return plugins.JobProvenance{}, err
	}
	m, err := protocol.ParseManifest(b, f.ext)
	if err != nil {
		return plugins.JobProvenance{}, fmt.Errorf("job file %s: %w", f.path, err)
	}
	p := tagsProvenance(m.Metadata.Tags)
	if ok {
		c.mu.Lock()
		c.provs[k] = p
		c.mu.Unlock()
	}
	return p, nil
}

// foreign says why the job file f is not the one want describes, or "".
// A file that cannot be read as a manifest is not adopted either.
func (c *Converter) foreign(f *jobFile, want plugins.JobProvenance) string {
	got, err := c.provenance(f)
	if err != nil {
		return fmt.Sprintf("its manifest cannot be read (%v)", err)
	}
	if why := want.Mismatch(got); why != "" {
		return fmt.Sprintf("%s in %s: %s", f.name, f.path, why)
	}
	return ""
}
