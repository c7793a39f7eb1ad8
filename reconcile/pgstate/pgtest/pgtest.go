// Package pgtest gives tests the PostgreSQL database .ci/setup starts:
// its connection string, a workspace of their own in it, removed when the
// test ends, and a relay to put between a process and the server. An unreachable server fails the test (it is never
// skipped), naming .ci/setup.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the tests' connection string.
const Env = "HYPERAGENT_TEST_PG"

// Default is the role and database .ci/setup makes.
const Default = "postgres://hyperagent_test:hyperagent_test@127.0.0.1:5432/hyperagent_test?sslmode=disable"

// ConnStr returns the tests' connection string after checking that the
// server answers.
func ConnStr(t testing.TB, getenv func(string) string) string {
	t.Helper()
	cs := getenv(Env)
	if cs == "" {
		cs = Default
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cs)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(ctx)
	}
	if err != nil {
		t.Fatalf("the tests' PostgreSQL is not reachable (%v): run .ci/setup as root to start it, or set %s", err, Env)
	}
	return cs
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// Workspace is a fresh workspace name for t; its rows are deleted when
// the test ends.
func Workspace(t testing.TB, connStr string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := unsafe.ReplaceAllString(t.Name(), "-") + "-" + hex.EncodeToString(b)
	t.Cleanup(func() { Drop(t, connStr, name) })
	return name
}

// Drop deletes a workspace's rows (its records and lock go with it).
func Drop(t testing.TB, connStr, workspace string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connStr)
	if err != nil {
		t.Errorf("dropping workspace %s: %v", workspace, err)
		return
	}
	defer conn.Close(ctx)
	// The schema is there once any backend connected; before, nothing
	// of the workspace can be either.
	_, err = conn.Exec(ctx, `DO $$ BEGIN
		IF to_regclass('hyperagent_campaigns') IS NOT NULL THEN
			DELETE FROM hyperagent_campaigns WHERE workspace = '`+workspace+`';
		END IF; END $$`)
	if err != nil {
		t.Errorf("dropping workspace %s: %v", workspace, err)
	}
}

// Relay accepts connections on ln until it is closed, dials server (a
// host:port) for each, and hands both to handle, which owns them. A
// connection whose server cannot be dialled is closed. Tests put it
// between a process and the tests' server to stand for a network.
func Relay(ln net.Listener, server string, handle func(client, server net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			handle(c, s)
		}
	}()
}
