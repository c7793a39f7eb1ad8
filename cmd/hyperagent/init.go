package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// scaffoldMain is a complete, commented repo that validates as written
// (testdata/script/init_*.txtar checks that).
const scaffoldMain = `# A hyperagent migration repo: which VMs move from vSphere to KVM, and how.
#
#   hyperagent validate     check this file (contacts nothing)
#   hyperagent plan         show what is left to do
#   hyperagent apply        do it
#
# Every *.hcl and *.hcl.json file of this directory is read, in name order.

# Secrets never go in a file: pass them with -var, or set
# HYPERAGENT_VAR_vcenter_password in the environment. Left null, the vsphere
# source falls back to GOVC_PASSWORD.
variable "vcenter_password" {
  description = "Password of the vCenter account that exports the VMs"
  type        = string
  sensitive   = true
  default     = null
}

# The paths below are the ones hyperagent's systemd units and their
# tmpfiles.d entries set up (systemd/install.sh): the agent's state, the
# exports the worker reads, the worker's workflow and output directories,
# and the domains' disks. Change them together with the units.
variable "export_dir" {
  description = "Where exported OVF files land; needs room for the largest VM"
  type        = string
  default     = "/var/lib/hyperagent/exports"
}

locals {
  vm_folder = "/DC1/vm/prod"
}

# How the agent (hyperagent.service) and apply run. The state is shared:
# run plan and apply as the hyperagent user, and they take turns with the
# agent's passes on its lock.
agent {
  state_dir   = "/var/lib/hyperagent/state"
  parallelism = 64 # migrations at work at once; the sources, converters and targets keep their own limits
  interval    = "30s"
  auto_apply  = false # true: the agent applies without a person
}

# Where VMs come from. Unset connection settings fall back to govc's
# environment (GOVC_URL, GOVC_USERNAME, GOVC_THUMBPRINT, ...).
source "vsphere" "dc1" {
  url        = "https://vcenter.example.com/sdk"
  username   = "migrator@vsphere.local"
  password   = var.vcenter_password
  datacenter = "DC1"
  # Pin the server certificate (govc about.cert -thumbprint), or set
  # insecure = true for a lab.
  # thumbprint = "AB:CD:..."
  max_parallel_exports = 2
}

# What converts the exported disks: a watch directory served by
# hyperagent-worker@main.service (hyperagent's own converter), or by the
# hyper2kvm daemon pointed at the same directories.
converter "hyper2kvm" "main" {
  workflow_dir = "/var/lib/hyperagent/workflow/main"
  output_dir   = "/var/lib/hyperagent/output/main"
  timeout      = "2h"
}

# Where converted VMs are defined.
target "libvirt" "kvm1" {
  uri         = "qemu:///system"
  storage_dir = "/var/lib/hyperagent/images"
}

# One migration per VM, or one block for many with for_each:
#   for_each = toset(["web-01", "web-02"])  and  vm = "${local.vm_folder}/${each.key}"
# Order waves with depends_on = [migration.db].
migration "example" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "${local.vm_folder}/example-01"

  export {
    dir       = var.export_dir
    power_off = true # a consistent disk needs the VM off
  }

  convert {
    format = "qcow2"
    # Guest fixes need the hyper2kvm daemon (libguestfs); the built-in
    # worker cannot run them, and plan says so:
    # fix {
    #   fstab = "stabilize-all" # mount by UUID, not by VMware device names
    #   grub  = true
    # }
  }

  domain {
    memory = "4GiB"
    vcpus  = 2
  }
}
`

// scaffoldGitignore keeps state and saved plans out of Git: state records
// job ids and paths of this machine, and plans go stale.
const scaffoldGitignore = `# hyperagent state and lock, when agent { state_dir } is in the repo.
.hyperagent/
# Saved plans: hyperagent plan -out=NAME.plan
*.plan
`

const initHelp = `Usage: hyperagent init [DIR]

  Scaffolds a migration repo in DIR (default: the current directory), which
  must be empty or missing: a commented main.hcl that validates as is, and
  a .gitignore for the state directory and saved plans.
`

func runInit(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	if code, done := parseFlags(fs, e, initHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: init takes at most one directory")
		return exitError
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if err := scaffold(dir); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "Initialized a migration repo in %s:\n", dir)
	fmt.Fprintln(e.stdout, "  main.hcl    a source, a converter, a target and one migration; edit them")
	fmt.Fprintln(e.stdout, "  .gitignore  keeps state (.hyperagent/) and saved plans out of Git")
	fmt.Fprintln(e.stdout)
	fmt.Fprintf(e.stdout, "Next: edit main.hcl, then run: hyperagent validate %s\n", dir)
	return exitOK
}

// scaffold writes the repo's files into dir, refusing a directory that
// already holds anything: init never overwrites someone's work.
func scaffold(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("read %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty; init only scaffolds an empty or missing directory", dir)
	}
	for name, data := range map[string]string{"main.hcl": scaffoldMain, ".gitignore": scaffoldGitignore} {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}
