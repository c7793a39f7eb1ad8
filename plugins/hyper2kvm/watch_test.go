package hyper2kvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// TestWatch: a file appearing in a date folder created after Watch started
// (and in processing/, created after too) says "look again".
func TestWatch(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 16)
	done := make(chan error)
	go func() { done <- f.c.Watch(ctx, func() { changed <- struct{}{} }) }()

	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatalf("no change reported after %s", what)
		}
	}
	drain := func() {
		for {
			select {
			case <-changed:
			default:
				return
			}
		}
	}
	// The watch is set up asynchronously: create until it reports.
	for i := 0; ; i++ {
		os.MkdirAll(filepath.Join(f.wf, "processed"), 0o755)
		os.WriteFile(filepath.Join(f.wf, "probe"), nil, 0o644)
		select {
		case <-changed:
		case <-time.After(time.Second):
			if i < 30 {
				continue
			}
			t.Fatal("watch never reported")
		}
		break
	}
	time.Sleep(watchWindow * 2) // let the burst settle before the next step
	drain()
	date := filepath.Join(f.wf, "processed", "2026-11-23")
	os.Mkdir(date, 0o755)
	wait("a new date folder")
	time.Sleep(watchWindow * 2)
	drain()
	mustWrite(t, filepath.Join(date, "j.json.report.json"), "{}")
	wait("a sidecar in the new date folder")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLandingIsUrgent: files under processed/ and failed/ are job
// landings, which the watch reports at once; the queue, processing/ and
// names outside the workflow directory are not.
func TestLandingIsUrgent(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]bool{
		filepath.Join(f.wf, "processed", "2026-11-23", "j.json.report.json"): true,
		filepath.Join(f.wf, "processed", "2026-11-23"):                       true,
		filepath.Join(f.wf, "failed", "j.json.error.json"):                   true,
		filepath.Join(f.wf, "to_be_processed", "j.json"):                     false,
		filepath.Join(f.wf, "processing", "j.json"):                          false,
		filepath.Join(f.wf, "processedx", "j.json"):                          false,
		filepath.Join(filepath.Dir(f.wf), "processed", "j.json"):             false,
	} {
		if got := f.c.landing(path); got != want {
			t.Errorf("landing(%s) = %v, want %v", path, got, want)
		}
	}
}

// TestFactory: the block's config decodes into a working converter; a bad
// attribute value is refused terminally, marked with the attribute (the CLI
// shows it at its file:line) and without the block's address (the plugin
// set adds it).
func TestFactory(t *testing.T) {
	dir := t.TempDir()
	cfg := func(timeout string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{
			"workflow_dir": cty.StringVal(dir), "output_dir": cty.StringVal(dir), "unit": cty.NullVal(cty.String),
			"timeout": cty.StringVal(timeout), "max_in_flight": cty.NumberIntVal(3),
		})
	}
	addr := addrs.Plugin{Kind: addrs.KindConverter, Type: Type, Name: "main"}
	v, err := Factory().New(context.Background(), plugins.NewRequest{Addr: addr, Config: cfg("90m"), Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c := v.(*Converter)
	if c.timeout != 90*time.Minute || c.Limits().MaxParallel != 3 {
		t.Errorf("timeout %s, limits %+v", c.timeout, c.Limits())
	}
	_, err = Factory().New(context.Background(), plugins.NewRequest{Addr: addr, Config: cfg("soon")})
	var ce *plugins.ConfigError
	if !plugins.IsTerminal(err) || !errors.As(err, &ce) || ce.Attr != "timeout" || err.Error() != `timeout "soon": want a positive duration such as "2h"` {
		t.Errorf("bad timeout: %v, want a terminal error on attribute timeout", err)
	}
	for _, attr := range []string{"workflow_dir", "output_dir"} {
		c := Config{WorkflowDir: dir, OutputDir: dir}
		if attr == "workflow_dir" {
			c.WorkflowDir = "relative/wf"
		} else {
			c.OutputDir = "relative/out"
		}
		_, err := New(c, nil)
		if !errors.As(err, &ce) || ce.Attr != attr || !strings.HasPrefix(err.Error(), attr+" ") {
			t.Errorf("relative %s: %v, want an error on that attribute", attr, err)
		}
	}
}
