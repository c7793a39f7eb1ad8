package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// nodeOutcome is how one node of the walk ended.
type nodeOutcome int

const (
	outcomeDone nodeOutcome = iota
	outcomeFailed
	outcomeSkipped    // a dependency did not succeed, or the node is blocked
	outcomeNotStarted // the walk was cancelled before it started
	outcomeWaiting    // handed to the converter; a later pass goes on
	// outcomeElsewhere: another process works on it (a shared campaign);
	// its dependents wait too, as elsewhere.
	outcomeElsewhere
)

type nodeResult struct {
	outcome nodeOutcome
	reason  string // why skipped
}

// walk runs fn for every node once all of its deps finished with
// outcomeDone, at most par at a time. A node whose dependency failed or was
// skipped is skipped with the reason; once ctx is cancelled no node starts.
// fn reports its own outcome (a cancelled step is outcomeFailed with the
// context error, which the caller tells apart). deps must be acyclic
// (checkAcyclic) and name only nodes.
func walk(ctx context.Context, nodes []string, deps map[string][]string, par int,
	fn func(ctx context.Context, node string, s *slot) nodeOutcome) map[string]nodeResult {
	if par < 1 {
		par = 1
	}
	done := make(map[string]chan struct{}, len(nodes))
	for _, n := range nodes {
		done[n] = make(chan struct{})
	}
	var mu sync.Mutex
	res := make(map[string]nodeResult, len(nodes))
	set := func(n string, r nodeResult) { mu.Lock(); res[n] = r; mu.Unlock() }
	get := func(n string) nodeResult { mu.Lock(); defer mu.Unlock(); return res[n] }
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[n])
			for _, d := range deps[n] {
				select {
				case <-done[d]:
				case <-ctx.Done():
					set(n, nodeResult{outcome: outcomeNotStarted})
					return
				}
				if r := get(d); r.outcome == outcomeElsewhere {
					set(n, nodeResult{outcome: outcomeElsewhere, reason: fmt.Sprintf("dependency %s is another process's to migrate", d)})
					return
				} else if r.outcome != outcomeDone {
					why := "failed"
					switch r.outcome {
					case outcomeSkipped:
						why = "was skipped"
					case outcomeNotStarted:
						why = "did not start"
					case outcomeWaiting:
						why = "is still with the converter"
					}
					set(n, nodeResult{outcome: outcomeSkipped, reason: fmt.Sprintf("dependency %s %s", d, why)})
					return
				}
			}
			sl := &slot{sem: sem}
			if sl.take(ctx) != nil {
				set(n, nodeResult{outcome: outcomeNotStarted})
				return
			}
			defer sl.give()
			if ctx.Err() != nil {
				set(n, nodeResult{outcome: outcomeNotStarted})
				return
			}
			set(n, nodeResult{outcome: fn(ctx, n, sl)})
		}()
	}
	wg.Wait()
	return res
}

// slot is a node's share of the walk's parallelism. A node that only
// waits (for a converter to finish its job) gives it back meanwhile and
// takes it again before it works again, so that waiting migrations do not
// keep others from exporting. Its methods are for the node's goroutine.
type slot struct {
	sem  chan struct{}
	held bool
}

func (s *slot) take(ctx context.Context) error {
	if s.held {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
		s.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slot) give() {
	if s.held {
		<-s.sem
		s.held = false
	}
}

// checkAcyclic rejects a dependency cycle (Kahn's algorithm); the walk
// would deadlock on one.
func checkAcyclic(nodes []string, deps map[string][]string) error {
	indeg := make(map[string]int, len(nodes))
	users := map[string][]string{}
	for _, n := range nodes {
		indeg[n] += 0
		for _, d := range deps[n] {
			indeg[n]++
			users[d] = append(users[d], n)
		}
	}
	var queue []string
	for _, n := range nodes {
		if indeg[n] == 0 {
			queue = append(queue, n)
		}
	}
	seen := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		seen++
		for _, u := range users[n] {
			if indeg[u]--; indeg[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	if seen == len(nodes) {
		return nil
	}
	var cyc []string
	for _, n := range nodes {
		if indeg[n] > 0 {
			cyc = append(cyc, n)
		}
	}
	sort.Strings(cyc)
	return fmt.Errorf("depends_on forms a cycle among %s", strings.Join(cyc, ", "))
}
