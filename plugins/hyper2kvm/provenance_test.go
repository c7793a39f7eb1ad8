package hyper2kvm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestForeignJobNeverAdopted: a job under the id a migration would use,
// made by another campaign, for another address or from another export,
// is reported foreign by ObserveJobs, refused by Submit and left alone by
// Withdraw; the job file is never touched.
func TestForeignJobNeverAdopted(t *testing.T) {
	f := newFixture(t)
	theirs := submitReq("migration.web", "web-a1", writeDisk(t, filepath.Join(f.in, "theirs.raw"), 1))
	theirs.Campaign = "0therca0-0000-4000-8000-000000000000"
	theirs.Export.Fingerprint = "vm-1@1"
	if _, err := f.c.Submit(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	queued := filepath.Join(f.wf, protocol.DirQueued, "web-a1.json")
	before, err := os.ReadFile(queued)
	if err != nil {
		t.Fatal(err)
	}
	ours := submitReq("migration.web", "web-a1", writeDisk(t, filepath.Join(f.in, "ours.raw"), 2))
	ours.Export.Fingerprint = "vm-9@1"
	for name, mutate := range map[string]func(*plugins.SubmitRequest){
		"another campaign": func(r *plugins.SubmitRequest) {},
		"another address": func(r *plugins.SubmitRequest) {
			r.Campaign, r.Address = theirs.Campaign, "migration.db"
		},
		"another export": func(r *plugins.SubmitRequest) {
			r.Campaign, r.Export.Fingerprint = theirs.Campaign, theirs.Export.Fingerprint
		},
	} {
		t.Run(name, func(t *testing.T) {
			req := ours
			mutate(&req)
			want := req.Provenance()
			_, err := f.c.Submit(context.Background(), req)
			if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "not this migration's") {
				t.Errorf("Submit: err = %v, want a terminal refusal", err)
			}
			resp, err := f.c.ObserveJobs(context.Background(), plugins.ObserveJobsRequest{Jobs: []plugins.JobQuery{
				{Address: req.Address, JobID: "web-a1", Want: want}}})
			if err != nil {
				t.Fatal(err)
			}
			if o := resp.Jobs["web-a1"]; o.State != plugins.JobForeign || o.Detail == "" {
				t.Errorf("observed %+v, want foreign with a detail", o)
			}
			w, err := f.c.Withdraw(context.Background(), plugins.WithdrawRequest{Address: req.Address, JobID: "web-a1", Want: want})
			if err != nil || w.Withdrawn {
				t.Errorf("Withdraw: %+v, %v; want not withdrawn", w, err)
			}
		})
	}
	after, err := os.ReadFile(queued)
	if err != nil || string(after) != string(before) {
		t.Errorf("the other campaign's job changed or moved (%v)", err)
	}
	// Its own campaign still sees it as queued.
	resp, err := f.c.ObserveJobs(context.Background(), plugins.ObserveJobsRequest{Jobs: []plugins.JobQuery{
		{Address: theirs.Address, JobID: "web-a1", Want: theirs.Provenance()}}})
	if err != nil || resp.Jobs["web-a1"].State != plugins.JobQueued {
		t.Errorf("owner observes %+v, %v; want queued", resp.Jobs["web-a1"], err)
	}
}
