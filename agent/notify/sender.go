package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/schema"
)

// sender delivers one webhook's events, oldest queued first, one at a
// time: the head is retried with capped exponential backoff until the
// receiver answers 2xx, and the next waits behind it, so a receiver sees
// events in the order they were queued.
type sender struct {
	n   *Notifier
	box outbox
	log hclog.Logger

	mu    sync.Mutex
	hook  schema.Webhook
	queue []*Event
	// wake says an event was queued; kick that the webhook's settings
	// changed (a fixed URL is tried at once, not after the backoff).
	wake, kick chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

func newSender(n *Notifier, dir string, hook schema.Webhook) *sender {
	s := &sender{n: n, box: outbox{dir: dir}, hook: hook, log: n.log.With("webhook", hook.Name),
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	evs, errs := s.box.list()
	for _, err := range errs {
		s.log.Error("an outbox file cannot be read", "error", n.redact(err.Error()))
	}
	s.queue = evs
	if len(evs) > 0 {
		s.log.Info("events from before are waiting for delivery", "events", len(evs))
	}
	return s
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// settings replaces the webhook's settings; a change retries at once.
func (s *sender) settings(h schema.Webhook) {
	s.mu.Lock()
	changed := !sameHook(&s.hook, &h)
	s.hook = h
	s.mu.Unlock()
	if changed {
		signal(s.kick)
	}
}

func sameHook(a, b *schema.Webhook) bool {
	return a.URL == b.URL && a.Secret == b.Secret && a.Format == b.Format
}

// put queues ev for this webhook: in the outbox first, then in memory.
func (s *sender) put(ev *Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	wrote, err := s.box.put(ev)
	if err != nil || !wrote {
		return err
	}
	s.queue = append(s.queue, ev)
	signal(s.wake)
	return nil
}

func (s *sender) depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *sender) head() (*Event, schema.Webhook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil, s.hook
	}
	return s.queue[0], s.hook
}

// start runs the delivery loop until stop or ctx ends.
func (s *sender) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

func (s *sender) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

func (s *sender) run(ctx context.Context) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier, b.RandomizationFactor = s.n.o.RetryMin, s.n.o.RetryMax, 2, 0.2
	b.Reset()
	attempts := 0
	for {
		ev, hook := s.head()
		if ev == nil {
			select {
			case <-s.wake:
			case <-s.kick:
			case <-ctx.Done():
				return
			}
			continue
		}
		attempts++
		err := s.post(ctx, ev, hook)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.delivered(ev, attempts)
			attempts = 0
			b.Reset()
			continue
		}
		s.n.m.failures.WithLabelValues(hook.Name).Inc()
		wait := b.NextBackOff()
		s.log.Warn("notification not delivered; retrying", "id", ev.ID, "type", ev.Type, "address", ev.Address,
			"attempt", attempts, "error", s.n.redact(err.Error()), "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.kick:
			b.Reset()
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// delivered drops an acknowledged event: its file, then the queue's head.
func (s *sender) delivered(ev *Event, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.box.remove(ev.ID); err != nil {
		s.log.Error("a delivered event stays in the outbox; it will be sent again", "id", ev.ID, "error", s.n.redact(err.Error()))
	}
	if len(s.queue) > 0 && s.queue[0] == ev {
		s.queue = s.queue[1:]
	}
	s.n.m.delivered.WithLabelValues(s.hook.Name).Inc()
	s.log.Info("notification delivered", "id", ev.ID, "type", ev.Type, "address", ev.Address, "attempts", attempts)
}

// post sends one attempt. Its error never carries the URL (a chat tool's
// URL is a credential) nor the receiver's answer.
func (s *sender) post(ctx context.Context, ev *Event, hook schema.Webhook) error {
	body, err := ev.Body(hook.Format)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook's URL does not make a request")
	}
	ts := strconv.FormatInt(s.n.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hyperagent/"+s.n.o.Version)
	req.Header.Set(HeaderEvent, ev.Type)
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderTimestamp, ts)
	if hook.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(hook.Secret, ts, body))
	}
	resp, err := s.n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
