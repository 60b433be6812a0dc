# A machine image with the driftwatch agent baked in, enrolled at first boot.
# See README.md in this directory for the flow from bake to first boot.
#
#   packer build \
#     -var collector_url=https://collector.example.com:7443 \
#     -var ca_cert_file=/etc/driftwatch/pki/ca.pem \
#     -var enroll_token_file=./web.token \
#     -var agent_deb=../../target/debian/driftwatch-agent_0.1.0-1_amd64.deb \
#     -var base_image_url=https://.../debian-12-genericcloud-amd64.qcow2 \
#     -var base_image_checksum=sha512:... \
#     driftwatch-agent.pkr.hcl
#
# The qemu source bakes a cloud qcow2 image locally (KVM). For a cloud
# provider add its source (amazon-ebs, googlecompute, ...) to the build
# block: the provisioners do not depend on where the image is built.

variable "collector_url" {
  type        = string
  description = "Collector the hosts report to, https://HOST:PORT."
}

variable "ca_cert_file" {
  type        = string
  description = "The collector's CA certificate (ca.pem from pki init) on the machine running packer."
}

variable "enroll_token_file" {
  type        = string
  description = "File holding an enrollment token from `driftwatch tokens create --group G --ttl D --uses N`. Make it outlive the image's use, or bake a new image when it expires."
}

variable "group" {
  type        = string
  default     = ""
  description = "Group label written to agent.toml (the token's group wins at enrollment)."
}

variable "interval" {
  type    = string
  default = "60s"
}

variable "agent_deb" {
  type        = string
  description = "driftwatch-agent .deb built by scripts/build-debs."
}

variable "base_image_url" {
  type        = string
  description = "A Debian/Ubuntu cloud qcow2 image with cloud-init."
}

variable "base_image_checksum" {
  type        = string
  description = "Its checksum, e.g. sha512:... or file:URL."
}

variable "output_dir" {
  type    = string
  default = "output-driftwatch-agent"
}

locals {
  # The token travels as a file upload, never on a command line or in the
  # image's build log.
  staging = "/tmp/driftwatch-bake"
}

source "qemu" "debian" {
  iso_url          = var.base_image_url
  iso_checksum     = var.base_image_checksum
  disk_image       = true
  format           = "qcow2"
  disk_size        = "8G"
  output_directory = var.output_dir
  headless         = true
  accelerator      = "kvm"
  # cloud-init reads user-data (a temporary SSH password for the bake user)
  # from Packer's HTTP server; scrub.sh runs `cloud-init clean` at the end so
  # instances run cloud-init afresh.
  http_directory = "${path.root}/http"
  qemuargs = [
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"]
  ]
  ssh_username = "packer"
  ssh_password = "packer"
  ssh_timeout  = "10m"
  # The bake user goes with the bake: removed (forced: we are logged in as
  # it) together with the sudo rule cloud-init wrote for it, then power off.
  shutdown_command = "sudo sh -c 'rm -f /etc/sudoers.d/90-cloud-init-users; userdel -rf packer; shutdown -P now'"
}

build {
  sources = ["source.qemu.debian"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.staging}"]
  }

  provisioner "file" {
    source      = var.agent_deb
    destination = "${local.staging}/driftwatch-agent.deb"
  }

  provisioner "file" {
    source      = var.ca_cert_file
    destination = "${local.staging}/ca.pem"
  }

  provisioner "file" {
    source      = var.enroll_token_file
    destination = "${local.staging}/enroll-token"
  }

  # Install the package and write /etc/driftwatch/{agent.toml,ca.pem,enroll-token}.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} ENROLL_TOKEN=$(cat ${local.staging}/enroll-token) {{ .Path }}'"
    environment_vars = [
      "DEB=${local.staging}/driftwatch-agent.deb",
      "COLLECTOR_URL=${var.collector_url}",
      "CA_FILE=${local.staging}/ca.pem",
      "GROUP=${var.group}",
      "INTERVAL=${var.interval}",
    ]
    script = "${path.root}/scripts/install-agent.sh"
  }

  # The bake-time baseline: what this image holds, uploaded by the first
  # host that reports from it.
  provisioner "shell" {
    execute_command  = "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} {{ .Path }}'"
    environment_vars = ["IMAGE_ID=driftwatch-${var.group}-${formatdate("YYYYMMDDhhmmss", timestamp())}"]
    script           = "${path.root}/scripts/baseline.sh"
  }

  # Last: no identity, spool, counters or machine-id leave the bake.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} {{ .Path }}'"
    inline_shebang  = "/bin/sh -e"
    inline          = ["rm -rf ${local.staging}"]
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -E sh -c '{{ .Vars }} {{ .Path }}'"
    script          = "${path.root}/scripts/scrub.sh"
  }
}
