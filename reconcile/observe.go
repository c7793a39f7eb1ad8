package reconcile

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Phase is where a migration stands, as observation and state together say.
type Phase string

const (
	PhasePending    Phase = "pending"
	PhaseExported   Phase = "exported"
	PhaseQueued     Phase = "queued"
	PhaseConverting Phase = "converting"
	PhaseConverted  Phase = "converted"
	PhaseDefined    Phase = "defined"
	PhaseFailed     Phase = "failed"
	PhaseRemoved    Phase = "removed" // in state, not in config
)

// Observed is what the plugins see now, keyed by migration address.
type Observed struct {
	Refreshed bool
	VMs       map[string]plugins.VMObservation
	Jobs      map[string]plugins.JobObservation // the job recorded in state
	Domains   map[string]plugins.DomainObservation
	// Missing lists recorded artifacts (export files before conversion,
	// outputs before definition) that are gone or changed size: drift.
	MissingExport  map[string][]string
	MissingOutputs map[string][]string
	// JobChecks are the converters' pre-flight findings about jobs not
	// converted yet (plugins.JobChecker), by converter and address;
	// Consumers say who serves each converter's queue. A migration whose
	// converter names a fallback is checked against both.
	JobChecks map[string]map[string][]plugins.Finding
	Consumers map[string]plugins.ConsumerStatus
	// ForeignDirs are export directories a migration would use that name
	// another owner (a copied state, a hand-made directory), by address.
	ForeignDirs map[string]string
}

func newObserved() *Observed {
	return &Observed{
		VMs: map[string]plugins.VMObservation{}, Jobs: map[string]plugins.JobObservation{},
		Domains: map[string]plugins.DomainObservation{}, MissingExport: map[string][]string{},
		MissingOutputs: map[string][]string{}, JobChecks: map[string]map[string][]plugins.Finding{},
		Consumers: map[string]plugins.ConsumerStatus{}, ForeignDirs: map[string]string{},
	}
}

// Observe asks every plugin instance about all the migrations that use it
// in ONE batched call per instance (instances run concurrently), then stats
// the artifacts state recorded. Removed migrations (in state only) have
// their jobs observed, so a queued job can be withdrawn.
func Observe(ctx context.Context, cfg *schema.Config, st *State, lineage string, set *plugins.Set, selected []*schema.Migration) (*Observed, error) {
	return observe(ctx, cfg, st, lineage, set, selected, hclog.NewNullLogger())
}

// observe is Observe, telling log (at debug level) each instance's call
// and how long it took.
func observe(ctx context.Context, cfg *schema.Config, st *State, lineage string, set *plugins.Set, selected []*schema.Migration, log hclog.Logger) (*Observed, error) {
	o := newObserved()
	o.Refreshed = true
	var mu sync.Mutex
	ids := newIdentities(st)

	vmReqs := map[string][]plugins.VMQuery{}
	for _, m := range selected {
		src := m.Source.String()
		vmReqs[src] = append(vmReqs[src], plugins.VMQuery{
			Address: m.Addr.String(), Path: m.VM, PowerOff: m.Export.PowerOff,
			ExportDir: ExportDir(m.Export.Dir, lineage, ids.of(m.Addr.String())),
		})
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, src := range sortedKeys(vmReqs) {
		s, ok := set.Sources[src]
		if !ok {
			return nil, fmt.Errorf("%s: no such source instance", src)
		}
		req := plugins.ObserveVMsRequest{VMs: vmReqs[src]}
		g.Go(func() error {
			done := observing(log, src, "VMs", len(req.VMs))
			resp, err := s.ObserveVMs(gctx, req)
			done(err)
			if err != nil {
				return pluginError(src, fmt.Errorf("observe VMs: %w", err))
			}
			mu.Lock()
			defer mu.Unlock()
			for a, v := range resp.VMs {
				o.VMs[a] = v
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	inCfg, inSel := addrSet(cfg.Migrations), addrSet(selected)
	jobReqs := map[string][]plugins.JobQuery{}
	for _, a := range st.Addresses() {
		ms := st.Migrations[a]
		if ms.Job == nil || ms.Outputs != nil {
			continue
		}
		if inCfg[a] && !inSel[a] {
			continue
		}
		q := plugins.JobQuery{Address: a, JobID: ms.Job.ID, Want: wantJob(lineage, ms)}
		if ms.Job.SubmittedAt != nil {
			q.SubmittedAt = *ms.Job.SubmittedAt
		}
		jobReqs[ms.Job.Converter] = append(jobReqs[ms.Job.Converter], q)
	}
	// A domain is asked about under its owner's identity, and the
	// answer filed under the migration's address.
	domReqs := map[string][]plugins.DomainQuery{}
	byIdent := map[string]string{}
	for _, m := range selected {
		a := m.Addr.String()
		ms := st.Migrations[a]
		ident := ids.of(a)
		byIdent[ident] = a
		q := plugins.DomainQuery{Address: ident, Campaign: lineage, Name: DomainName(m, ms, o.VMs[a]), Network: m.Domain.Network}
		if ms != nil && ms.Domain != nil {
			q.UUID = ms.Domain.UUID
		}
		for _, n := range o.VMs[a].Facts.NICs {
			q.Networks = append(q.Networks, n.Network)
		}
		domReqs[m.Target.String()] = append(domReqs[m.Target.String()], q)
	}

	g, gctx = errgroup.WithContext(ctx)
	for _, cv := range sortedKeys(jobReqs) {
		c, ok := set.Converters[cv]
		if !ok {
			continue // a removed converter: its jobs cannot be observed
		}
		req := plugins.ObserveJobsRequest{Jobs: jobReqs[cv]}
		g.Go(func() error {
			done := observing(log, cv, "jobs", len(req.Jobs))
			resp, err := c.ObserveJobs(gctx, req)
			done(err)
			if err != nil {
				return pluginError(cv, fmt.Errorf("observe jobs: %w", err))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, q := range req.Jobs {
				if j, ok := resp.Jobs[q.JobID]; ok {
					o.Jobs[q.Address] = j
				} else {
					o.Jobs[q.Address] = plugins.JobObservation{JobID: q.JobID, State: plugins.JobUnknown}
				}
			}
			return nil
		})
	}
	for _, tg := range sortedKeys(domReqs) {
		t, ok := set.Targets[tg]
		if !ok {
			return nil, fmt.Errorf("%s: no such target instance", tg)
		}
		req := plugins.ObserveDomainsRequest{Domains: domReqs[tg]}
		g.Go(func() error {
			done := observing(log, tg, "domains", len(req.Domains))
			resp, err := t.ObserveDomains(gctx, req)
			done(err)
			if err != nil {
				return pluginError(tg, fmt.Errorf("observe domains: %w", err))
			}
			mu.Lock()
			defer mu.Unlock()
			for ident, d := range resp.Domains {
				o.Domains[byIdent[ident]] = d
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := checkJobs(ctx, o, cfg, st, lineage, ids, set, selected, log); err != nil {
		return nil, err
	}
	statArtifacts(o, st)
	checkExportDirs(o, lineage, ids, selected)
	return o, nil
}

// observing logs one batched call to a plugin instance, and, through the
// function it returns, how it ended and how long it took.
func observing(log hclog.Logger, instance, what string, n int) func(error) {
	log.Debug("observing", "instance", instance, "what", what, "count", n)
	start := time.Now()
	return func(err error) {
		if err != nil {
			log.Debug("observing failed", "instance", instance, "what", what, "took", time.Since(start), "error", err)
			return
		}
		log.Debug("observed", "instance", instance, "what", what, "count", n, "took", time.Since(start))
	}
}

// checkExportDirs reads the owner of each export directory a migration
// would export into: one that names another owner, or whose owner file
// cannot be read, is never written into, and the plan says so. (One that
// holds files and names no owner is refused when the export claims it.)
func checkExportDirs(o *Observed, lineage string, ids *identities, selected []*schema.Migration) {
	for _, m := range selected {
		a := m.Addr.String()
		ident := ids.of(a)
		dir := ExportDir(m.Export.Dir, lineage, ident)
		found, ok, err := plugins.ReadDirOwner(dir)
		switch {
		case err != nil:
			o.ForeignDirs[a] = fmt.Sprintf("export directory %s has an unreadable owner file (%v)", dir, err)
		case ok && found != owner(lineage, ident):
			o.ForeignDirs[a] = fmt.Sprintf("export directory %s belongs to %s", dir, found)
		}
	}
}

// checkJobs asks every converter that can (plugins.JobChecker), in one call
// each, whether the jobs of migrations not converted yet could run.
func checkJobs(ctx context.Context, o *Observed, cfg *schema.Config, st *State, lineage string, ids *identities, set *plugins.Set, selected []*schema.Migration, log hclog.Logger) error {
	reqs := map[string][]plugins.JobCheck{}
	for _, m := range selected {
		a := m.Addr.String()
		if ms := st.Migrations[a]; ms != nil && ms.Outputs != nil {
			continue
		}
		jc := plugins.JobCheck{Address: a, Options: m.Convert, ExportDir: ExportDir(m.Export.Dir, lineage, ids.of(a))}
		cv := m.Converter.String()
		reqs[cv] = append(reqs[cv], jc)
		if fb := fallbackOf(cfg, m.Converter.String()); fb != "" {
			reqs[fb] = append(reqs[fb], jc)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, cv := range sortedKeys(reqs) {
		c, ok := set.Converters[cv].(plugins.JobChecker)
		if !ok {
			continue
		}
		req := plugins.CheckJobsRequest{Jobs: reqs[cv]}
		g.Go(func() error {
			done := observing(log, cv, "job checks", len(req.Jobs))
			resp, err := c.CheckJobs(gctx, req)
			done(err)
			if err != nil {
				return pluginError(cv, fmt.Errorf("check jobs: %w", err))
			}
			mu.Lock()
			defer mu.Unlock()
			o.Consumers[cv] = resp.Consumer
			o.JobChecks[cv] = resp.Findings
			return nil
		})
	}
	return g.Wait()
}

// statArtifacts checks the files state recorded that later steps still
// need: export files until the job succeeded, outputs until defined, and
// both when a defined domain was found broken (to rebuild from the step
// that lost its artifact).
func statArtifacts(o *Observed, st *State) {
	for a, ms := range st.Migrations {
		broken := false
		if ms.Domain != nil {
			if d, ok := o.Domains[a]; ok && (!d.Exists || len(d.MissingDisks) > 0) {
				broken = true
			}
		}
		if ms.Export != nil && (ms.Outputs == nil || broken) {
			if miss := missingFiles(ms.Export.Files); len(miss) > 0 {
				o.MissingExport[a] = miss
			}
		}
		if ms.Outputs != nil && (ms.Domain == nil || broken) {
			fs := make([]plugins.File, 0, len(ms.Outputs))
			for _, out := range ms.Outputs {
				fs = append(fs, plugins.File{Path: out.Path, Size: out.Size})
			}
			if miss := missingFiles(fs); len(miss) > 0 {
				o.MissingOutputs[a] = miss
			}
		}
	}
}

func missingFiles(files []plugins.File) []string {
	var out []string
	for _, f := range files {
		fi, err := os.Stat(f.Path)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			out = append(out, f.Path)
		}
	}
	return out
}

// pluginError names the instance an error came from.
func pluginError(instance string, err error) error {
	a, perr := addrs.ParsePlugin(instance)
	if perr != nil {
		return fmt.Errorf("%s: %w", instance, err)
	}
	return &plugins.PluginError{Addr: a, Err: err}
}

// fallbackOf is the fallback converter a converter block names, or "".
func fallbackOf(cfg *schema.Config, converter string) string {
	if b := cfg.PluginBlock(converter); b != nil && b.Fallback != nil {
		return b.Fallback.String()
	}
	return ""
}

func addrSet(ms []*schema.Migration) map[string]bool {
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		out[m.Addr.String()] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
