package vsphere

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

func TestConfigResolve(t *testing.T) {
	const tp = "52:6C:4E:88:1D:78:AE:12:1C:F3:BB:6C:5B:F4:E2:82:86:A7:08:AF"
	type want struct {
		URL, User, Pass, DC, Thumbprint, CAFile string
		Insecure                                bool
		Disks                                   int
	}
	tests := map[string]struct {
		cfg     config
		env     map[string]string
		want    want
		wantErr string
	}{
		"block only": {
			cfg:  config{URL: "https://vc.example.com/sdk", Username: "u", Password: "p", Thumbprint: strings.ToLower(tp), MaxParallelDisks: 3},
			want: want{URL: "https://vc.example.com/sdk", User: "u", Pass: "p", Thumbprint: tp, Disks: 3},
		},
		"govc environment fills unset fields": {
			env: map[string]string{"GOVC_URL": "vc.example.com", "GOVC_USERNAME": "eu", "GOVC_PASSWORD": "ep",
				"GOVC_INSECURE": "1", "GOVC_DATACENTER": "DC1"},
			want: want{URL: "https://vc.example.com/sdk", User: "eu", Pass: "ep", DC: "DC1", Insecure: true, Disks: 2},
		},
		"user information in GOVC_URL": {
			env:  map[string]string{"GOVC_URL": "https://eu:s3cr%40t@vc.example.com/sdk", "GOVC_THUMBPRINT": tp},
			want: want{URL: "https://vc.example.com/sdk", User: "eu", Pass: "s3cr@t", Thumbprint: tp, Disks: 2},
		},
		"block trust settings shadow the environment's": {
			cfg:  config{URL: "https://vc/sdk", Username: "u", Password: "p", CAFile: "/etc/ca.pem"},
			env:  map[string]string{"GOVC_INSECURE": "true", "GOVC_THUMBPRINT": tp},
			want: want{URL: "https://vc/sdk", User: "u", Pass: "p", CAFile: "/etc/ca.pem", Disks: 2},
		},
		"no url":            {cfg: config{Username: "u", Password: "p"}, wantErr: "url is not set"},
		"no password":       {cfg: config{URL: "https://vc/sdk", Username: "u"}, wantErr: "username and password are required"},
		"two trust modes":   {cfg: config{URL: "https://vc/sdk", Username: "u", Password: "p", Thumbprint: tp, Insecure: true}, wantErr: "only one of"},
		"bad thumbprint":    {cfg: config{URL: "https://vc/sdk", Username: "u", Password: "p", Thumbprint: "52:6C"}, wantErr: "not a SHA-1"},
		"plain http":        {cfg: config{URL: "http://vc/sdk", Username: "u", Password: "p"}, wantErr: "only https"},
		"bad GOVC_INSECURE": {cfg: config{URL: "https://vc/sdk", Username: "u", Password: "p"}, env: map[string]string{"GOVC_INSECURE": "maybe"}, wantErr: "GOVC_INSECURE"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			set, err := tc.cfg.resolve(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{URL: set.u.String(), User: set.username, Pass: set.password, DC: set.datacenter,
				Thumbprint: set.thumbprint, CAFile: set.caFile, Insecure: set.insecure, Disks: set.disks}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("settings (-want +got):\n%s", d)
			}
		})
	}
}

// TestErrorsHideThePassword: a URL carrying a password never shows it.
func TestErrorsHideThePassword(t *testing.T) {
	_, err := config{URL: "ftp://u:topsecret@vc/sdk"}.resolve(func(string) string { return "" })
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error = %v", err)
	}
}

// TestNewDoesNotDial: building a source contacts nothing.
func TestNewDoesNotDial(t *testing.T) {
	clearGovcEnv(t)
	s := buildSource(t, cty.ObjectVal(map[string]cty.Value{
		"url": cty.StringVal("https://192.0.2.1/sdk"), "username": cty.StringVal("u"), "password": cty.StringVal("p"),
		"datacenter": cty.NullVal(cty.String), "thumbprint": cty.NullVal(cty.String), "ca_file": cty.NullVal(cty.String),
		"insecure": cty.True, "max_parallel_exports": cty.NumberIntVal(3), "max_parallel_disks": cty.NullVal(cty.Number),
	}))
	if s.conn != nil {
		t.Fatal("New connected")
	}
	if got := s.Limits().MaxParallel; got != 3 {
		t.Errorf("MaxParallel = %d, want 3", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := observeOne(ctx, s, "x"); err == nil {
		t.Error("observe with a cancelled context succeeded")
	}
}
