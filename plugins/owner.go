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
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// Owner names who an artifact belongs to: one campaign (the state's
// lineage) and one migration address in it. Every artifact hyperagent
// makes in a place others may share (an export directory, a converter job,
// a domain) records its owner, and one found there is adopted only when
// the owner matches.
type Owner struct {
	Campaign string `json:"campaign"`
	Address  string `json:"address"`
}

// String names the owner for messages.
func (o Owner) String() string {
	if o.Campaign == "" {
		return o.Address + " (no campaign recorded)"
	}
	return fmt.Sprintf("%s of campaign %s", o.Address, o.Campaign)
}

// JobProvenance is what a converter job was made from. A job is adopted
// (found again, awaited, withdrawn) only when it records exactly this.
type JobProvenance struct {
	Campaign     string `json:"campaign"`
	Address      string `json:"address"`
	Fingerprint  string `json:"fingerprint"`   // the source VM's, at export
	ExportDigest string `json:"export_digest"` // ExportDigest of the export submitted
}

// Mismatch says how found differs from p, or "" when they are the same.
func (p JobProvenance) Mismatch(found JobProvenance) string {
	switch {
	case found.Campaign == "" && found.Address == "":
		return "it records no owner (not made by this version of hyperagent)"
	case found.Campaign != p.Campaign:
		return fmt.Sprintf("it belongs to campaign %s (%s), not %s", found.Campaign, found.Address, p.Campaign)
	case found.Address != p.Address:
		return fmt.Sprintf("it belongs to %s, not %s", found.Address, p.Address)
	case found.Fingerprint != p.Fingerprint:
		return fmt.Sprintf("it was made from the VM as fingerprint %s, not %s", found.Fingerprint, p.Fingerprint)
	case found.ExportDigest != p.ExportDigest:
		return fmt.Sprintf("it was made from another export (digest %s, not %s)", short(found.ExportDigest), short(p.ExportDigest))
	}
	return ""
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// ExportDigest identifies an export by its disks' ids, sizes and sha256,
// in boot order: two exports with the same digest hold the same bytes.
func ExportDigest(ex ExportResult) string {
	type disk struct {
		ID     string `json:"id"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		Boot   int    `json:"boot"`
	}
	ds := make([]disk, 0, len(ex.Disks))
	for _, d := range ex.Disks {
		ds = append(ds, disk{d.ID, d.Size, d.SHA256, d.BootOrder})
	}
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Boot != ds[j].Boot {
			return ds[i].Boot < ds[j].Boot
		}
		return ds[i].ID < ds[j].ID
	})
	b, _ := json.Marshal(ds) // plain structs always marshal
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// OwnerFile is the file in a directory hyperagent made for one migration
// (an export directory) that names its owner.
const OwnerFile = ".hyperagent-owner.json"

// ForeignDirError is returned when a directory belongs to another owner.
type ForeignDirError struct {
	Dir   string
	Owner Owner
}

func (e *ForeignDirError) Error() string {
	return fmt.Sprintf("directory %s belongs to %s; it is never written into or adopted (give this migration another export dir)", e.Dir, e.Owner)
}

// ClaimDir creates dir (mode perm) if needed and makes o its owner: it
// writes OwnerFile (atomically and durably) when there is none, accepts
// one that names o, and refuses, with a terminal *ForeignDirError, a
// directory that another campaign or migration claimed, or one that holds
// files and names no owner (left by someone else, or by a version of
// hyperagent that did not claim directories).
func ClaimDir(dir string, o Owner, perm fs.FileMode) error {
	if o.Campaign == "" || o.Address == "" {
		return Terminal(fmt.Errorf("claim %s: the owner is incomplete (%+v)", dir, o))
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	found, ok, err := ReadDirOwner(dir)
	if err != nil {
		return err
	}
	if ok {
		if found != o {
			return Terminal(&ForeignDirError{Dir: dir, Owner: found})
		}
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		// The temp file of an owner file whose write was cut short (the
		// process killed): ours, and never read by anyone.
		if strings.HasPrefix(e.Name(), "."+OwnerFile) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		n++
	}
	if n > 0 {
		return Terminal(fmt.Errorf("directory %s already holds %d entries and names no owner; it is never written into (empty it, or give this migration another export dir)", dir, n))
	}
	b, _ := json.Marshal(o)
	return fsutil.WriteFileAtomic(filepath.Join(dir, OwnerFile), append(b, '\n'), 0o644)
}

// ReadDirOwner reads dir's OwnerFile; ok is false when there is none.
func ReadDirOwner(dir string) (o Owner, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return Owner{}, false, Terminal(fmt.Errorf("%s: %w", filepath.Join(dir, OwnerFile), err))
	}
	return o, true, nil
}

// Adopts says whether an artifact found recording owner found is o's. A
// domain defined before owners named a campaign records only the address:
// it is o's when its UUID is the one o's state recorded (recordedUUID).
func (o Owner) Adopts(found Owner, foundUUID, recordedUUID string) bool {
	if found.Address != o.Address || found.Address == "" {
		return false
	}
	if found.Campaign == "" {
		return recordedUUID != "" && foundUUID == recordedUUID
	}
	return found.Campaign == o.Campaign
}
