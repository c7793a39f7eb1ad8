package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client reads and drives a running agent through its status API
// (`hyperagent status`).
type Client struct {
	spec  string
	base  string
	token []byte
	hc    *http.Client
}

// Unreachable is the error of a request that reached no agent: nothing
// listens there, or the connection failed.
type Unreachable struct {
	Spec string
	Err  error
}

func (e *Unreachable) Error() string { return fmt.Sprintf("no agent answers on %s: %v", e.Spec, e.Err) }
func (e *Unreachable) Unwrap() error { return e.Err }

// RemoteError is an error answer of the API.
type RemoteError struct {
	Code    int
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("the agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// NewClient returns a client of the API at spec ("unix:PATH" or
// "tcp:HOST:PORT"); token, when set, is sent as a bearer token.
func NewClient(spec string, token []byte) (*Client, error) {
	kind, addr, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConns: 2, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: 30 * time.Second}
	base := "http://" + addr
	if kind == "unix" {
		base = "http://localhost"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}
	}
	return &Client{spec: spec, base: base, token: token, hc: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// Migrations is GET /v1/migrations.
func (c *Client) Migrations(ctx context.Context) (MigrationsResponse, error) {
	var m MigrationsResponse
	err := c.do(ctx, http.MethodGet, "/v1/migrations", nil, &m)
	return m, err
}

// Do sends a request with body (nil: none) as JSON and decodes the
// answer into out (nil: discarded).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, path, body, out)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil || method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != nil {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // the cause, without the URL
		}
		return &Unreachable{Spec: c.spec, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &Unreachable{Spec: c.spec, Err: err}
	}
	if resp.StatusCode >= 300 {
		var e APIError
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return &RemoteError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the agent's answer to %s %s: %w", method, path, err)
	}
	return nil
}
