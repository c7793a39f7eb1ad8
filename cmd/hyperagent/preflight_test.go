package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/plugins/worker"
)

// TestPreflightBeforePowerOff: against govmomi's simulator, with every VM
// powered on and power_off = true, each case that used to surface only
// once the VM was off (or later) is an error in the plan, with the fix;
// apply runs nothing and every VM is still on. A live worker serves the
// workflow directory (its heartbeat), so the converter's own checks speak.
func TestPreflightBeforePowerOff(t *testing.T) {
	srv, err := vcsimtest.Start(vcsimtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := srv.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder := find.NewFinder(c.Client)
	vm0, err := finder.VirtualMachine(ctx, "/DC0/vm/DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm0.Rename(ctx, "web 01's")
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	for _, d := range []string{"wf", "out", "elsewhere", "exports", "images", "repo"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := worker.New(worker.Config{WorkflowDir: filepath.Join(work, "wf"), InputRoots: []string{filepath.Join(work, "exports")},
		OutputRoots: []string{filepath.Join(work, "out")}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() { stopWorker(); <-workerDone }()
	<-w.Ready()

	hcl := fmt.Sprintf(`
variable "pw" {
  sensitive = true
}
source "vsphere" "dc0" {
  url        = %q
  username   = %q
  password   = var.pw
  thumbprint = %q
  datacenter = "DC0"
}
converter "hyper2kvm" "w" {
  workflow_dir = "%[4]s/wf"
  output_dir   = "%[4]s/out"
}
converter "hyper2kvm" "elsewhere" {
  workflow_dir = "%[4]s/wf"
  output_dir   = "%[4]s/elsewhere"
}
target "libvirt" "kvm" {
  uri         = "test:///default"
  storage_dir = "%[4]s/images"
  network_map = { "VM Network" = "default", "DC0_DVPG0" = "default" }
}
migration "badname" {
  source    = source.vsphere.dc0
  converter = converter.hyper2kvm.w
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/web 01's"
  export {
    dir       = "%[4]s/exports"
    power_off = true
  }
}
migration "fix" {
  source    = source.vsphere.dc0
  converter = converter.hyper2kvm.w
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/DC0_H0_VM1"
  export {
    dir       = "%[4]s/exports"
    power_off = true
  }
  convert {
    fix {
      fstab = "stabilize-all"
    }
  }
}
migration "outside" {
  source    = source.vsphere.dc0
  converter = converter.hyper2kvm.elsewhere
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/DC0_C0_RP0_VM0"
  export {
    dir       = "%[4]s/exports"
    power_off = true
  }
}
migration "derived" {
  source    = source.vsphere.dc0
  converter = converter.hyper2kvm.w
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/DC0_C0_RP0_VM1"
  export {
    dir       = "%[4]s/exports"
    power_off = true
  }
}
migration "named" {
  source    = source.vsphere.dc0
  converter = converter.hyper2kvm.w
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/DC0_C0_RP0_VM1"
  export {
    dir       = "%[4]s/exports"
    power_off = true
  }
  domain {
    name = "DC0_C0_RP0_VM1"
  }
}
`, srv.URL.String(), srv.Username, srv.Thumbprint, work)
	repo := filepath.Join(work, "repo")
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	pw := "-var=pw=" + srv.Password

	r := runCLI(t, ctx, "", false, "plan", pw, repo)
	r.want(t, exitError,
		`domain name "web 01's" cannot be used`, "set another one",
		"cannot run fix", "outside every live worker's output roots",
		`domain name "DC0_C0_RP0_VM1" is also migration.named's`, `domain name "DC0_C0_RP0_VM1" is also migration.derived's`,
		"5 blocked by errors")
	r = runCLI(t, ctx, "", false, "apply", "-auto-approve", pw, repo)
	r.want(t, exitError)

	// Without a live consumer, the plan says so.
	stopWorker()
	if err := <-workerDone; err != nil {
		t.Fatal(err)
	}
	workerDone <- nil
	r = runCLI(t, ctx, "", false, "plan", pw, repo)
	r.want(t, exitError, "no live consumer serves")

	// Nothing was exported and every VM is still on.
	if entries, _ := os.ReadDir(filepath.Join(work, "exports")); len(entries) != 0 {
		t.Errorf("export directories were made: %v", entries)
	}
	vms, err := finder.VirtualMachineList(ctx, "/DC0/vm/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		var m mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.powerState", "name"}, &m); err != nil {
			t.Fatal(err)
		}
		if m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			t.Errorf("%s is %s, want it still powered on", m.Name, m.Runtime.PowerState)
		}
	}
}
