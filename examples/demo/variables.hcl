# Inputs of the demo. `hyperagent dev` sets them for the vCenter simulator
# it starts: the endpoint and certificate through -var-file, the password
# through HYPERAGENT_VAR_vcenter_password (never in a file).

variable "vcenter_url" {
  description = "vCenter SDK endpoint (the simulator's)"
  type        = string
  default     = "https://127.0.0.1:8989/sdk"

  validation {
    condition     = can(regex("^https://", var.vcenter_url))
    error_message = "The vCenter URL must use https://."
  }
}

variable "vcenter_thumbprint" {
  description = "SHA-1 thumbprint of the server certificate; the default is the simulator's built-in certificate"
  type        = string
  default     = "52:6C:4E:88:1D:78:AE:12:1C:F3:BB:6C:5B:F4:E2:82:86:A7:08:AF"
}

variable "vcenter_username" {
  type    = string
  default = "migrator@vsphere.local"
}

variable "vcenter_password" {
  description = "Password of the migration account"
  type        = string
  sensitive   = true
}

variable "work_dir" {
  description = "Absolute directory holding the exports, the workflow directory, converter outputs and the KVM images"
  type        = string
  default     = "/var/tmp/hyperagent-demo"
}

variable "web_vms" {
  description = "The web tier, migrated once the database is defined"
  type        = set(string)
  default     = ["web-01", "web-02"]
}

variable "domain_prefix" {
  description = "Prefix of the libvirt domain names, so runs sharing a daemon stay apart"
  type        = string
  default     = "demo-"
}
