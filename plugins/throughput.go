package plugins

import "time"

// RateWindow is how far back a Throughput's rate looks; RateSample bounds
// how many samples it keeps (Add).
const (
	RateWindow = 30 * time.Second
	RateSample = 250 * time.Millisecond
)

// Throughput follows a running total of bytes (a ProgressEvent's Done, or
// the sum of several items') and gives its rate over the last RateWindow:
// what the CLI's progress lines and the agent's status show. The zero
// value is ready; it is not safe for concurrent use.
type Throughput struct {
	samples []throughputSample
}

type throughputSample struct {
	at    time.Time
	total int64
}

// Add records the total at a time. A report within RateSample of the
// sample before the newest replaces the newest, so the window holds at
// most two samples per RateSample however often reports come, and always
// ends at the latest report; samples older than RateWindow go, the last
// two kept.
func (t *Throughput) Add(at time.Time, total int64) {
	if n := len(t.samples); n >= 2 && at.Sub(t.samples[n-2].at) < RateSample {
		t.samples[n-1] = throughputSample{at, total}
	} else {
		t.samples = append(t.samples, throughputSample{at, total})
	}
	for len(t.samples) > 2 && at.Sub(t.samples[0].at) > RateWindow {
		t.samples = t.samples[1:]
	}
}

// Reset forgets every sample (a new item starts).
func (t *Throughput) Reset() { t.samples = t.samples[:0] }

// Rate is in bytes per second from the oldest sample kept to the newest;
// 0 until two reports came at different times, and when the total went
// down (a transfer that started over).
func (t *Throughput) Rate() float64 {
	n := len(t.samples)
	if n < 2 {
		return 0
	}
	a, b := t.samples[0], t.samples[n-1]
	if dt := b.at.Sub(a.at); dt > 0 && b.total >= a.total {
		return float64(b.total-a.total) / dt.Seconds()
	}
	return 0
}

// ETA is how long the bytes left of total take at rate; nil when the
// total or the rate is unknown.
func ETA(done, total int64, rate float64) *time.Duration {
	if total < 0 || rate <= 0 {
		return nil
	}
	eta := time.Duration(float64(max(total-done, 0)) / rate * float64(time.Second))
	return &eta
}
