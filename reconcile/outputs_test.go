package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
)

// unsummed is a converter that reports its outputs sized but not hashed,
// as the hyper2kvm observer does; with remove it also deletes them first.
type unsummed struct {
	*plugintest.Converter
	remove bool
}

func (c unsummed) ObserveJobs(ctx context.Context, req plugins.ObserveJobsRequest) (plugins.ObserveJobsResponse, error) {
	resp, err := c.Converter.ObserveJobs(ctx, req)
	for id, obs := range resp.Jobs {
		for i, o := range obs.Outputs {
			if c.remove {
				os.Remove(o.Path)
			}
			obs.Outputs[i].SHA256 = ""
		}
		resp.Jobs[id] = obs
	}
	return resp, err
}

// TestAwaitHashesUnsummedOutputs: outputs a converter reports without a
// sha256 are hashed by the await step, and state records the bytes' sum
// and size; an output gone before it is read fails the step, naming it,
// and records nothing of the job's outputs.
func TestAwaitHashesUnsummedOutputs(t *testing.T) {
	h := newHarness(t, t.TempDir(), "web")
	h.set.Converters[convAddr.String()] = unsummed{Converter: h.conv}
	h.converge()
	outs := h.state().Migrations["migration.web"].Outputs
	if len(outs) == 0 {
		t.Fatal("no outputs recorded")
	}
	for _, o := range outs {
		b, err := os.ReadFile(o.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if o.SHA256 != hex.EncodeToString(sum[:]) || o.Size != int64(len(b)) {
			t.Errorf("recorded %+v, want sha256 %x and size %d", o, sum, len(b))
		}
	}

	h = newHarness(t, t.TempDir(), "db")
	h.set.Converters[convAddr.String()] = unsummed{Converter: h.conv, remove: true}
	res := h.apply(h.plan(PlanRequest{}))
	if res.OK() {
		t.Fatal("apply succeeded with the job's output gone")
	}
	ms := h.state().Migrations["migration.db"]
	if ms.LastError == nil || ms.LastError.Step != StepAwait || !strings.Contains(ms.LastError.Message, "output ") ||
		!strings.Contains(ms.LastError.Message, "no such file") {
		t.Errorf("last error %+v, want the await step's, naming the missing output", ms.LastError)
	}
	if ms.Outputs != nil {
		t.Errorf("outputs recorded for a job whose output is gone: %+v", ms.Outputs)
	}
}
