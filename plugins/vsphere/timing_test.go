package vsphere

import "time"

// testDefaults shortens the pause between two looks at a task, a lease or
// a power state, which the simulator answers at once.
func testDefaults(s *Source) { s.timing.poll = 20 * time.Millisecond }

// tune makes the deadlines and retries fit a test: fractions of a second
// instead of minutes, three attempts.
func tune(s *Source) {
	s.timing = timing{call: 2 * time.Second, stall: 500 * time.Millisecond, wait: 30 * time.Second,
		poll: 20 * time.Millisecond, cleanup: time.Second, restore: 30 * time.Second,
		retry: retryPolicy{first: 20 * time.Millisecond, max: 100 * time.Millisecond, tries: 3, elapsed: time.Minute}}
}

// onRetry makes f hear of every retry.
func onRetry(s *Source, f func(what string, err error)) { s.retried = f }

// callDeadline sets the deadline of each vSphere call.
func callDeadline(s *Source, d time.Duration) { s.timing.call = d }

// retryPause makes every pause between two attempts d.
func retryPause(s *Source, d time.Duration) { s.timing.retry.first, s.timing.retry.max = d, d }
