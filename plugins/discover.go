package plugins

import (
	"context"
	"fmt"
	"path"
)

// Discoverer is the optional ability of a source to list the VMs it holds,
// for `hyperagent discover`: every VM under a folder, with its facts, a
// fingerprint and its pre-flight findings, in a number of round trips
// that does not grow with the VMs (as ObserveVMs).
type Discoverer interface {
	Discover(ctx context.Context, req DiscoverRequest) (DiscoverResponse, error)
}

// DiscoverRequest says which VMs to list and how their findings are made.
type DiscoverRequest struct {
	// Folder keeps the VMs under it, at any depth: a vSphere inventory
	// folder (/DC1/vm/prod, or prod under the source's datacenter's VM
	// folder), or a directory of a files source, relative to its dir.
	// Empty keeps every VM.
	Folder string
	// Match keeps the VMs whose name matches one of these path.Match
	// patterns; empty keeps every VM.
	Match []string
	// Known are the vm values of the repo's existing migrations of this
	// source, by migration address: a VM one of them names is reported
	// with NamedBy set.
	Known map[string]string
	// PowerOff and ExportDir make the findings those of a migration that
	// powers the VM off (or not) and exports under ExportDir, as in
	// VMQuery.
	PowerOff  bool
	ExportDir string
}

// DiscoverResponse lists the VMs found, sorted by Path.
type DiscoverResponse struct {
	VMs []DiscoveredVM
	// Skipped are VMs that matched but cannot be migrations, each with
	// the reason ("template", "not in a folder"), sorted.
	Skipped []string
}

// DiscoveredVM is one VM of a source.
type DiscoveredVM struct {
	// Path is what a migration's vm names it by: the inventory path, or
	// the path relative to a files source's dir.
	Path string
	// Name is what Match is applied to: the inventory name, or a files
	// source's file name without its extension.
	Name string
	// Folder holds it: its inventory folder, or its directory relative to
	// the source's dir ("." for the dir itself).
	Folder string
	// NamedBy is the address of the existing migration that names this
	// VM already (DiscoverRequest.Known), or "".
	NamedBy     string
	Observation VMObservation
}

// CheckMatch checks discover patterns; it is the one rule for Match.
func CheckMatch(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// Matches says whether name matches one of patterns (all names match
// none). Patterns must have passed CheckMatch.
func Matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
