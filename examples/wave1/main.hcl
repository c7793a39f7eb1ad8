# Wave 1 of the DC1 campaign: the database first, then the application
# servers, then the web tier. Each wave starts only when the one it depends
# on is defined on KVM.

locals {
  dc       = "DC1"
  vm_root  = "/${local.dc}/vm/prod"
  workflow = "/var/lib/hyper2kvm/manifest-workflow"
}

agent {
  parallelism = 4
  interval    = "5m"
}

source "vsphere" "dc1" {
  url        = var.vcenter_url
  username   = "migrator@vsphere.local"
  password   = var.vcenter_password
  datacenter = local.dc
  thumbprint = "52:6C:4E:88:1D:78:AE:12:1C:F3:BB:6C:5B:F4:E2:82:86:A7:08:AF"

  # vCenter throttles NFC leases; keep exports modest during office hours.
  max_parallel_exports = 3
}

converter "hyper2kvm" "main" {
  workflow_dir = local.workflow
  output_dir   = "/var/lib/hyper2kvm/output"
  unit         = "hyper2kvm@vsphere.service"
  timeout      = "3h"
}

target "libvirt" "kvm1" {
  uri         = "qemu:///system"
  storage_dir = "/var/lib/libvirt/images"
  network_map = {
    "VM Network" = "default"
  }
}

# The database goes first and alone: it is powered off for the export, and
# kept from ever being removed by a plan.
migration "db" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "${local.vm_root}/db-01"

  export {
    dir              = "${var.export_root}/db"
    power_off        = true
    shutdown_timeout = "10m"
  }

  convert {
    format   = "qcow2"
    compress = true
    fix {
      fstab = "stabilize-all"
      grub  = true
    }
  }

  domain {
    name    = "db-01"
    memory  = "16GiB"
    vcpus   = 8
    network = "default"
  }

  lifecycle {
    prevent_destroy = true
  }
}

migration "app" {
  for_each  = toset(["app-01", "app-02"])
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "${local.vm_root}/${each.key}"

  export {
    dir       = "${var.export_root}/app"
    power_off = true
  }

  convert {
    fix {
      fstab               = "stabilize-all"
      remove_vmware_tools = true
    }
  }

  domain {
    memory = "8GiB"
    vcpus  = 4
  }

  depends_on = [migration.db]
}

migration "web" {
  for_each  = var.web_vms
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "${local.vm_root}/${each.key}"

  export {
    dir       = "${var.export_root}/web"
    power_off = true
  }

  convert {
    format = "qcow2"
    fix {
      fstab = "stabilize-all"
      grub  = true
    }
  }

  domain {
    memory = each.value.memory
    vcpus  = each.value.vcpus
    start  = true
  }

  depends_on = [migration.app]
}
