package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

var (
	_ plugins.Converter  = (*Converter)(nil)
	_ plugins.Limited    = (*Converter)(nil)
	_ plugins.JobChecker = (*Converter)(nil)
)

// Converter is a fake converter. A job moves on with each ObserveJobs
// pass that sees it: queued at the first, processing after, and at pass
// Rounds it ends: succeeded with a real output file next to the
// export, or failed/stalled when told so. Submit is idempotent by job id,
// as the contract requires; in file-backed mode every submission and end
// is a journal line.
type Converter struct {
	Name        string
	MaxParallel int
	Rounds      int           // observations until a job ends; default 3
	Delay       time.Duration // how long Submit works
	Dir         string

	mu        sync.Mutex
	jobs      map[string]*fakeJob
	fail      map[string]string // by address: the job fails with this error
	stall     map[string]string
	failNext  map[string]int // by address: fail this many more jobs
	observes  int
	queried   int
	withdrawn map[string]int
	submitted map[string]int
	inFlight  gauge
	log       *journal
	checks    map[string][]plugins.Finding
	// claimedStalls makes stalled jobs claimed ones (a consumer took them).
	claimedStalls bool
	consumer      *plugins.ConsumerStatus
}

// SetCheck makes CheckJobs report findings for addr (nil clears them).
func (c *Converter) SetCheck(addr string, fs []plugins.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil {
		c.checks = map[string][]plugins.Finding{}
	}
	c.checks[addr] = fs
}

// SetConsumer makes CheckJobs report a consumer (default: a live one).
func (c *Converter) SetConsumer(s plugins.ConsumerStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consumer = &s
}

// CheckJobs reports what SetCheck and SetConsumer said.
func (c *Converter) CheckJobs(ctx context.Context, req plugins.CheckJobsRequest) (plugins.CheckJobsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := plugins.CheckJobsResponse{Consumer: plugins.ConsumerStatus{Live: true, Detail: "the fake converts"},
		Findings: map[string][]plugins.Finding{}}
	if c.consumer != nil {
		resp.Consumer = *c.consumer
	}
	for _, j := range req.Jobs {
		if fs := c.checks[j.Address]; fs != nil {
			resp.Findings[j.Address] = fs
		}
	}
	return resp, nil
}

type fakeJob struct {
	ID          string                `json:"id"`
	Address     string                `json:"address"`
	Export      plugins.ExportResult  `json:"export"`
	Provenance  plugins.JobProvenance `json:"provenance"`
	Claimed     bool                  `json:"claimed,omitempty"`
	SubmittedAt time.Time             `json:"submitted_at"`
	State       plugins.JobState      `json:"state"`
	Error       string                `json:"error,omitempty"`
	Outputs     []plugins.Output      `json:"outputs,omitempty"`
	rounds      int
}

type jobLine struct {
	Op  string  `json:"op"` // submit | end | withdraw
	Job fakeJob `json:"job"`
}

// NewConverter returns a fake converter; dir "" keeps everything in memory.
func NewConverter(name, dir string) (*Converter, error) {
	c := &Converter{Name: name, Dir: dir, Rounds: 3, jobs: map[string]*fakeJob{}, fail: map[string]string{},
		stall: map[string]string{}, failNext: map[string]int{}, withdrawn: map[string]int{}, submitted: map[string]int{}}
	var err error
	if c.log, err = newJournal(dir, name+"-jobs.log"); err != nil {
		return nil, err
	}
	err = c.log.replay(func(line []byte) error {
		var l jobLine
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		j := l.Job
		switch l.Op {
		case "submit":
			c.jobs[j.ID] = &j
			c.submitted[j.Address]++
		case "end":
			c.jobs[j.ID] = &j
		case "withdraw":
			delete(c.jobs, j.ID)
		}
		return nil
	})
	return c, err
}

// FailJobs makes addr's jobs fail with msg ("" clears it).
func (c *Converter) FailJobs(addr, msg string) { c.set(c.fail, addr, msg) }

// StallJobs makes addr's jobs stall with detail ("" clears it).
func (c *Converter) StallJobs(addr, detail string) { c.set(c.stall, addr, detail) }

// StallClaimedJobs makes addr's jobs stall after a consumer claimed them.
func (c *Converter) StallClaimedJobs(addr, detail string) {
	c.mu.Lock()
	c.claimedStalls = true
	c.mu.Unlock()
	c.StallJobs(addr, detail)
}

// FailNextJobs makes the next n jobs of addr fail.
func (c *Converter) FailNextJobs(addr string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failNext[addr] = n
}

func (c *Converter) set(m map[string]string, addr, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == "" {
		delete(m, addr)
	} else {
		m[addr] = v
	}
}

func (c *Converter) Limits() plugins.Limits { return plugins.Limits{MaxParallel: c.MaxParallel} }

func (c *Converter) Submit(ctx context.Context, req plugins.SubmitRequest) (plugins.SubmitResponse, error) {
	if err := work(ctx, c.Delay, nil); err != nil {
		return plugins.SubmitResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, ok := c.jobs[req.JobID]; ok {
		if why := req.Provenance().Mismatch(j.Provenance); why != "" {
			return plugins.SubmitResponse{}, plugins.Terminal(fmt.Errorf("job %s exists and is not this migration's (%s)", req.JobID, why))
		}
		return plugins.SubmitResponse{JobID: req.JobID}, nil
	}
	j := &fakeJob{ID: req.JobID, Address: req.Address, Export: req.Export, Provenance: req.Provenance(),
		SubmittedAt: time.Now().UTC(), State: plugins.JobQueued}
	if err := c.log.append(jobLine{Op: "submit", Job: *j}); err != nil {
		return plugins.SubmitResponse{}, err
	}
	c.jobs[req.JobID] = j
	c.submitted[req.Address]++
	c.inFlight.inc()
	return plugins.SubmitResponse{JobID: req.JobID}, nil
}

func (c *Converter) ObserveJobs(ctx context.Context, req plugins.ObserveJobsRequest) (plugins.ObserveJobsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observes++
	c.queried += len(req.Jobs)
	out := plugins.ObserveJobsResponse{Jobs: make(map[string]plugins.JobObservation, len(req.Jobs))}
	for _, q := range req.Jobs {
		j, ok := c.jobs[q.JobID]
		if !ok {
			continue
		}
		if why := q.Want.Mismatch(j.Provenance); why != "" {
			out.Jobs[q.JobID] = plugins.JobObservation{JobID: j.ID, State: plugins.JobForeign, Detail: why}
			continue
		}
		if err := c.advance(j); err != nil {
			return plugins.ObserveJobsResponse{}, err
		}
		out.Jobs[q.JobID] = plugins.JobObservation{JobID: j.ID, State: j.State, Since: j.SubmittedAt,
			Error: j.Error, Detail: j.Error, Outputs: j.Outputs, Claimed: j.Claimed}
	}
	return out, nil
}

// advance moves a job one state on; the caller holds c.mu.
func (c *Converter) advance(j *fakeJob) error {
	if j.State != plugins.JobQueued && j.State != plugins.JobProcessing {
		return nil
	}
	j.rounds++
	if j.rounds < max(c.Rounds, 1) {
		if j.rounds > 1 {
			j.State = plugins.JobProcessing
		}
		return nil
	}
	switch {
	case c.fail[j.Address] != "":
		j.State, j.Error = plugins.JobFailed, c.fail[j.Address]
	case c.failNext[j.Address] > 0:
		c.failNext[j.Address]--
		j.State, j.Error = plugins.JobFailed, "injected failure"
	case c.stall[j.Address] != "":
		j.State, j.Error = plugins.JobStalled, c.stall[j.Address]
		j.Claimed = c.claimedStalls
	default:
		outs, err := convert(j)
		if err != nil {
			return err
		}
		j.State, j.Outputs = plugins.JobSucceeded, outs
	}
	c.inFlight.dec()
	return c.log.append(jobLine{Op: "end", Job: *j})
}

// convert writes one output per exported disk under <export dir>/converted.
func convert(j *fakeJob) ([]plugins.Output, error) {
	var outs []plugins.Output
	for _, d := range j.Export.Disks {
		p := filepath.Join(j.Export.Dir, "converted", j.ID, d.ID+".qcow2")
		size, sum, err := writeFile(p, fmt.Appendf(nil, "qcow2 of %s (%s)\n", d.Path, d.SHA256))
		if err != nil {
			return nil, fmt.Errorf("fake conversion of job %s: %w", j.ID, err)
		}
		outs = append(outs, plugins.Output{DiskID: d.ID, Path: p, Format: "qcow2", Size: size, SHA256: sum, BootOrder: d.BootOrder})
	}
	return outs, nil
}

func (c *Converter) Withdraw(ctx context.Context, req plugins.WithdrawRequest) (plugins.WithdrawResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[req.JobID]
	switch {
	case !ok:
		return plugins.WithdrawResponse{Withdrawn: false, Detail: "no such job"}, nil
	case req.Want.Mismatch(j.Provenance) != "":
		return plugins.WithdrawResponse{Withdrawn: false, Detail: "not this migration's job: " + req.Want.Mismatch(j.Provenance)}, nil
	case j.State != plugins.JobQueued && j.State != plugins.JobStalled:
		return plugins.WithdrawResponse{Withdrawn: false, Detail: "the job was claimed (" + string(j.State) + ")"}, nil
	}
	if err := c.log.append(jobLine{Op: "withdraw", Job: *j}); err != nil {
		return plugins.WithdrawResponse{}, err
	}
	if j.State == plugins.JobQueued {
		c.inFlight.dec()
	}
	delete(c.jobs, req.JobID)
	c.withdrawn[req.Address]++
	return plugins.WithdrawResponse{Withdrawn: true}, nil
}

// Submits counts the jobs submitted for addr (file mode: across
// processes). A repeated Submit of a known job id does not count.
func (c *Converter) Submits(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.submitted[addr]
}

// Job returns the job's current state.
func (c *Converter) Job(id string) (plugins.JobState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[id]
	if !ok {
		return plugins.JobUnknown, false
	}
	return j.State, true
}

func (c *Converter) Withdrawn(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.withdrawn[addr]
}
func (c *Converter) ObserveCalls() int { c.mu.Lock(); defer c.mu.Unlock(); return c.observes }
func (c *Converter) HighWater() int    { c.mu.Lock(); defer c.mu.Unlock(); return c.inFlight.high }
func (c *Converter) InFlight() int     { c.mu.Lock(); defer c.mu.Unlock(); return c.inFlight.cur }
