package worker

import (
	"encoding/json"
	"os"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Stats is .stats/stats.json. The directory counts are read from the
// directory, so they hold whichever of several workers wrote last; the
// Worker part is the writer's own.
type Stats struct {
	UpdatedAt  string      `json:"updated_at"`
	Queued     int         `json:"queued"`
	Processing int         `json:"processing"`
	Processed  int         `json:"processed"`
	Failed     int         `json:"failed"`
	Worker     WorkerStats `json:"worker"`
}

type WorkerStats struct {
	Owner   string `json:"owner"`
	Done    int    `json:"done"`
	Failed  int    `json:"failed"`
	Running int    `json:"running"`
}

func (w *Worker) countJobs(dirs ...string) int {
	n := 0
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if _, _, ok := protocol.JobFile(e.Name()); ok {
				n++
			}
		}
	}
	return n
}

func (w *Worker) dated(top string) []string {
	var out []string
	entries, _ := os.ReadDir(w.dir(top))
	for _, e := range entries {
		if e.IsDir() && protocol.IsDateDir(e.Name()) {
			out = append(out, w.dir(top, e.Name()))
		}
	}
	return out
}

func (w *Worker) writeStats() {
	w.mu.Lock()
	ws := WorkerStats{Owner: w.owner, Done: w.done, Failed: w.failed, Running: len(w.running)}
	w.mu.Unlock()
	s := Stats{
		UpdatedAt:  time.Now().Format(time.RFC3339),
		Queued:     w.countJobs(w.dir(protocol.DirQueued)),
		Processing: w.countJobs(w.dir(protocol.DirProcessing)),
		Processed:  w.countJobs(w.dated(protocol.DirProcessed)...),
		Failed:     w.countJobs(w.dated(protocol.DirFailed)...),
		Worker:     ws,
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := fsutil.WriteFileAtomic(w.dir(protocol.DirStats, protocol.StatsFile), append(b, '\n'), 0o644); err != nil {
		w.log.Warn("stats", "error", err)
	}
}
