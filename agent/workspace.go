package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fswatch"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
)

// workspace is the configuration the agent runs on, with the watches that
// belong to it (its converters' workflow directories, its sources, its
// export directories). A configuration whose digest, secrets and state
// directory are the same keeps its workspace, and so its plugins'
// connections (a vSphere session), across passes.
type workspace struct {
	key    string
	w      *pass.Workspace
	cancel context.CancelFunc
	done   chan struct{}
}

func (ws *workspace) close() {
	ws.cancel()
	<-ws.done
	_ = ws.w.Close()
}

// loadConfig reads the configuration. One that does not load is logged,
// one record per diagnostic, once per distinct set of errors, and shown in
// Status; the last good one stays.
func (a *Agent) loadConfig(ctx context.Context, log hclog.Logger) {
	cfg, _, diags := a.o.Load()
	if diags.HasErrors() {
		a.configErrors(log, diagnostics(diags))
		return
	}
	key := workspaceKey(cfg, a.o.StateDir)
	if a.ws != nil && a.ws.key == key {
		a.notify.Configure(notifyDir(cfg, a.ws.w), cfg.Notify)
		a.configErrors(log, nil)
		return
	}
	w, err := pass.Open(ctx, pass.OpenRequest{Config: cfg, Registry: a.o.Registry, Log: a.o.Log, Redact: a.o.Redact, StateDir: a.o.StateDir})
	if err != nil {
		a.configErrors(log, []Diagnostic{{Severity: "error", Summary: "The configuration's plugins cannot start", Detail: err.Error()}})
		if a.ws != nil { // the old one's secrets again
			a.o.Redact.SetSecrets(a.ws.w.Config.Secrets())
		}
		return
	}
	w.PollInterval = a.o.PollInterval
	a.setConverters(w.Plugins.Converters) // before the old ones close
	if a.ws != nil {
		a.ws.close()
		log.Info("configuration reloaded", "digest", cfg.Digest[:12], "migrations", len(cfg.Migrations))
	} else {
		log.Info("configuration loaded", "digest", cfg.Digest[:12], "migrations", len(cfg.Migrations))
	}
	a.ws = a.watchWorkspace(ctx, key, w)
	// Every state a pass loads or writes, and every record it writes
	// alone (PostgreSQL): what the notifications are derived from.
	w.Store.Observe(a.notify.State)
	w.Store.ObserveRecords(a.notify.Record)
	a.notify.Configure(notifyDir(cfg, w), cfg.Notify)
	et := &editTarget{cfg: cfg, stateDir: a.o.StateDir, inConfig: map[string]bool{}}
	for _, m := range cfg.Migrations {
		et.inConfig[m.Addr.String()] = true
	}
	a.mu.Lock()
	a.edit = et
	a.mu.Unlock()
	a.configErrors(log, nil)
}

func (a *Agent) configErrors(log hclog.Logger, ds []Diagnostic) {
	for i := range ds { // the status API shows them: the last good config's secrets stay out
		ds[i].Summary, ds[i].Detail = a.o.Redact.String(ds[i].Summary), a.o.Redact.String(ds[i].Detail)
	}
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.File + ":" + d.Summary + "\n")
	}
	if b.String() != a.lastDiag {
		a.lastDiag = b.String()
		if len(ds) > 0 {
			log.Error("the configuration does not load; running the last good one", "errors", len(ds))
		}
		for _, d := range ds {
			log.Error("configuration error", "summary", d.Summary, "detail", d.Detail, "file", d.File, "line", d.Line, "column", d.Column)
		}
	}
	if ds == nil {
		ds = []Diagnostic{}
	}
	a.setStatus(func(s *Status) { s.ConfigErrors = ds; s.Ready = a.ws != nil })
}

// notifyDir is where the notifications' ledger and outbox are kept: in the
// state directory, beside the state; for a state in PostgreSQL, in
// agent.state_dir on the agent's host.
func notifyDir(cfg *schema.Config, w *pass.Workspace) string {
	dir := w.Store.Dir()
	if dir == "" {
		dir = cfg.Agent.StateDir
	}
	return filepath.Join(dir, "notify")
}

// workspaceKey identifies what a workspace was opened from.
func workspaceKey(cfg *schema.Config, stateDir string) string {
	h := sha256.New()
	h.Write([]byte(cfg.Digest + "\x00" + stateDir + "\x00"))
	sec := cfg.Secrets()
	sort.Strings(sec)
	for _, s := range sec {
		h.Write([]byte(s + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// watchWorkspace starts the watches that belong to w.
func (a *Agent) watchWorkspace(ctx context.Context, key string, w *pass.Workspace) *workspace {
	wctx, cancel := context.WithCancel(ctx)
	ws := &workspace{key: key, w: w, cancel: cancel, done: make(chan struct{})}
	if a.o.NoEvents {
		close(ws.done)
		return ws
	}
	var watchers []plugins.Watcher
	for _, group := range []map[string]any{anyOf(w.Plugins.Sources), anyOf(w.Plugins.Converters)} {
		for _, p := range group {
			if wt, ok := p.(plugins.Watcher); ok {
				watchers = append(watchers, wt)
			}
		}
	}
	exportDirs := map[string]bool{}
	for _, m := range w.Config.Migrations {
		exportDirs[filepath.Clean(m.Export.Dir)] = true
	}
	var dirs []string
	for d := range exportDirs {
		dirs = append(dirs, d)
		if fsType, ok := fswatch.EventsDelivered(d); !ok {
			a.setStatus(func(s *Status) { s.NoEvents = appendOnce(s.NoEvents, d+" ("+fsType+")") })
		}
	}
	sort.Strings(dirs)
	n := len(watchers) + 1
	finished := make(chan struct{}, n)
	for _, wt := range watchers {
		go func() {
			defer func() { finished <- struct{}{} }()
			if err := wt.Watch(wctx, a.Trigger); err != nil && wctx.Err() == nil {
				a.log.Warn("a plugin's watch ended; the resync still looks", "error", err)
			}
		}()
	}
	go func() {
		defer func() { finished <- struct{}{} }()
		_ = fswatch.Watch(wctx, fswatch.Options{Dirs: dirs, Recursive: true, Ignore: ignoreExport,
			Debounce: a.o.Debounce, Log: a.log.Named("watch")}, func(fswatch.Trigger) { a.Trigger() })
	}()
	go func() {
		for range n {
			<-finished
		}
		close(ws.done)
	}()
	return ws
}

// ignoreExport skips what an export in progress writes (hidden temp files,
// .part downloads): the finished files are what matter.
func ignoreExport(name string) bool {
	return fswatch.Hidden(name) || strings.HasSuffix(name, ".part")
}

// watchConfig triggers a pass when the configuration directory changes:
// editors save by rename or through a temp file, so the directory is
// watched, and hidden entries (the state directory, swap files) ignored.
func (a *Agent) watchConfig(ctx context.Context) {
	if a.o.NoEvents {
		return
	}
	if fsType, ok := fswatch.EventsDelivered(a.o.ConfigDir); !ok {
		a.setStatus(func(s *Status) { s.NoEvents = appendOnce(s.NoEvents, a.o.ConfigDir+" ("+fsType+")") })
	}
	err := fswatch.Watch(ctx, fswatch.Options{Dirs: []string{a.o.ConfigDir}, Ignore: ignoreConfig,
		Debounce: a.o.Debounce, Log: a.log.Named("watch")}, func(fswatch.Trigger) { a.Trigger() })
	if err != nil {
		a.log.Warn("watching the configuration ended; the resync still looks", "error", err)
	}
}

func ignoreConfig(name string) bool {
	return fswatch.Hidden(name) || strings.HasSuffix(name, "~") || strings.HasSuffix(name, ".swp")
}

func anyOf[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
