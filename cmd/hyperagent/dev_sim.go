package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// devUser is the account the simulator accepts; its password is drawn at
// random for each run and reaches the repo only through the environment.
const devUser = "migrator@vsphere.local"

// devPassword draws the simulator's password; tests replace it to look
// for the secret in what dev wrote.
var devPassword = func() (string, error) { return randomHex(16) }

// devVM is one simulated VM and the disk bytes seeded into it.
type devVM struct {
	Name     string // inventory name, e.g. web-01
	Path     string // inventory path, e.g. /DC0/vm/web-01
	SeedRaw  string // the guest bytes as a raw image, kept for comparison
	Size     int64  // virtual size of the disk
	VMDKSize int64  // bytes of the streamOptimized VMDK the export serves
	SHA256   string // of the served VMDK
}

// devVMNames names n VMs: a database, then the web tier.
func devVMNames(n int) []string {
	names := []string{"db-01"}
	for i := 1; i < n; i++ {
		names = append(names, fmt.Sprintf("web-%02d", i))
	}
	return names
}

// startDevSim starts the simulator with at least len(names) VMs, renames
// the first ones (in inventory order) to names, makes them exportable and
// seeds each one's disk with sizeMiB of known bytes, written as a
// streamOptimized VMDK as vCenter serves it. Raw copies go to seedDir.
func startDevSim(ctx context.Context, names []string, sizeMiB int, seedDir string) (*vcsimtest.Server, []devVM, error) {
	password, err := devPassword()
	if err != nil {
		return nil, nil, err
	}
	// The VPX model has two resource pools with Machine VMs each.
	srv, err := vcsimtest.Start(vcsimtest.Options{Machine: (len(names) + 1) / 2, Username: devUser, Password: password})
	if err != nil {
		return nil, nil, err
	}
	vms, err := arrangeDevVMs(ctx, srv, names, sizeMiB, seedDir)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, vms, nil
}

func arrangeDevVMs(ctx context.Context, srv *vcsimtest.Server, names []string, sizeMiB int, seedDir string) ([]devVM, error) {
	c, err := srv.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("vcsim: log in: %w", err)
	}
	defer func() { _ = c.Logout(context.WithoutCancel(ctx)) }()
	found, err := find.NewFinder(c.Client).VirtualMachineList(ctx, "/DC0/vm/*")
	if err != nil {
		return nil, fmt.Errorf("vcsim: list VMs: %w", err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].InventoryPath < found[j].InventoryPath })
	if len(found) < len(names) {
		return nil, fmt.Errorf("vcsim: %d VMs, want %d", len(found), len(names))
	}
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		return nil, err
	}
	var out []devVM
	for i, name := range names {
		vm, err := seedDevVM(ctx, srv, found[i], name, int64(sizeMiB)<<20, seedDir, uint64(i+1))
		if err != nil {
			return nil, fmt.Errorf("vcsim: prepare %s: %w", name, err)
		}
		out = append(out, vm)
	}
	return out, nil
}

func seedDevVM(ctx context.Context, srv *vcsimtest.Server, vm *object.VirtualMachine, name string, size int64, seedDir string, seed uint64) (devVM, error) {
	task, err := vm.Rename(ctx, name)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return devVM{}, fmt.Errorf("rename: %w", err)
	}
	// Seeding overwrites the disk descriptor, so it comes after every
	// simulator call that reads it.
	if err := srv.MakeExportable(vm.Reference()); err != nil {
		return devVM{}, err
	}
	raw := filepath.Join(seedDir, name+".raw")
	if err := writeSeedImage(raw, size, seed); err != nil {
		return devVM{}, err
	}
	vmdk := filepath.Join(seedDir, name+".vmdk")
	if out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk",
		"-o", "subformat=streamOptimized", raw, vmdk).CombinedOutput(); err != nil {
		return devVM{}, fmt.Errorf("qemu-img convert: %v: %s", err, out)
	}
	defer os.Remove(vmdk)
	f, err := os.Open(vmdk)
	if err != nil {
		return devVM{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := srv.Seed(vm.Reference(), 0, io.TeeReader(f, h))
	if err != nil {
		return devVM{}, fmt.Errorf("seed disk: %w", err)
	}
	return devVM{Name: name, Path: "/DC0/vm/" + name, SeedRaw: raw, Size: size, VMDKSize: n,
		SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeSeedImage writes a sparse raw image of size bytes whose 1 MiB
// chunks cycle through incompressible bytes, text, a hole and more random
// bytes, so the conversion has data, zeros and compressible runs to carry.
func writeSeedImage(path string, size int64, seed uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	r := mrand.New(mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'h', 'a'}))
	chunk := make([]byte, 1<<20)
	for off, i := int64(0), 0; off < size; off, i = off+int64(len(chunk)), i+1 {
		switch i % 4 {
		case 0, 3:
			for j := range chunk {
				chunk[j] = byte(r.Uint32())
			}
		case 1:
			line := fmt.Appendf(nil, "hyperagent demo disk %d, chunk %d\n", seed, i)
			for j := range chunk {
				chunk[j] = line[j%len(line)]
			}
		case 2:
			continue // a hole: reads as zeros
		}
		if _, err := f.WriteAt(chunk, off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
