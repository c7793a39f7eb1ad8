package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// The names a migration's artifacts get in places other campaigns may
// share (a converter's workflow directory, an export base directory, a
// libvirt host) are computed here and nowhere else. Each is bound to the
// campaign (the state's lineage) as well as the address, so that two repos
// with a migration of the same address never name the same artifact. Diff
// records them in the plan's steps; Apply uses what the plan recorded.

// JobID is the converter job id of one submission: readable, matching
// [A-Za-z0-9_-]+ as the watch-directory protocol requires, and unique per
// campaign, address and attempt (1, 2, …). The readable part is sanitised
// and cut, so the hash of the exact campaign and address keeps apart two
// addresses that read alike.
func JobID(campaign, addr string, attempt int) string {
	return fmt.Sprintf("%s-a%d", artifactStem(campaign, addr), attempt)
}

// ExportDir is the directory dedicated to one migration's export under
// the export block's dir.
func ExportDir(base, campaign, addr string) string {
	return path.Join(base, artifactStem(campaign, addr))
}

// artifactStem is "<readable address>-<12 hex of sha256(campaign, address)>".
func artifactStem(campaign, addr string) string {
	readable := strings.TrimPrefix(addr, "migration.")
	var b strings.Builder
	for _, r := range readable {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	if len(s) > 40 {
		s = s[:40]
	}
	sum := sha256.Sum256([]byte(campaign + "\x00" + addr))
	return s + "-" + hex.EncodeToString(sum[:6])
}

// DomainName is the domain a migration defines: the domain block's name,
// else the name state recorded when it was defined, else the VM's name as
// exported or as observed, else the VM path's base.
func DomainName(m *schema.Migration, ms *MigrationState, vm plugins.VMObservation) string {
	switch {
	case m.Domain.Name != "":
		return m.Domain.Name
	case ms != nil && ms.Domain != nil:
		return ms.Domain.Name
	case ms != nil && ms.Export != nil && ms.Export.Facts.Name != "":
		return ms.Export.Facts.Name
	case vm.Facts.Name != "":
		return vm.Facts.Name
	}
	return path.Base(m.VM)
}

// Identity is the address the migration's artifacts are named after
// (ExportDir, JobID) and owned by (owner, wantJob, a domain's metadata):
// its record's Origin when it has one, else its address. A record moved
// by `state mv` keeps the artifacts it made under its old address, so a
// plan for its new address finds them its own.
func (ms *MigrationState) Identity() string {
	if ms.Origin != "" {
		return ms.Origin
	}
	return ms.Address
}

// identities gives each address of a state the identity of its
// artifacts; it is an index made once per plan or run.
type identities struct {
	st    *State
	taken map[string]bool // identities records use other than their address
}

func newIdentities(st *State) *identities {
	ids := &identities{st: st, taken: map[string]bool{}}
	for _, ms := range st.Migrations {
		if ms.Origin != "" {
			ids.taken[ms.Origin] = true
		}
	}
	return ids
}

// of is addr's identity: its record's, or for an address with no record,
// the address itself unless a moved record's artifacts use it (a block
// renamed, and a new one given the old name): then the address suffixed
// with "#2", "#3"… the first no record uses, so that the new migration
// never adopts the moved one's artifacts.
func (ids *identities) of(addr string) string {
	if ms := ids.st.Migrations[addr]; ms != nil {
		return ms.Identity()
	}
	if !ids.taken[addr] {
		return addr
	}
	for i := 2; ; i++ {
		c := fmt.Sprintf("%s#%d", addr, i)
		if !ids.taken[c] && ids.st.Migrations[c] == nil {
			return c
		}
	}
}

// IdentityFor is the identity a record made now for addr in st takes.
func IdentityFor(st *State, addr string) string { return newIdentities(st).of(addr) }

// NewRecord is a new record for addr, not yet in st, with the identity its
// artifacts will be named after and owned by (IdentityFor): every place
// that creates a record gives it this way.
func NewRecord(st *State, addr string, now time.Time) *MigrationState {
	ms := &MigrationState{Address: addr, CreatedAt: now, UpdatedAt: now}
	if id := IdentityFor(st, addr); id != addr {
		ms.Origin = id
	}
	return ms
}

// owner is who the migration's artifacts belong to.
func owner(campaign, addr string) plugins.Owner {
	return plugins.Owner{Campaign: campaign, Address: addr}
}

// wantJob is the provenance a migration's recorded job must carry: made by
// this campaign, for this address, from the export state recorded.
func wantJob(campaign string, ms *MigrationState) plugins.JobProvenance {
	p := plugins.JobProvenance{Campaign: campaign, Address: ms.Identity()}
	if ms.Export != nil {
		p.Fingerprint = ms.Export.Fingerprint
		p.ExportDigest = plugins.ExportDigest(*ms.Export)
	}
	return p
}

// releaseDir removes a pruned export directory's owner file, and the
// directory when nothing else is left in it. A directory that names
// another owner is left alone.
func releaseDir(dir string, o plugins.Owner, log hclog.Logger) {
	found, ok, err := plugins.ReadDirOwner(dir)
	if err != nil || !ok || found != o {
		return
	}
	if err := os.Remove(filepath.Join(dir, plugins.OwnerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("could not remove the export directory's owner file", "dir", dir, "error", err)
		return
	}
	_ = os.Remove(dir) // fails, harmlessly, when something else is in it
}
