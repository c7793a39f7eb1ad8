package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// renderDiscovery lists what discover found for people: a table of the
// new VMs with their facts and the migration each becomes, their
// findings, and the VMs left out with why.
func renderDiscovery(out io.Writer, d *discovery, r *discoverResult) {
	var w strings.Builder
	defer func() { _, _ = io.WriteString(out, w.String()) }()
	fmt.Fprintf(&w, "%s: %d new VM(s), %d named by a migration already, %d skipped.\n",
		d.source, r.count(), len(r.named), len(r.skipped))
	if r.count() > 0 {
		fmt.Fprintln(&w)
		tw := tabwriter.NewWriter(&w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FOLDER\tVM\tCPUS\tMEMORY\tDISKS\tPOWER\tGUEST\tMIGRATION")
		for _, g := range r.groups {
			for _, vm := range g.vms {
				f := vm.Observation.Facts
				guest := f.GuestID
				if guest == "" {
					guest = f.OSFamily
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", vm.Folder, vm.Name, knownOr(f.CPUs > 0, fmt.Sprint(f.CPUs)),
					knownOr(f.MemoryMiB > 0, fsutil.FormatBytes(f.MemoryMiB<<20)), disksLine(f.Disks),
					orDash(f.PowerState), orDash(guest), vm.addr)
			}
		}
		_ = tw.Flush()
	}
	for _, g := range r.groups {
		for _, vm := range g.vms {
			for _, f := range vm.findings {
				fmt.Fprintf(&w, "\n%s: %s: %s\n", strings.ToUpper(f.Severity[:1])+f.Severity[1:], vm.addr, f.Summary)
				writeDetail(&w, f.Detail, "  ")
			}
		}
	}
	if len(r.named) > 0 || len(r.skipped) > 0 {
		fmt.Fprintln(&w, "\nLeft out:")
		for _, vm := range r.named {
			fmt.Fprintf(&w, "  %s: named by %s already\n", vm.Path, vm.NamedBy)
		}
		for _, s := range r.skipped {
			fmt.Fprintf(&w, "  %s\n", s)
		}
	}
	for _, n := range r.notes {
		fmt.Fprintf(&w, "\nNote: %s.\n", n)
	}
}

func knownOr(ok bool, s string) string {
	if ok {
		return s
	}
	return "?"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
