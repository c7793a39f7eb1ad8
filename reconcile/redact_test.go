package reconcile

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactStandsAlone(t *testing.T) {
	tests := map[string]struct {
		secret, in, want string
	}{
		"host holding the password": {"example", `dial tcp: lookup vcenter.example.com: no such host`,
			`dial tcp: lookup vcenter.example.com: no such host`},
		"url userinfo": {"example", `https://admin:example@vcenter.example.com/sdk refused`,
			`https://admin:(sensitive value)@vcenter.example.com/sdk refused`},
		"quoted":           {"s3cret", `password "s3cret" rejected`, `password "(sensitive value)" rejected`},
		"end of sentence":  {"s3cret", `login failed with s3cret.`, `login failed with (sensitive value).`},
		"key=value":        {"hunter2", `user=bob password=hunter2 host=x`, `user=bob password=(sensitive value) host=x`},
		"inside a word":    {"pass", `password expired`, `password expired`},
		"hyphenated name":  {"web", `domain web-01 exists`, `domain web-01 exists`},
		"short, alone":     {"a1", `got a1 back`, `got (sensitive value) back`},
		"short, in words":  {"a1", `disk a11 on ba1`, `disk a11 on ba1`},
		"repeated":         {"xyz", `xyz:xyz`, `(sensitive value):(sensitive value)`},
		"symbols at edges": {"p@ss!", `secret p@ss! leaked`, `secret (sensitive value) leaked`},
		"unicode word":     {"clé", `la clé est clé2`, `la (sensitive value) est clé2`},
		"common word":      {"root", `ssh root@host and /root/.ssh and rootfs`, `ssh (sensitive value)@host and /(sensitive value)/.ssh and rootfs`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := NewRedactor([]string{tc.secret})
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedactLongestFirstAndSwap(t *testing.T) {
	r := NewRedactor([]string{"abc", "abc-def"})
	if got := r.String("token abc-def and abc"); got != "token (sensitive value) and (sensitive value)" {
		t.Errorf("got %q", got)
	}
	r.SetSecrets([]string{"zzz"})
	if got := r.String("abc zzz"); got != "abc (sensitive value)" {
		t.Errorf("after swap: %q", got)
	}
	var nilR *Redactor
	if nilR.String("abc") != "abc" {
		t.Error("a nil Redactor must pass text through")
	}
}

func TestRedactErrorKeepsChain(t *testing.T) {
	r := NewRedactor([]string{"hunter2"})
	base := &LockedError{Dir: "/x"}
	err := r.Error(errors.Join(errors.New("password hunter2 wrong"), base))
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("not redacted: %v", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || !isRedacted(err) {
		t.Errorf("chain lost: %#v", err)
	}
	plain := errors.New("nothing secret")
	if r.Error(plain) != plain {
		t.Error("an error with nothing to redact must be returned as is")
	}
}

func TestRedactWriter(t *testing.T) {
	var b strings.Builder
	w := NewRedactor([]string{"hunter2"}).Writer(&b)
	if _, err := w.Write([]byte("[ERROR] login: hunter2 rejected\n")); err != nil {
		t.Fatal(err)
	}
	if b.String() != "[ERROR] login: (sensitive value) rejected\n" {
		t.Errorf("got %q", b.String())
	}
}
