package reconcile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// Pre-flight: everything knowable before a VM is touched is known at plan
// time. Each check turns into an error finding on the migration, with the
// fix in its detail, which blocks the change before its first step: no VM
// is powered off for an export whose domain could never be defined.

// preflight returns the engine's own findings for one planned change.
// converter is the one its jobs go to (the configured one, or its
// fallback).
func preflight(m *schema.Migration, ms *MigrationState, obs *Observed, steps []Step, names map[string][]string, converter string) []Finding {
	a := m.Addr.String()
	var out []Finding
	defines, submits, exports := false, false, false
	for _, s := range steps {
		defines = defines || s.Kind == StepDefine
		submits = submits || s.Kind == StepSubmit
		exports = exports || s.Kind == StepExport
	}
	if why := obs.ForeignDirs[a]; why != "" && exports {
		out = append(out, Finding{Plugin: m.Source.String(), Severity: string(plugins.SeverityError), Summary: why,
			Detail: "It is never written into or adopted. Give this migration another export dir, or remove that directory if it is known to be nobody's."})
	}
	if defines {
		out = append(out, hardwareFindings(m, ms, obs)...)
		name := DomainName(m, ms, obs.VMs[a])
		if f := domainNameFinding(m, name); f != nil {
			out = append(out, *f)
		}
		if others := names[domainKey(m.Target.String(), name)]; len(others) > 1 {
			var rest []string
			for _, o := range others {
				if o != a {
					rest = append(rest, o)
				}
			}
			out = append(out, Finding{Plugin: m.Target.String(), Severity: string(plugins.SeverityError),
				Summary: fmt.Sprintf("domain name %q is also %s's on %s", name, strings.Join(rest, ", "), m.Target),
				Detail:  "Two migrations would define one domain. Give each its own name: domain { name = \"...\" }."})
		}
	}
	for _, f := range obs.JobChecks[converter][a] {
		sev := string(f.Severity)
		if !submits && sev == string(plugins.SeverityError) {
			// The job is in the queue already: nothing new is sent, but
			// it waits until someone takes it.
			sev = string(plugins.SeverityWarning)
		}
		out = append(out, Finding{Plugin: converter, Severity: sev, Summary: f.Summary, Detail: f.Detail})
	}
	return out
}

// domainNameFinding is the error finding of a domain name that cannot be
// used, or nil.
func domainNameFinding(m *schema.Migration, name string) *Finding {
	problem := schema.DomainNameProblem(name)
	if problem == "" {
		return nil
	}
	detail := problem + "."
	if m.Domain.Name == "" {
		detail += " The name comes from the VM; set another one: domain { name = \"...\" }."
	}
	return &Finding{Plugin: m.Target.String(), Severity: string(plugins.SeverityError),
		Summary: fmt.Sprintf("domain name %q cannot be used", name), Detail: detail}
}

// PreflightVM is what the plan's pre-flight checks of a define say of a
// new migration of this VM, before any state or domain exists (the
// domain's name, the hardware the target needs): `hyperagent discover`
// shows them for the migrations it writes.
func PreflightVM(m *schema.Migration, vm plugins.VMObservation) []Finding {
	obs := newObserved()
	obs.VMs[m.Addr.String()] = vm
	out := hardwareFindings(m, nil, obs)
	if f := domainNameFinding(m, DomainName(m, nil, vm)); f != nil {
		out = append(out, *f)
	}
	return out
}

// converterFor picks where a migration's new jobs go: its converter, or,
// when no live consumer serves that one and a live one serves the
// fallback its block names, the fallback — said in a warning, never
// silently. A job already submitted stays with the converter state
// recorded.
func converterFor(cfg *schema.Config, m *schema.Migration, obs *Observed) (string, *Finding) {
	cv := m.Converter.String()
	fb := fallbackOf(cfg, cv)
	primary, checked := obs.Consumers[cv]
	if fb == "" || !checked || primary.Live {
		return cv, nil
	}
	if alt, ok := obs.Consumers[fb]; !ok || !alt.Live {
		return cv, nil
	}
	return fb, &Finding{Plugin: cv, Severity: string(plugins.SeverityWarning),
		Summary: fmt.Sprintf("%s has no live consumer; jobs go to its fallback %s", cv, fb),
		Detail:  primary.Detail + "; fallback: " + obs.Consumers[fb].Detail}
}

// hardwareFindings: a bare disk image carries no CPU or memory facts, and
// libvirt cannot define a domain without them.
func hardwareFindings(m *schema.Migration, ms *MigrationState, obs *Observed) []Finding {
	var facts plugins.VMFacts
	switch vm, ok := obs.VMs[m.Addr.String()]; {
	case ok && vm.Found:
		facts = vm.Facts
	case ms != nil && ms.Export != nil:
		facts = ms.Export.Facts
	default:
		return nil // not observed: other findings say why
	}
	var missing []string
	if facts.CPUs <= 0 && m.Domain.VCPUs <= 0 {
		missing = append(missing, "vcpus")
	}
	if facts.MemoryMiB <= 0 && m.Domain.MemoryMiB <= 0 {
		missing = append(missing, "memory")
	}
	if len(missing) == 0 {
		return nil
	}
	return []Finding{{Plugin: m.Target.String(), Severity: string(plugins.SeverityError),
		Summary: fmt.Sprintf("%s of %s unknown", strings.Join(missing, " and "), m.VM),
		Detail:  "The source says nothing about them (a bare disk image has no hardware description). Set them in the migration's domain block, e.g. domain { memory = \"4GiB\"  vcpus = 2 }."}}
}

// domainNames maps target+name to the migrations that would define that
// domain: every configured migration (selected or not) by the name it
// would use now, so that two of them never define one domain.
func domainNames(cfg *schema.Config, st *State, obs *Observed) map[string][]string {
	out := map[string][]string{}
	for _, m := range cfg.Migrations {
		a := m.Addr.String()
		k := domainKey(m.Target.String(), DomainName(m, st.Migrations[a], obs.VMs[a]))
		out[k] = append(out[k], a)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func domainKey(target, name string) string { return target + "\x00" + name }
