# Inputs of the campaign. Set them with -var, -var-file or the environment
# (HYPERAGENT_VAR_vcenter_password=...), never in a committed file.

variable "vcenter_password" {
  description = "Password of the migration account on vCenter"
  type        = string
  sensitive   = true
}

variable "vcenter_url" {
  description = "vCenter SDK endpoint"
  type        = string
  default     = "https://vcenter.example.com/sdk"

  validation {
    condition     = can(regex("^https://", var.vcenter_url))
    error_message = "The vCenter URL must use https://."
  }
}

variable "export_root" {
  description = "Where exported OVF files land; needs room for the largest wave"
  type        = string
  default     = "/srv/exports"
}

# The web tier: one entry per VM, with its size on KVM.
variable "web_vms" {
  type = map(object({
    memory = string
    vcpus  = number
  }))
  default = {
    "web-01" = { memory = "4GiB", vcpus = 2 }
    "web-02" = { memory = "4GiB", vcpus = 2 }
    "web-03" = { memory = "8GiB", vcpus = 4 }
  }
}
