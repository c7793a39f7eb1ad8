package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
)

// testURI is libvirt's test driver, opened through the real daemon that
// .ci/setup starts. Its domains live as long as a connection holds them.
const testURI = "test:///default"

func testConfig(t *testing.T) Config {
	return Config{
		URI:              testURI,
		StorageDir:       t.TempDir(),
		NetworkMap:       map[string]string{"VM Network": "default", "DMZ": "bridge:br-dmz"},
		Machine:          "q35",
		CPUMode:          "host-passthrough",
		UEFILoader:       defaultUEFILoader,
		UEFIVars:         defaultUEFIVars,
		UEFISecureLoader: defaultUEFISecureLoader,
		UEFISecureVars:   defaultUEFISecureVars,
		NVRAMDir:         defaultNVRAMDir,
	}
}

// newTestTarget returns a target with its own connection to the daemon,
// and fails (never skips) when the daemon cannot be reached.
func newTestTarget(t *testing.T, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tg.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := tg.conn.do(context.Background(), func(*golibvirt.Libvirt) error { return nil }); err != nil {
		t.Fatalf("libvirtd is not reachable (install and start it: run .ci/setup as root): %v", err)
	}
	return tg
}

var nameSeq atomic.Int64

// uniqueName keeps domains of different tests apart: the test driver's
// default connection is shared by every client while one is open.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nameSeq.Add(1))
}

// makeDisk creates a real 16 MiB disk image with qemu-img and returns it
// as a converter output.
func makeDisk(t *testing.T, dir, id, format string, bootOrder int) plugins.Output {
	t.Helper()
	return makeDiskSized(t, dir, id, format, bootOrder, "16M")
}

// makeDiskSized is makeDisk with a virtual size; images of two sizes differ
// in their bytes.
func makeDiskSized(t *testing.T, dir, id, format string, bootOrder int, size string) plugins.Output {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img not found: install qemu-utils (run .ci/setup)")
	}
	path := filepath.Join(dir, id+"."+format)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", format, path, size).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	sum, n := hashFile(t, path)
	return plugins.Output{DiskID: id, Path: path, Format: format, Size: n, SHA256: sum, BootOrder: bootOrder}
}

func hashFile(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func baseFacts(name string) plugins.VMFacts {
	return plugins.VMFacts{
		Name: name, OSFamily: "linux", Firmware: "bios", CPUs: 2, MemoryMiB: 1024,
		NICs: []plugins.NIC{
			{ID: "nic0", MAC: "00:50:56:01:02:03", Network: "VM Network"},
			{ID: "nic1", MAC: "00:50:56:0a:0b:0c", Network: "DMZ"},
		},
	}
}

// domainXML reads a domain's inactive XML straight from libvirt.
func domainXML(t *testing.T, tg *Target, name string) *libvirtxml.Domain {
	t.Helper()
	var x string
	err := tg.conn.do(context.Background(), func(l *golibvirt.Libvirt) error {
		d, err := l.DomainLookupByName(name)
		if err != nil {
			return err
		}
		x, err = l.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	return &d
}

// redefine changes a domain out of band, as an administrator would.
func redefine(t *testing.T, tg *Target, d *libvirtxml.Domain) {
	t.Helper()
	x, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	err = tg.conn.do(context.Background(), func(l *golibvirt.Libvirt) error {
		_, err := l.DomainDefineXML(x)
		return err
	})
	if err != nil {
		t.Fatalf("redefine %s: %v", d.Name, err)
	}
}

func undefine(t *testing.T, tg *Target, name string) {
	t.Helper()
	err := tg.conn.do(context.Background(), func(l *golibvirt.Libvirt) error {
		d, err := l.DomainLookupByName(name)
		if err != nil {
			return err
		}
		if active, _ := l.DomainIsActive(d); active == 1 {
			if err := l.DomainDestroy(d); err != nil {
				return err
			}
		}
		var flags golibvirt.DomainUndefineFlagsValues
		if tg.cfg.URI != testURI { // the test driver keeps no NVRAM files
			flags = golibvirt.DomainUndefineNvram
		}
		return l.DomainUndefineFlags(d, flags)
	})
	if err != nil && !isLibvirtError(err, golibvirt.ErrNoDomain) {
		t.Errorf("undefine %s: %v", name, err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
