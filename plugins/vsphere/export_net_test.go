package vsphere

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// seedVM makes the VM exportable and its first disk hold data.
func seedVM(ctx context.Context, t *testing.T, srv *vcsimtest.Server, f *find.Finder, name string, data []byte) *object.VirtualMachine {
	t.Helper()
	vm := findVM(t, f, "/DC0/vm/"+name)
	if err := srv.MakeExportable(vm.Reference()); err != nil {
		t.Fatal(err)
	}
	upload(ctx, t, f, name+"/disk1.vmdk", data)
	return vm
}

// claimedDir is an export directory the engine claimed, as it does before
// calling Export: it holds the owner file.
func claimedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "web")
	if err := plugins.ClaimDir(dir, plugins.Owner{Campaign: "c0ffee", Address: "migration.web"}, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// firstDiskCapacity is the capacity of the VM's first disk as the source sees it.
func firstDiskCapacity(ctx context.Context, t *testing.T, s *Source, vmPath string) int64 {
	t.Helper()
	obs, err := observeOne(ctx, s, vmPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Facts.Disks) == 0 {
		t.Fatalf("%s has no disk", vmPath)
	}
	return obs.Facts.Disks[0].CapacityBytes
}

// TestExportRefusesIncompleteDisks serves disks that did not arrive whole
// in every way the network and the server allow, and disks that did: an
// incomplete one fails the export, which leaves nothing but the owner file
// behind, aborts its leases, powers the VM back on and returns nothing.
func TestExportRefusesIncompleteDisks(t *testing.T) {
	flat := content(11, 5<<20+77)
	type data func(capacity int64) []byte
	flatData := func(int64) []byte { return flat }
	stream := func(capacity int64) []byte { return vmwareStream(t, content(12, 3<<20+5), capacity) }
	tests := map[string]struct {
		mode     vcsimtest.NFCMode
		fault    *vcsimtest.NFCFault
		data     data
		want     string // a part of the error; "" for a whole export
		terminal bool
	}{
		"cut, chunked framing": {mode: vcsimtest.NFCStock, data: flatData, want: "unexpected EOF",
			fault: &vcsimtest.NFCFault{Kind: vcsimtest.NFCCut, After: 3 << 20}},
		// Each retry resumes and is cut 1 MiB further: 3 MiB of 5 in 3 tries.
		"cut, Content-Length": {mode: vcsimtest.NFCRanges, data: flatData, want: "unexpected EOF",
			fault: &vcsimtest.NFCFault{Kind: vcsimtest.NFCCut, After: 1 << 20}},
		"cut, no framing": {mode: vcsimtest.NFCCloseDelimited, data: flatData, want: "cannot tell whether",
			fault: &vcsimtest.NFCFault{Kind: vcsimtest.NFCCut, After: 3 << 20}},
		"whole, no framing, flat bytes":  {mode: vcsimtest.NFCCloseDelimited, data: flatData, want: "cannot tell whether"},
		"whole, no framing, VMDK stream": {mode: vcsimtest.NFCCloseDelimited, data: stream},
		"cut, no framing, VMDK stream": {mode: vcsimtest.NFCCloseDelimited, data: stream, want: "VMDK stream ends after",
			fault: &vcsimtest.NFCFault{Kind: vcsimtest.NFCCut, After: 2 << 20}},
		"VMDK stream the server cut itself": {mode: vcsimtest.NFCStock, want: "before its footer",
			data: func(c int64) []byte { b := stream(c); return b[:len(b)-1536] }},
		"short end only the manifest shows": {mode: vcsimtest.NFCStock, data: flatData, want: "vSphere sent",
			fault: &vcsimtest.NFCFault{Kind: vcsimtest.NFCEnd, After: 3 << 20}},
		"another disk's VMDK": {mode: vcsimtest.NFCStock, want: "wrong disk", terminal: true,
			data: func(c int64) []byte { return stream(2 * c) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := startSim(t, vcsimtest.Options{})
			ctx := context.Background()
			_, f := admin(t, srv)
			s := newTestSource(t, blockConfig(srv, nil))
			tune(s)
			disk := tc.data(firstDiskCapacity(ctx, t, s, "/DC0/vm/DC0_H0_VM0"))
			vm := seedVM(ctx, t, srv, f, "DC0_H0_VM0", disk)
			srv.SetNFC(tc.mode)
			if tc.fault != nil {
				srv.InjectNFC(*tc.fault)
			}
			dir := claimedDir(t)
			var p progressLog
			res, err := s.Export(ctx, exportRequest(dir, &p, true))
			leases := srv.Leases.Leases()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d := res.Export.Disks[0]; d.SHA256 != sha(disk) || d.Size != int64(len(disk)) {
					t.Errorf("disk %d bytes %s, want %d bytes %s", d.Size, d.SHA256, len(disk), sha(disk))
				}
				if len(leases) != 1 || srv.Leases.Final(leases[0]) != vcsimtest.LeaseCompleted {
					t.Errorf("leases %v: want one, completed", leases)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			t.Log(err)
			if strings.HasPrefix(err.Error(), "export ") {
				t.Errorf("the error starts with the step: %v", err)
			}
			if plugins.IsTerminal(err) != tc.terminal {
				t.Errorf("terminal = %v, want %v", plugins.IsTerminal(err), tc.terminal)
			}
			if !cmp.Equal(res, plugins.ExportResponse{}) {
				t.Errorf("a failed export returned %+v", res)
			}
			if d := cmp.Diff([]string{plugins.OwnerFile}, dirEntries(t, dir)); d != "" {
				t.Errorf("export dir after a refused export (-want +got):\n%s", d)
			}
			if len(leases) == 0 {
				t.Error("no lease was opened")
			}
			for _, l := range leases {
				if srv.Leases.Final(l) != vcsimtest.LeaseAborted {
					t.Errorf("lease %s ended %q, want aborted", l, srv.Leases.Final(l))
				}
			}
			if st := powerState(ctx, t, vm); st != types.VirtualMachinePowerStatePoweredOn {
				t.Errorf("power state %s after a refused export, want poweredOn", st)
			}
		})
	}
}

// TestExportResumes cuts the download once at 90% (or stalls it there):
// where the server honours Range, the retry asks for the rest and gets
// only that (206), and the hash goes on from where it was, reading
// nothing of the file back; where it does not (vcsim's own NFC answers
// 200 and the whole file), the retry starts over. Either way the disk is
// byte for byte the seed, its sha256 the seed's.
func TestExportResumes(t *testing.T) {
	const size = 4<<20 + 123
	tests := map[string]struct {
		mode   vcsimtest.NFCMode
		fault  vcsimtest.NFCFaultKind
		status int
		resume bool
	}{
		"server honours Range":         {mode: vcsimtest.NFCRanges, fault: vcsimtest.NFCCut, status: 206, resume: true},
		"server honours Range, stalls": {mode: vcsimtest.NFCRanges, fault: vcsimtest.NFCStall, status: 206, resume: true},
		"server ignores Range":         {mode: vcsimtest.NFCStock, fault: vcsimtest.NFCCut, status: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := startSim(t, vcsimtest.Options{})
			ctx := context.Background()
			_, f := admin(t, srv)
			vm, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", size)
			srv.SetNFC(tc.mode)
			srv.InjectNFC(vcsimtest.NFCFault{Kind: tc.fault, After: size * 9 / 10, Times: 1})
			s := newTestSource(t, blockConfig(srv, nil))
			tune(s)
			var p progressLog
			res, err := s.Export(ctx, exportRequest(claimedDir(t), &p, true))
			if err != nil {
				t.Fatal(err)
			}
			d := res.Export.Disks[0]
			if d.SHA256 != sha(data) || d.Size != size {
				t.Errorf("disk %d bytes %s, want %d bytes %s", d.Size, d.SHA256, size, sha(data))
			}
			if b, err := os.ReadFile(d.Path); err != nil || !bytes.Equal(b, data) {
				t.Errorf("%s differs from the seed (%v)", d.Path, err)
			}
			reqs := srv.NFCRequests()
			if len(reqs) != 2 || reqs[0].Fault != tc.fault {
				t.Fatalf("NFC requests %+v: want one %v, then the retry", reqs, tc.fault)
			}
			kept := reqs[0].Sent
			again := reqs[1]
			if again.Range != fmt.Sprintf("bytes=%d-", kept) || again.Status != tc.status {
				t.Errorf("retry: Range %q answered %d, want bytes=%d- answered %d", again.Range, again.Status, kept, tc.status)
			}
			t.Logf("cut after %d of %d bytes; the retry downloaded %d bytes", kept, size, again.Sent)
			switch {
			case tc.resume && again.Sent != size-kept:
				t.Errorf("the resumed download carried %d bytes, want the %d missing", again.Sent, size-kept)
			case !tc.resume && again.Sent != size:
				t.Errorf("the download started over with %d bytes, want all %d", again.Sent, size)
			}
			if tc.resume {
				p.check(t, "migration.web", map[string]int64{d.ID + ".vmdk": size})
				if n := s.reread.Load(); n != 0 {
					t.Errorf("the resume read %d bytes of the file back to hash them again, want none", n)
				}
			}
			if leases := srv.Leases.Leases(); len(leases) != 1 || srv.Leases.Final(leases[0]) != vcsimtest.LeaseCompleted {
				t.Errorf("leases %v: want one, completed (a resume stays in its lease)", leases)
			}
			if got := srv.Calls(vm.Reference()); !cmp.Equal(got, []string{"ShutdownGuest", "ExportVm"}) {
				t.Errorf("VM calls %v", got)
			}
		})
	}
}

// TestExportStalledDownload: a server that stops sending mid-disk fails
// the download after the stall deadline, again on each retry, and the
// export ends with an error saying so; one that stalls once is retried.
func TestExportStalledDownload(t *testing.T) {
	for _, times := range []int{0, 1} {
		t.Run(fmt.Sprintf("stalls %d times (0: always)", times), func(t *testing.T) {
			srv := startSim(t, vcsimtest.Options{})
			ctx := context.Background()
			_, f := admin(t, srv)
			_, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", 3<<20)
			srv.InjectNFC(vcsimtest.NFCFault{Kind: vcsimtest.NFCStall, After: 1 << 20, Times: times})
			s := newTestSource(t, blockConfig(srv, nil))
			tune(s)
			dir := claimedDir(t)
			var p progressLog
			type result struct {
				res plugins.ExportResponse
				err error
			}
			r := within(t, 60*time.Second, "an export from a stalled server", func() result {
				res, err := s.Export(ctx, exportRequest(dir, &p, true))
				return result{res, err}
			})
			if times == 1 {
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.res.Export.Disks[0].SHA256 != sha(data) {
					t.Error("sha256 differs after a stalled download was retried")
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "no data from") || !strings.Contains(r.err.Error(), "gave up after 3 attempts") {
				t.Fatalf("error = %v, want a stall, retried 3 times", r.err)
			}
			t.Log(r.err)
			if d := cmp.Diff([]string{plugins.OwnerFile}, dirEntries(t, dir)); d != "" {
				t.Errorf("export dir (-want +got):\n%s", d)
			}
		})
	}
}

// TestExportFrozenVCenter stops the simulator's process (SIGSTOP) once the
// download is under way: its connections stay open and nothing answers.
// The export must end on its own deadlines with an error naming the
// stall, and a cancelled export must return within seconds: the lease
// abort and the power-on it still attempts have short deadlines of their
// own.
func TestExportFrozenVCenter(t *testing.T) {
	for _, cancelIt := range []bool{false, true} {
		t.Run(map[bool]string{false: "deadlines", true: "cancelled"}[cancelIt], func(t *testing.T) {
			child := startChildSim(t, 32<<20)
			s := newTestSource(t, blockConfig(child.srv, nil))
			tune(s)
			callDeadline(s, time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			var frozenAt time.Time
			var p progressLog
			p.on = func(plugins.ProgressEvent) {
				once.Do(func() {
					if err := child.freeze(); err != nil {
						t.Error(err)
					}
					frozenAt = time.Now()
					if cancelIt {
						time.AfterFunc(200*time.Millisecond, cancel)
					}
				})
			}
			dir := claimedDir(t)
			err := within(t, 60*time.Second, "an export from a frozen vCenter", func() error {
				_, err := s.Export(ctx, exportRequest(dir, &p, true))
				return err
			})
			if frozenAt.IsZero() {
				t.Fatalf("the export ended before the server froze: %v", err)
			}
			t.Logf("returned %s after the freeze: %v", time.Since(frozenAt).Round(time.Millisecond), err)
			switch {
			case err == nil:
				t.Fatal("the export succeeded from a frozen server")
			case cancelIt && !errors.Is(err, context.Canceled):
				t.Fatalf("error = %v, want the cancellation", err)
			case !cancelIt && !strings.Contains(err.Error(), "no data from"):
				t.Fatalf("error = %v, want a stalled download", err)
			}
			if d := cmp.Diff([]string{plugins.OwnerFile}, dirEntries(t, dir)); d != "" {
				t.Errorf("export dir (-want +got):\n%s", d)
			}
		})
	}
}

// TestExportRetriesRefusedConnection starts the export while nothing
// listens at the vCenter's address; once the first attempt was refused,
// the address starts forwarding to the simulator, and a retry succeeds.
func TestExportRetriesRefusedConnection(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	_, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", 2<<20+9)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused until the retry below listens again
	u := *srv.URL
	u.Host = addr
	front := &vcsimtest.Server{URL: &u, Username: srv.Username, Password: srv.Password}
	// The lease's device URLs name the simulator's own address, where no
	// thumbprint is pinned.
	s := newTestSource(t, blockConfig(front, map[string]cty.Value{"thumbprint": cty.NullVal(cty.String), "insecure": cty.True}))
	tune(s)
	retryPause(s, 300*time.Millisecond)
	refused := make(chan error, 1)
	onRetry(s, func(what string, err error) {
		select {
		case refused <- err:
		default:
		}
	})
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(done); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case err := <-refused:
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("first failure %v, want a refused connection", err)
			}
		case <-done:
			return
		case <-time.After(30 * time.Second):
			t.Error("no retry was announced")
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { l.Close() })
		forward(l, srv.URL.Host)
	}()
	var p progressLog
	res, err := s.Export(ctx, exportRequest(claimedDir(t), &p, true))
	if err != nil {
		t.Fatal(err)
	}
	if res.Export.Disks[0].SHA256 != sha(data) {
		t.Error("sha256 differs")
	}
}

// forward copies every connection accepted on l to and from addr.
func forward(l net.Listener, addr string) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer d.Close()
				go func() { _, _ = io.Copy(d, c); d.Close() }()
				_, _ = io.Copy(c, d)
			}()
		}
	}()
}

// TestExportKeepsOwnerFile exports into a directory the engine claimed and
// prunes it: the owner file is never recorded, moved or deleted, and the
// directory stays for the engine to release.
func TestExportKeepsOwnerFile(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	exportable(ctx, t, srv, f, "DC0_H0_VM0", 1<<20)
	s := newTestSource(t, blockConfig(srv, nil))
	dir := claimedDir(t)
	owner, err := os.ReadFile(filepath.Join(dir, plugins.OwnerFile))
	if err != nil {
		t.Fatal(err)
	}
	var p progressLog
	res, err := s.Export(ctx, exportRequest(dir, &p, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Export.Files {
		if filepath.Base(f.Path) == plugins.OwnerFile {
			t.Errorf("the owner file is recorded as part of the export: %+v", f)
		}
	}
	if err := s.PruneExport(ctx, plugins.PruneExportRequest{Address: "migration.web", Export: res.Export}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{plugins.OwnerFile}, dirEntries(t, dir)); d != "" {
		t.Errorf("export dir after prune (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(filepath.Join(dir, plugins.OwnerFile)); err != nil || !bytes.Equal(b, owner) {
		t.Errorf("owner file changed: %q, %v", b, err)
	}
}

// TestExportErrorsHideThePassword: a URL that carries user:password, at an
// address that refuses connections, fails the export after its retries;
// neither the error nor the retry warnings show the password.
func TestExportErrorsHideThePassword(t *testing.T) {
	const secret = "pa55-Wq7-secret"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	clearGovcEnv(t)
	var logs strings.Builder
	var mu sync.Mutex
	v, err := Factory().New(context.Background(), plugins.NewRequest{
		Addr: addrs.Plugin{Kind: addrs.KindSource, Type: Type, Name: "test"},
		Config: cty.ObjectVal(map[string]cty.Value{
			"url": cty.StringVal("https://bob:" + secret + "@" + addr + "/sdk"), "username": cty.NullVal(cty.String),
			"password": cty.NullVal(cty.String), "datacenter": cty.NullVal(cty.String), "thumbprint": cty.NullVal(cty.String),
			"ca_file": cty.NullVal(cty.String), "insecure": cty.True,
			"max_parallel_exports": cty.NumberIntVal(1), "max_parallel_disks": cty.NumberIntVal(1)}),
		Logger: hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logs}, Level: hclog.Trace}),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Source)
	tune(s)
	var p progressLog
	_, err = s.Export(context.Background(), exportRequest(claimedDir(t), &p, true))
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("error = %v, want unreachable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "retrying") {
		t.Fatalf("no retry was logged:\n%s", logs.String())
	}
	for _, text := range []string{err.Error(), logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the password appears in: %s", text)
		}
	}
}

// TestExportQemuImage exports a disk seeded with a qemu-img
// streamOptimized image (grain directory in its header, no footer): its
// grain tables show where it ends, and the seed gives the simulated disk
// the image's capacity, which the check compares.
func TestExportQemuImage(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm := findVM(t, f, "/DC0/vm/DC0_H0_VM0")
	if err := srv.MakeExportable(vm.Reference()); err != nil {
		t.Fatal(err)
	}
	const capacity = 16 << 20
	img := qemuImage(t, content(13, 5<<20+3), capacity, "streamOptimized")
	if _, err := srv.Seed(vm.Reference(), 0, bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	s := newTestSource(t, blockConfig(srv, nil))
	var p progressLog
	res, err := s.Export(ctx, exportRequest(claimedDir(t), &p, true))
	if err != nil {
		t.Fatal(err)
	}
	d := res.Export.Disks[0]
	if d.SHA256 != sha(img) || d.Size != int64(len(img)) || d.CapacityBytes != capacity {
		t.Errorf("disk %d bytes %s of capacity %d, want %d bytes %s of capacity %d",
			d.Size, d.SHA256, d.CapacityBytes, len(img), sha(img), capacity)
	}
}
