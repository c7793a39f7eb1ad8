# The demo campaign: a database, then a web tier that starts only once the
# database is defined. The VMs live on a vCenter simulator; the disks are
# exported over NFC, converted by hyperagent's own worker (qemu-img) through
# the hyper2kvm watch directory, and defined on libvirt's test driver.

locals {
  exports  = "${var.work_dir}/exports"
  workflow = "${var.work_dir}/workflow"
}

agent {
  parallelism = 4
}

source "vsphere" "sim" {
  url        = var.vcenter_url
  username   = var.vcenter_username
  password   = var.vcenter_password
  thumbprint = var.vcenter_thumbprint
  datacenter = "DC0"

  max_parallel_exports = 2
}

converter "hyper2kvm" "worker" {
  workflow_dir = local.workflow
  output_dir   = "${var.work_dir}/output"
  timeout      = "10m"
}

# The test driver keeps its domains while a connection to the daemon holds
# them; `hyperagent dev` holds one for its whole run.
target "libvirt" "kvm" {
  uri         = "test:///default"
  storage_dir = "${var.work_dir}/images"
  nvram_dir   = "${var.work_dir}/nvram"
  # The simulator's VMs sit on a standard and a distributed port group.
  network_map = {
    "VM Network" = "default"
    "DC0_DVPG0"  = "default"
  }
}

migration "db" {
  source    = source.vsphere.sim
  converter = converter.hyper2kvm.worker
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/db-01"

  export {
    dir              = "${local.exports}/db"
    power_off        = true
    shutdown_timeout = "30s"
  }

  # The simulated disks hold data, not an operating system: nothing to fix.
  convert {
    format = "qcow2"
    fix { enabled = false }
  }

  domain {
    name   = "${var.domain_prefix}db-01"
    memory = "512MiB"
    vcpus  = 1
  }
}

migration "web" {
  for_each  = var.web_vms
  source    = source.vsphere.sim
  converter = converter.hyper2kvm.worker
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/${each.key}"

  export {
    dir              = "${local.exports}/web"
    power_off        = true
    shutdown_timeout = "30s"
  }

  convert {
    format   = "qcow2"
    compress = true
    fix { enabled = false }
  }

  domain {
    name   = "${var.domain_prefix}${each.key}"
    memory = "256MiB"
    vcpus  = 1
  }

  depends_on = [migration.db]
}
