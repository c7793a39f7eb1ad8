package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
)

const showHelp = `Usage: hyperagent show [options] [FILE]

  Shows a saved plan (FILE, from plan -out), or without FILE the state:
  every recorded migration with its phase, job and domain. With -json, as
  one JSON document (docs/output.md).

Options:
`

func runShow(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON on stdout")
	stateDir := fs.String("state-dir", "", "the state directory (default: the config's agent.state_dir)")
	var cf configFlags
	cf.register(fs)
	pos, code, done := parseInterspersed(fs, e, showHelp, args)
	if done {
		return code
	}
	switch len(pos) {
	case 0:
		ref, ok := stateFor(e, *stateDir, cf)
		if !ok {
			return exitError
		}
		return showState(e, ref, *asJSON)
	case 1:
		b, err := os.ReadFile(pos[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		p, err := reconcile.DecodePlan(b)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %s: %v\n", pos[0], err)
			return exitError
		}
		// A saved plan holds no secret (not even a sensitive variable's
		// value), so there is nothing to redact.
		if *asJSON {
			return writeJSON(e, jsondoc.NewPlan(p, currentVersion()))
		}
		if err := renderPlanTo(e.stdout, p); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		return exitOK
	}
	fmt.Fprintln(e.stderr, "Error: show takes at most one saved plan")
	return exitError
}

func showState(e *env, ref stateRef, asJSON bool) int {
	st, err := readStateAt(ref)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if asJSON {
		return writeJSON(e, jsondoc.NewState(st, currentVersion()))
	}
	if len(st.Migrations) == 0 {
		fmt.Fprintln(e.stdout, "The state is empty: nothing has been migrated yet.")
		return exitOK
	}
	fmt.Fprintf(e.stdout, "State serial %d, lineage %s\n\n", st.Serial, st.Lineage)
	for _, a := range st.Addresses() {
		fmt.Fprint(e.stdout, describeRecord(st.Migrations[a]))
	}
	return exitOK
}

// describeRecord is the human view of one state record.
func describeRecord(ms *reconcile.MigrationState) string {
	s := fmt.Sprintf("%s\n  vm:        %s (%s)\n", ms.Address, ms.VM, ms.Source)
	if ms.Export != nil {
		s += fmt.Sprintf("  exported:  %d files in %s at %s (fingerprint %s)\n", len(ms.Export.Files), ms.Export.Dir,
			ms.Export.ExportedAt.Format("2006-01-02T15:04:05Z07:00"), ms.Fingerprint)
	} else if ms.ExportStartedAt != nil {
		s += "  exported:  an export was started and did not finish\n"
	}
	if ms.Job != nil {
		s += fmt.Sprintf("  job:       %s (attempt %d) on %s, last seen %s\n", ms.Job.ID, ms.Job.Attempt, ms.Job.Converter, orUnknown(string(ms.Job.State)))
	}
	if len(ms.Outputs) > 0 {
		s += fmt.Sprintf("  converted: %d disks\n", len(ms.Outputs))
	}
	if ms.Domain != nil {
		s += fmt.Sprintf("  domain:    %s (uuid %s) on %s\n", ms.Domain.Name, ms.Domain.UUID, ms.Target)
	}
	if ms.LastError != nil {
		s += fmt.Sprintf("  error:     %s: %s\n", ms.LastError.Step, ms.LastError.Message)
	}
	return s + "\n"
}

func orUnknown(s string) string {
	if s == "" {
		return "not yet"
	}
	return s
}

// writeJSON prints v indented.
func writeJSON(e *env, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	_, _ = e.stdout.Write(append(b, '\n'))
	return exitOK
}
