package plugins

import (
	"testing"
	"time"
)

// TestThroughput: the rate is over the reports of the last RateWindow; a
// report within RateSample replaces the newest sample rather than adding
// one; a total that went down, a single report or a reset gives no rate;
// the ETA needs a known total and a rate.
func TestThroughput(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var tp Throughput
	if r := tp.Rate(); r != 0 {
		t.Fatalf("empty: rate %v", r)
	}
	tp.Add(t0, 0)
	if r := tp.Rate(); r != 0 {
		t.Fatalf("one report: rate %v", r)
	}
	// 1 MB/s for a minute, a report every 100 ms.
	for i := 1; i <= 600; i++ {
		tp.Add(t0.Add(time.Duration(i)*100*time.Millisecond), int64(i)*100_000)
	}
	if r := tp.Rate(); r != 1_000_000 {
		t.Errorf("steady: rate %v, want 1e6", r)
	}
	if n := len(tp.samples); n > 2*int(RateWindow/RateSample)+2 {
		t.Errorf("%d samples kept, want at most two per RateSample over RateWindow", n)
	}
	if first := tp.samples[0].at; t0.Add(time.Minute).Sub(first) > RateWindow+RateSample {
		t.Errorf("oldest sample %v, older than the window", first)
	}
	// Then 3 MB/s for the last 30 s: the window holds only that.
	at := t0.Add(time.Minute)
	for i := 1; i <= 300; i++ {
		tp.Add(at.Add(time.Duration(i)*100*time.Millisecond), 60_000_000+int64(i)*300_000)
	}
	if r := tp.Rate(); r < 2_950_000 || r > 3_000_000 {
		t.Errorf("after speeding up: rate %v, want about 3e6", r)
	}
	if eta := ETA(90_000_000, 120_000_000, tp.Rate()); eta == nil || *eta < 10*time.Second || *eta > 10200*time.Millisecond {
		t.Errorf("ETA %v, want about 10 s", eta)
	}
	if ETA(5, -1, 100) != nil || ETA(5, 10, 0) != nil {
		t.Error("an ETA without a total or a rate")
	}
	tp.Add(at.Add(31*time.Second), 0) // started over
	if r := tp.Rate(); r != 0 {
		t.Errorf("total went down: rate %v, want 0", r)
	}
	tp.Reset()
	tp.Add(at.Add(32*time.Second), 5)
	if r := tp.Rate(); r != 0 {
		t.Errorf("after a reset and one report: rate %v", r)
	}
}
