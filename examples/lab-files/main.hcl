# A lab repo: VMs that were already exported (OVA files, OVF directories or
# bare VMDKs on a NAS) are converted and defined on a local libvirt, with no
# vCenter involved. A good place to try hyperagent before the real campaign.

locals {
  nas = "/mnt/nas/vmware-exports"
}

source "files" "nas" {
  dir = local.nas

  # Reading from the NAS is the bottleneck; two at a time is enough.
  max_parallel_exports = 2
}

converter "hyper2kvm" "lab" {
  workflow_dir = "/var/lib/hyper2kvm/manifest-workflow"
  output_dir   = "/var/lib/hyper2kvm/output"
  timeout      = "1h"
}

target "libvirt" "local" {
  uri         = "qemu:///system"
  storage_dir = "/var/lib/libvirt/images/lab"
}

# One OVA per lab VM; the key is the domain name on KVM.
migration "lab" {
  for_each = {
    "ubuntu-2204" = "ubuntu-2204.ova"
    "rhel-9"      = "rhel-9/rhel-9.ovf"
  }
  source    = source.files.nas
  converter = converter.hyper2kvm.lab
  target    = target.libvirt.local
  vm        = each.value

  export {
    dir = "/srv/lab/exports"
  }

  convert {
    format = "qcow2"
    fix {
      fstab     = "stabilize-all"
      grub      = true
      initramfs = true
    }
  }

  domain {
    name   = "lab-${each.key}"
    memory = "2GiB"
    vcpus  = 2
    start  = true
  }
}
