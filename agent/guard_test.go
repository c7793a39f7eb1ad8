package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGuardRefusesBrowserCrossSite: on a loopback address with no token,
// what another site's page can make a browser send (a text/plain POST, a
// cross-site or foreign-origin POST, a rebound host name) is refused
// before it reaches the API, and no pass is triggered; the API's own
// client is served.
func TestGuardRefusesBrowserCrossSite(t *testing.T) {
	l, err := Listen("tcp:127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + l.Addr().String()
	hc := &http.Client{Timeout: 10 * time.Second}
	for name, tc := range map[string]struct {
		method, host string
		header       map[string]string
		code         int
	}{
		"text/plain POST":    {"POST", "", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		"form POST":          {"POST", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		"POST with no type":  {"POST", "", nil, http.StatusUnsupportedMediaType},
		"cross-site fetch":   {"POST", "", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		"same-site fetch":    {"POST", "", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		"foreign origin":     {"POST", "", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, http.StatusForbidden},
		"rebound name, GET":  {"GET", "evil.example:80", nil, http.StatusMisdirectedRequest},
		"rebound name, POST": {"POST", "rebind.evil.example", map[string]string{"Content-Type": "application/json"}, http.StatusMisdirectedRequest},
		"own page's fetch":   {"POST", "", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": base}, http.StatusAccepted},
		"the CLI's request":  {"POST", "", map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusAccepted},
		"localhost by name":  {"GET", "localhost", nil, http.StatusOK},
		"a browser's GET":    {"GET", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			path := "/v1/reconcile"
			if tc.method == "GET" {
				path = "/v1/status"
			}
			req, err := http.NewRequest(tc.method, base+path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			drain(a)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.code)
			}
			triggered := drain(a)
			if want := tc.code == http.StatusAccepted; triggered != want {
				t.Errorf("pass triggered: %v, want %v", triggered, want)
			}
		})
	}

	// The API's own client, over the same address, is served.
	c, err := NewClient("tcp:"+l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(context.Background(), http.MethodPost, "/v1/reconcile", nil, nil); err != nil {
		t.Fatalf("the client's POST: %v", err)
	}
}

// drain says whether a pass was asked for, and forgets it.
func drain(a *Agent) bool {
	select {
	case <-a.dirty:
		return true
	default:
		return false
	}
}

func TestUnrebindableHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LOCALHOST.": true, "ui.localhost:1": true,
		"127.0.0.1": true, "127.0.0.1:9": true, "[::1]:9": true, "::1": true, "192.0.2.2:80": true,
		"evil.example": false, "localhost.evil.example": false, "": false, "agent": false,
	} {
		if got := unrebindableHost(host); got != want {
			t.Errorf("unrebindableHost(%q) = %v, want %v", host, got, want)
		}
	}
}
