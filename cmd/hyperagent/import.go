package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

const importHelp = `Usage: hyperagent import [options] ADDR DOMAIN [DIR]

  Adopts the domain DOMAIN, which exists already on the target of the
  migration ADDR (migrated by hand or by another tool), as that
  migration's, so that the plan stops wanting to migrate it: the state
  records it as defined, and the domain records the campaign as its
  owner, as a domain hyperagent defined does.

  It is refused, and nothing is changed, when the migration is in the
  state already, when its domain block names another domain, when the
  domain does not exist or another campaign or migration owns it, or when
  its disks are not what the migration would define: one per VM disk, in
  boot order, in the convert block's format, of the VM disk's size. The
  VM is observed for that (the source's settings are needed). The disks
  are hashed and recorded as a define records them. It runs under the
  state lock.

Options:
`

// importSynopsis is import's line in the command table.
const importSynopsis = "Adopt a domain that exists already as a migration's, in state"

func runImport(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs, false)
	if code, done := parseFlags(fs, e, importHelp, args); done {
		return code
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		fmt.Fprintln(e.stderr, "Error: import takes a migration address, a domain name and at most one directory")
		fs.Usage()
		return exitError
	}
	addr, err := addrs.ParseMigration(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	name, dir := fs.Arg(1), "."
	if fs.NArg() == 3 {
		dir = fs.Arg(2)
	}
	w := openWorkspace(ctx, e, humanProblems{e}, dir, cf)
	if w == nil {
		return exitError
	}
	defer closeWorkspace(e, w)
	res, err := importDomain(ctx, w.Workspace, addr, name, lf)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: import %s: %v\n", addr, w.Redact.Error(err))
		return exitError
	}
	fmt.Fprintf(e.stdout, "Imported domain %s (uuid %s) as %s: %d disk(s) checked against the VM and hashed, the owner recorded in the domain.\n",
		res.Domain.Name, res.Domain.UUID, addr, len(res.Domain.Disks))
	fmt.Fprintln(e.stdout, "The plan now sees it defined; hyperagent plan shows what, if anything, is left.")
	return exitOK
}

// importDomain checks what can be checked without the lock (the
// configuration, the VM), then, under it, that the state has no record
// of the migration, adopts the domain through the target and records it.
func importDomain(ctx context.Context, w *pass.Workspace, addr addrs.Migration, name string, lf lockFlags) (plugins.ImportDomainResponse, error) {
	var res plugins.ImportDomainResponse
	m := w.Config.Migration(addr)
	if m == nil {
		return res, unknownMigration(w.Config, addr)
	}
	if m.Domain.Name != "" && m.Domain.Name != name {
		return res, fmt.Errorf("its domain block names domain %q, not %q", m.Domain.Name, name)
	}
	imp, ok := w.Plugins.Targets[m.Target.String()].(plugins.DomainImporter)
	if !ok {
		return res, fmt.Errorf("%s: a target of type %q cannot import domains", m.Target, m.Target.Type)
	}
	vm, err := observeVM(ctx, w, m)
	if err != nil {
		return res, err
	}
	err = pass.Edit(ctx, w.Store, "import", lf.timeout, func(st *reconcile.State) error {
		if st.Migrations[addr.String()] != nil {
			return fmt.Errorf("%s is in the state already; nothing was imported (hyperagent state rm it first if that record is wrong)", addr)
		}
		if st.Lineage == "" {
			// The campaign the domain will name must be the state's
			// before the domain names it.
			if err := w.Store.Write(st); err != nil {
				return err
			}
		}
		var err error
		// The domain is owned by the identity the record will have (a
		// moved record's artifacts may use the address's own).
		res, err = imp.ImportDomain(ctx, plugins.ImportDomainRequest{Address: reconcile.IdentityFor(st, addr.String()), Campaign: st.Lineage, Name: name,
			Disks: reconcile.WantDisks(m, vm.Facts)})
		if err != nil {
			return fmt.Errorf("%s: %w", m.Target, err)
		}
		return reconcile.RecordImport(st, m, vm, res, time.Now().UTC())
	})
	return res, err
}

// observeVM observes the migration's VM; one that is not found is an
// error with what the source said.
func observeVM(ctx context.Context, w *pass.Workspace, m *schema.Migration) (plugins.VMObservation, error) {
	a := m.Addr.String()
	resp, err := w.Plugins.Sources[m.Source.String()].ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: a, Path: m.VM}}})
	if err != nil {
		return plugins.VMObservation{}, fmt.Errorf("%s: %w", m.Source, err)
	}
	vm := resp.VMs[a]
	if !vm.Found {
		var why []string
		for _, f := range vm.Findings {
			why = append(why, f.Summary+": "+f.Detail)
		}
		return vm, fmt.Errorf("VM %q is not found on %s, so its disks cannot be checked (%s)", m.VM, m.Source, strings.Join(why, "; "))
	}
	if len(vm.Facts.Disks) == 0 {
		return vm, fmt.Errorf("%s reports no disks for VM %q", m.Source, m.VM)
	}
	return vm, nil
}

// unknownMigration names the closest addresses the configuration has.
func unknownMigration(cfg *schema.Config, addr addrs.Migration) error {
	var names []string
	for _, m := range cfg.Migrations {
		names = append(names, m.Addr.String())
	}
	msg := fmt.Sprintf("the configuration has no migration %s", addr)
	if near := reconcile.Closest(addr.String(), names); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return errors.New(msg)
}
