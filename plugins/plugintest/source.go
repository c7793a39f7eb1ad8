package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

var (
	_ plugins.Source        = (*Source)(nil)
	_ plugins.ExportPruner  = (*Source)(nil)
	_ plugins.ExportAdopter = (*Source)(nil)
	_ plugins.Limited       = (*Source)(nil)
)

// VM is a fake VM. A path the fake was not told about is found, with
// fingerprint "v1" and the path's base as its name.
type VM struct {
	Missing     bool              `json:"missing,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Findings    []plugins.Finding `json:"findings,omitempty"`
	// FailExport makes every export of the VM fail with this message
	// (retryable), so that file-backed tests can fail a step.
	FailExport string `json:"fail_export,omitempty"`
	// Bare makes the VM a bare disk image: no CPU or memory facts.
	Bare bool `json:"bare,omitempty"`
	// Name overrides the VM's name (the path's base by default).
	Name string `json:"name,omitempty"`
}

// Source is a fake source. Export writes a real disk file into the
// requested directory (so the engine's stat checks see it) and records the
// export; in file-backed mode (Dir set) the record is a journal line, so a
// count survives SIGKILL, and VM overrides are read from <name>-vms.json.
type Source struct {
	Name        string
	MaxParallel int
	Delay       time.Duration // how long each Export works
	Gate        chan struct{} // when set, each Export waits for a value
	// AbortDelay is how long a cancelled Export takes to return, as a real
	// export's lease abort and clean-up do; it ignores ctx on purpose.
	AbortDelay time.Duration
	// ProgressBytes, when set, makes each Export report moving
	// disk-0.vmdk of that size at an even pace over Delay.
	ProgressBytes int64
	Dir           string

	mu        sync.Mutex
	vms       map[string]VM
	fail      map[string]error // by address
	exports   []exportRecord
	prunes    map[string]int
	observes  int
	queried   int
	exporting gauge
	log       *journal
}

type exportRecord struct {
	Address string               `json:"address"`
	Result  plugins.ExportResult `json:"result"`
}

// NewSource returns a fake source; dir "" keeps everything in memory.
func NewSource(name, dir string) (*Source, error) {
	s := &Source{Name: name, Dir: dir, vms: map[string]VM{}, fail: map[string]error{}, prunes: map[string]int{}}
	var err error
	if s.log, err = newJournal(dir, name+"-exports.log"); err != nil {
		return nil, err
	}
	err = s.log.replay(func(line []byte) error {
		var r exportRecord
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		s.exports = append(s.exports, r)
		return nil
	})
	return s, err
}

// SetVM overrides what the fake sees at a VM path.
func (s *Source) SetVM(vmPath string, vm VM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vms[vmPath] = vm
}

// FailExport makes every Export of addr fail with err (nil clears it).
func (s *Source) FailExport(addr string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.fail, addr)
	} else {
		s.fail[addr] = err
	}
}

func (s *Source) Limits() plugins.Limits { return plugins.Limits{MaxParallel: s.MaxParallel} }

// vm returns the fake VM at a path; the caller holds s.mu.
func (s *Source) vm(p string) VM {
	if s.Dir != "" {
		if b, err := os.ReadFile(filepath.Join(s.Dir, s.Name+"-vms.json")); err == nil {
			var m map[string]VM
			if json.Unmarshal(b, &m) == nil {
				for k, v := range m {
					s.vms[k] = v
				}
			}
		}
	}
	v := s.vms[p]
	if v.Fingerprint == "" {
		v.Fingerprint = "v1"
	}
	return v
}

func (s *Source) ObserveVMs(ctx context.Context, req plugins.ObserveVMsRequest) (plugins.ObserveVMsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observes++
	s.queried += len(req.VMs)
	out := plugins.ObserveVMsResponse{VMs: make(map[string]plugins.VMObservation, len(req.VMs))}
	for _, q := range req.VMs {
		v := s.vm(q.Path)
		if v.Missing {
			out.VMs[q.Address] = plugins.VMObservation{Found: false}
			continue
		}
		out.VMs[q.Address] = plugins.VMObservation{Found: true, Fingerprint: v.Fingerprint, Facts: v.facts(q.Path), Findings: v.Findings}
	}
	return out, nil
}

func (v VM) facts(vmPath string) plugins.VMFacts {
	f := plugins.VMFacts{Name: path.Base(vmPath), OSFamily: "linux", Firmware: "bios", CPUs: 2, MemoryMiB: 2048,
		PowerState: "poweredOff", Disks: []plugins.DiskFact{{ID: "disk-0", CapacityBytes: 1 << 30}},
		NICs: []plugins.NIC{{ID: "nic-0", MAC: "00:50:56:00:00:01", Network: "VM Network"}}}
	if v.Name != "" {
		f.Name = v.Name
	}
	if v.Bare {
		f.CPUs, f.MemoryMiB = 0, 0
	}
	return f
}

// Export writes <dir>/disk-0.vmdk and records the export.
func (s *Source) Export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResponse, error) {
	s.mu.Lock()
	s.exporting.inc()
	err := s.fail[req.Address]
	v := s.vm(req.VM)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.exporting.dec(); s.mu.Unlock() }()
	if err := s.work(ctx, req); err != nil {
		if s.AbortDelay > 0 {
			time.Sleep(s.AbortDelay)
		}
		return plugins.ExportResponse{}, err
	}
	if err != nil {
		return plugins.ExportResponse{}, err
	}
	if v.Missing {
		return plugins.ExportResponse{}, plugins.Terminal(fmt.Errorf("VM %s not found", req.VM))
	}
	if v.FailExport != "" {
		return plugins.ExportResponse{}, fmt.Errorf("export %s: %s", req.VM, v.FailExport)
	}
	disk := filepath.Join(req.Dir, "disk-0.vmdk")
	size, sum, err := writeFile(disk, fmt.Appendf(nil, "fake disk of %s at %s\n", req.VM, v.Fingerprint))
	if err != nil {
		return plugins.ExportResponse{}, fmt.Errorf("export %s: %w", req.Address, err)
	}
	res := plugins.ExportResult{Dir: req.Dir, Fingerprint: v.Fingerprint, Facts: v.facts(req.VM), ExportedAt: time.Now().UTC(),
		Files: []plugins.File{{Path: disk, Size: size, SHA256: sum}},
		Disks: []plugins.Disk{{ID: "disk-0", Path: disk, Format: "vmdk", Size: size, SHA256: sum, CapacityBytes: 1 << 30}}}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The journal line is the export's completion: written once, after
	// the files are in place.
	if err := s.log.append(exportRecord{Address: req.Address, Result: res}); err != nil {
		return plugins.ExportResponse{}, err
	}
	s.exports = append(s.exports, exportRecord{Address: req.Address, Result: res})
	return plugins.ExportResponse{Export: res}, nil
}

// AdoptExport finds the last completed export of the address into req.Dir
// whose files are intact.
func (s *Source) AdoptExport(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResult, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.exports) - 1; i >= 0; i-- {
		r := s.exports[i]
		if r.Address != req.Address || r.Result.Dir != req.Dir {
			continue
		}
		for _, f := range r.Result.Files {
			if !fileIntact(f.Path, f.Size) {
				return plugins.ExportResult{}, false, nil
			}
		}
		return r.Result, true, nil
	}
	return plugins.ExportResult{}, false, nil
}

func (s *Source) PruneExport(ctx context.Context, req plugins.PruneExportRequest) error {
	for _, f := range req.Export.Files {
		if err := os.Remove(f.Path); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunes[req.Address]++
	return nil
}

// Exports counts the completed exports of addr (all of them in file mode,
// across processes).
func (s *Source) Exports(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.exports {
		if r.Address == addr {
			n++
		}
	}
	return n
}

// Prunes counts PruneExport calls for addr.
func (s *Source) Prunes(addr string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.prunes[addr] }

// ObserveCalls counts ObserveVMs calls; Queried counts the VMs asked about.
func (s *Source) ObserveCalls() int { s.mu.Lock(); defer s.mu.Unlock(); return s.observes }

// InFlight and HighWater are the exports running now and at most.
func (s *Source) InFlight() int  { s.mu.Lock(); defer s.mu.Unlock(); return s.exporting.cur }
func (s *Source) HighWater() int { s.mu.Lock(); defer s.mu.Unlock(); return s.exporting.high }

// work stands for the time a real plugin spends: it waits for d, for a
// value on gate when set, and gives up when ctx ends.
// progressSteps is how many reports an export with ProgressBytes makes
// before its last.
const progressSteps = 20

// work is the export's time, reported as progress with ProgressBytes.
func (s *Source) work(ctx context.Context, req plugins.ExportRequest) error {
	if s.ProgressBytes <= 0 {
		return work(ctx, s.Delay, s.Gate)
	}
	gate := s.Gate
	for i := range int64(progressSteps) {
		req.Progress(plugins.ProgressEvent{Address: req.Address, Item: "disk-0.vmdk", Done: s.ProgressBytes * i / progressSteps, Total: s.ProgressBytes})
		if err := work(ctx, s.Delay/progressSteps, gate); err != nil {
			return err
		}
		gate = nil
	}
	req.Progress(plugins.ProgressEvent{Address: req.Address, Item: "disk-0.vmdk", Done: s.ProgressBytes, Total: s.ProgressBytes})
	return nil
}

func work(ctx context.Context, d time.Duration, gate chan struct{}) error {
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
