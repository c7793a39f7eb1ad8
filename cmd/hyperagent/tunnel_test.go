package main

import (
	"io"
	"net"
	"sync"
	"testing"
)

// sshTunnel is what `ssh -L PORT:SOCKET host` gives a browser: a TCP
// port on loopback whose connections are carried, byte for byte, to the
// agent's unix socket. It returns the port's base URL.
func sshTunnel(t *testing.T, sock string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		shut  bool
	)
	track := func(c net.Conn, open bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case open && shut:
			c.Close()
		case open:
			conns[c] = true
		default:
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		shut = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			track(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer track(c, false)
				defer c.Close()
				u, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done // either side closed: close both
				c.Close()
				u.Close()
				<-done
			}()
		}
	}()
	return "http://" + l.Addr().String()
}
