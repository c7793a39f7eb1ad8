package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/agent"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
	"github.com/hypersdk/hyperagent/schema"
)

const statusHelp = `Usage: hyperagent status [options]

  Shows what the running agent knows: its migrations by phase, what runs
  now and how far it is, what failed and why, what waits and on what, and
  each converter's health. It asks the agent's status API at -listen, else
  at the configuration's agent { status_socket, status_addr }, else at the
  socket hyperagent.service serves (unix:/run/hyperagent/agent.sock). Over
  TCP it sends the token of agent { status_token_file } (or -token-file).

  Without a running agent it says so and shows what the state records
  (phases as last recorded, not observed).

Options:
`

// defaultStatusSocket is where hyperagent.service serves the API.
const defaultStatusSocket = "/run/hyperagent/agent.sock"

type statusOptions struct {
	json, watch bool
	every       time.Duration
	listen      string
	tokenFile   string
	configDir   string
	stateDir    string
	cf          configFlags
}

func runStatus(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var o statusOptions
	fs.BoolVar(&o.json, "json", false, "print JSON (with -watch, one document per refresh)")
	fs.BoolVar(&o.watch, "watch", false, "refresh until interrupted")
	fs.DurationVar(&o.every, "interval", 2*time.Second, "the refresh period of -watch")
	fs.StringVar(&o.listen, "listen", "", "the agent's API: unix:PATH or tcp:HOST:PORT (default: agent.status_socket, agent.status_addr, else unix:"+defaultStatusSocket+")")
	fs.StringVar(&o.tokenFile, "token-file", "", "the bearer token for a TCP address (default: agent.status_token_file)")
	fs.StringVar(&o.configDir, "config", ".", "the migration repo")
	fs.StringVar(&o.stateDir, "state-dir", "", "the state directory shown without an agent (default: the config's agent.state_dir)")
	o.cf.register(fs)
	if code, done := parseFlags(fs, e, statusHelp, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "Error: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	if o.every <= 0 {
		fmt.Fprintln(e.stderr, "Error: -interval must be positive")
		return exitError
	}
	c, ref, err := statusClient(e, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if !o.watch {
		return statusFrame(ctx, e, o, c, ref)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	t := time.NewTicker(o.every)
	defer t.Stop()
	for {
		if e.stdoutTTY && !o.json {
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J") // a terminal: redraw in place
		}
		if code := statusFrame(ctx, e, o, c, ref); code != exitOK {
			return code
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
		if !e.stdoutTTY && !o.json {
			fmt.Fprintln(e.stdout, "---")
		}
	}
}

// statusClient finds the API's address and token, and the state to fall
// back on, from the flags and the configuration. The configuration is
// loaded as commands that only read state load it: variables not given
// are unknown, not an error (its secrets are not needed to find these).
func statusClient(e *env, o statusOptions) (*agent.Client, stateRef, error) {
	spec, tokenFile := o.listen, o.tokenFile
	ref := stateRef{dir: o.stateDir}
	lo := o.cf.options(e, o.configDir)
	lo.UnsetUnknown = true
	cfg, _, diags := schema.Load(lo)
	if !diags.HasErrors() && cfg != nil {
		e.redact.SetSecrets(cfg.Secrets())
		switch {
		case spec != "":
		case cfg.Agent.StatusSocket != "":
			spec = "unix:" + cfg.Agent.StatusSocket
		case cfg.Agent.StatusAddr != "":
			spec = "tcp:" + cfg.Agent.StatusAddr
		}
		if tokenFile == "" {
			tokenFile = cfg.Agent.StatusTokenFile
		}
		switch {
		case ref.dir != "":
		case cfg.StateLocationDiagnostics().HasErrors(): // where it is depends on variables not given
		case cfg.State.Backend == schema.BackendPG:
			ref = stateRef{cfg: cfg}
		default:
			ref = stateRef{dir: cfg.Agent.StateDir, cfg: cfg}
		}
	}
	if spec == "" {
		spec = "unix:" + defaultStatusSocket
	}
	if ref.dir == "" && ref.cfg == nil && len(diags) == 1 && diags[0].Summary == "No configuration files" {
		ref.dir = filepath.Join(o.configDir, ".hyperagent")
	}
	kind, _, err := agent.ParseSpec(spec)
	if err != nil {
		return nil, stateRef{}, err
	}
	var token []byte
	if kind == "tcp" && tokenFile != "" {
		if token, err = agent.ReadToken(tokenFile); err != nil {
			return nil, stateRef{}, err
		}
	}
	c, err := agent.NewClient(spec, token)
	return c, ref, err
}

// statusReport is what one refresh shows; -json prints it.
type statusReport struct {
	FormatVersion string `json:"format_version"`
	// Source is "agent", or "state" when no agent answered
	// (AgentError says why) and the state's records are shown instead.
	Source     string                  `json:"source"`
	AgentError string                  `json:"agent_error,omitempty"`
	Status     *agent.Status           `json:"status,omitempty"`
	Migrations []agent.MigrationStatus `json:"migrations"`
	StateDir   string                  `json:"state_dir,omitempty"`
	Recorded   []recordedMigration     `json:"recorded,omitempty"`
	where      string                  // the state directory, or the PostgreSQL workspace
}

// recordedMigration is a migration as the state records it.
type recordedMigration struct {
	Address   string                 `json:"address"`
	Phase     string                 `json:"phase"` // as recorded, not observed
	Suspended bool                   `json:"suspended"`
	Attempt   int                    `json:"attempt"`
	LastError *reconcile.ErrorRecord `json:"last_error,omitempty"`
}

// statusFormatVersion is status -json's format_version.
const statusFormatVersion = jsondoc.FormatVersion

// statusFrame fetches and shows the status once.
func statusFrame(ctx context.Context, e *env, o statusOptions, c *agent.Client, ref stateRef) int {
	r, err := fetchStatus(ctx, c, ref)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // -watch interrupted mid-request
		}
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if o.json {
		return writeJSON(e, r)
	}
	if r.Source == "state" {
		renderRecorded(e.stdout, r)
	} else {
		renderStatus(e.stdout, r.Status, r.Migrations, time.Now())
	}
	return exitOK
}

func fetchStatus(ctx context.Context, c *agent.Client, ref stateRef) (statusReport, error) {
	r := statusReport{FormatVersion: statusFormatVersion, Source: "agent", Migrations: []agent.MigrationStatus{}}
	s, err := c.Status(ctx)
	var m agent.MigrationsResponse
	if err == nil {
		m, err = c.Migrations(ctx)
	}
	if _, down := errors.AsType[*agent.Unreachable](err); down {
		return recordedStatus(err, ref)
	}
	if err != nil {
		return r, err
	}
	r.Status, r.Migrations = &s, m.Migrations
	return r, nil
}

// recordedStatus is the fallback: what the state records.
func recordedStatus(why error, ref stateRef) (statusReport, error) {
	r := statusReport{FormatVersion: statusFormatVersion, Source: "state", AgentError: why.Error(), StateDir: ref.dir,
		Migrations: []agent.MigrationStatus{}, Recorded: []recordedMigration{}, where: ref.dir}
	if ref.dir == "" && ref.cfg == nil {
		return r, fmt.Errorf("%v; and the configuration does not load (or where it keeps its state depends on variables not given), so its state is unknown: fix it or name the directory with -state-dir", why)
	}
	if ref.dir == "" {
		r.where = "PostgreSQL workspace " + strconv.Quote(cmp.Or(ref.cfg.State.Workspace, reconcile.DefaultWorkspace))
	}
	st, err := readStateAt(ref)
	if err != nil {
		return r, fmt.Errorf("%v; and reading the state failed: %w", why, err)
	}
	for _, a := range st.Addresses() {
		ms := st.Migrations[a]
		rm := recordedMigration{Address: a, Phase: recordedPhase(ms), Suspended: ms.Suspended != nil || st.SuspendedAll != nil,
			Attempt: ms.Attempts, LastError: ms.LastError}
		if ms.Job != nil {
			rm.Attempt = ms.Job.Attempt
		}
		r.Recorded = append(r.Recorded, rm)
	}
	return r, nil
}

// recordedPhase names how far state says a migration got.
func recordedPhase(ms *reconcile.MigrationState) string {
	switch {
	case ms.Domain != nil:
		return string(reconcile.PhaseDefined)
	case ms.Outputs != nil:
		return string(reconcile.PhaseConverted)
	case ms.Job != nil && ms.Job.SubmittedAt != nil:
		if ms.Job.State != "" {
			return "job " + string(ms.Job.State)
		}
		return "submitted"
	case ms.Export != nil:
		return string(reconcile.PhaseExported)
	case ms.ExportStartedAt != nil:
		return "export started"
	}
	return string(reconcile.PhasePending)
}

func renderRecorded(w io.Writer, r statusReport) {
	fmt.Fprintf(w, "No agent is running: %s.\n", r.AgentError)
	fmt.Fprintf(w, "What the state in %s records (phases as last recorded, not observed):\n\n", r.where)
	if len(r.Recorded) == 0 {
		fmt.Fprintln(w, "  no migrations recorded")
		return
	}
	counts := map[string]int{}
	for _, m := range r.Recorded {
		counts[m.Phase]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	fmt.Fprintf(w, "Migrations (%d): %s\n\n", len(r.Recorded), strings.Join(parts, ", "))
	for _, m := range r.Recorded {
		line := fmt.Sprintf("  %s  %s", m.Address, m.Phase)
		if m.Suspended {
			line += ", suspended"
		}
		if m.LastError != nil {
			line += fmt.Sprintf("; last error at %s (%s): %s", m.LastError.At.Local().Format(time.DateTime), m.LastError.Step, m.LastError.Message)
		}
		fmt.Fprintln(w, line)
	}
}

// renderStatus is the human view of a running agent.
func renderStatus(w io.Writer, s *agent.Status, ms []agent.MigrationStatus, now time.Time) {
	fmt.Fprintln(w, agentLine(s, now))
	if s.LastError != "" {
		fmt.Fprintf(w, "The last pass failed: %s\n", s.LastError)
	}
	total := 0
	for _, n := range s.Phases {
		total += n
	}
	fmt.Fprintf(w, "\nMigrations (%d): %s\n", total, s.Line())
	if len(s.Converters) > 0 {
		fmt.Fprintln(w, "\nConverters:")
		for _, c := range s.Converters {
			health := "not live"
			switch {
			case !c.Known:
				health = "health unknown"
			case c.Live:
				health = "live"
			}
			fmt.Fprintf(w, "  %s: %s; %d queued, %d processing\n    %s\n", c.Name, health, c.Queued, c.Processing, c.Detail)
		}
	}
	var running, failed, waiting []string
	phase := make(map[string]reconcile.Phase, len(ms))
	for _, m := range ms {
		phase[m.Address] = m.Phase
	}
	for _, m := range ms {
		switch {
		case m.Phase == reconcile.PhaseFailed || m.Retry != nil || m.StepState == "failed":
			failed = append(failed, failedLine(m, now))
		case m.StepState == "running" || m.Phase == reconcile.PhaseConverting:
			running = append(running, runningLine(m, now))
		case m.StepState == "done" && (m.Phase == reconcile.PhaseDefined || m.Step == reconcile.StepForget):
			// finished since the last plan
		case m.Action != reconcile.ActionNoOp || m.Phase == reconcile.PhaseQueued:
			waiting = append(waiting, waitingLine(m, phase, now))
		}
	}
	section(w, "Running", running)
	section(w, "Failed", failed)
	section(w, "Waiting", waiting)
	if len(s.ConfigErrors) > 0 {
		fmt.Fprintln(w, "\nThe configuration does not load (the last good one runs):")
		for _, d := range s.ConfigErrors {
			fmt.Fprintf(w, "  %s:%d: %s: %s\n", d.File, d.Line, d.Summary, d.Detail)
		}
	}
	if len(s.NoEvents) > 0 {
		fmt.Fprintf(w, "\nNo file events from %s: only the periodic resync sees changes there.\n", strings.Join(s.NoEvents, ", "))
	}
}

func agentLine(s *agent.Status, now time.Time) string {
	apply := "auto_apply off"
	if s.AutoApply {
		apply = "auto_apply on"
	}
	line := fmt.Sprintf("Agent %s (%s): %d passes", s.Version, apply, s.Passes)
	if s.LastPass != nil {
		line += fmt.Sprintf("; the last began %s ago and took %s", since(now, *s.LastPass), s.LastPassTook.Round(time.Millisecond))
	}
	if s.NextPass != nil {
		line += fmt.Sprintf("; the next is due at %s", s.NextPass.Local().Format(time.TimeOnly))
	}
	if !s.Ready {
		line += "; no configuration has loaded yet"
	}
	return line
}

func section(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}

func runningLine(m agent.MigrationStatus, now time.Time) string {
	what := string(m.Step)
	if m.Phase == reconcile.PhaseConverting {
		what = "converting"
		if m.JobID != "" {
			what += fmt.Sprintf(" (job %s, attempt %d)", m.JobID, m.Attempt)
		}
	}
	p := m.Progress
	switch {
	case p == nil:
		return fmt.Sprintf("%s  %s", m.Address, what)
	case p.Bytes == nil:
		return fmt.Sprintf("%s  %s: progress unknown, %s so far", m.Address, what, since(now, p.Since))
	}
	b := p.Bytes
	line := fmt.Sprintf("%s  %s: %s", m.Address, what, amount(b.Done, b.Total))
	if b.RateBytesPerSecond > 0 {
		line += ", " + rateText(b.RateBytesPerSecond)
	}
	if b.ETASeconds != nil {
		line += ", about " + durationText(time.Duration(*b.ETASeconds*float64(time.Second))) + " left"
	}
	return line + fmt.Sprintf(" (%s so far)", since(now, p.Since))
}

func failedLine(m agent.MigrationStatus, now time.Time) string {
	line := m.Address
	if m.LastError != nil {
		line += fmt.Sprintf("  %s failed %s ago", m.LastError.Step, since(now, m.LastError.At))
	} else {
		line += "  failed"
	}
	if r := m.Retry; r != nil {
		switch {
		case r.Terminal:
			line += "; waits for its configuration or VM to change"
		case r.Next != nil:
			line += fmt.Sprintf("; retry %d at %s", r.Attempts+1, r.Next.Local().Format(time.TimeOnly))
		}
	}
	if m.LastError != nil {
		line += ": " + m.LastError.Message
	} else if m.Reason != "" {
		line += ": " + m.Reason
	}
	return line
}

func waitingLine(m agent.MigrationStatus, phase map[string]reconcile.Phase, now time.Time) string {
	var why string
	switch {
	case m.Suspended:
		why = "suspended (hyperagent agent resume)"
	case m.Blocked:
		why = "blocked"
		for _, f := range m.Findings {
			if f.Severity == "error" {
				why += fmt.Sprintf("; %s: %s", f.Plugin, f.Summary)
			}
		}
	case m.Phase == reconcile.PhaseQueued:
		why = fmt.Sprintf("queued in %s", m.Converter)
		if m.Progress != nil {
			why += fmt.Sprintf(" for %s", since(now, m.Progress.Since))
		}
	default:
		if deps := pendingDeps(m, phase); len(deps) > 0 {
			why = fmt.Sprintf("waits for %s (wave %d)", strings.Join(deps, ", "), m.Wave)
		} else {
			why = m.Reason
		}
	}
	return fmt.Sprintf("%s  %s", m.Address, why)
}

// pendingDeps are the dependencies of m not defined yet, by the phase of
// each migration.
func pendingDeps(m agent.MigrationStatus, phase map[string]reconcile.Phase) []string {
	var out []string
	for _, d := range m.DependsOn {
		if phase[d] != reconcile.PhaseDefined {
			out = append(out, d)
		}
	}
	return out
}

func since(now, t time.Time) string { return durationText(now.Sub(t)) }
