//! The `host` section: what machine this is.

use driftwatch_common::proto::{HostSection, section::Body};
use driftwatch_common::section::SectionKind;

use super::{Collector, Context, SectionError};
use crate::hostfs::HostFs;

const SMALL: u64 = 64 * 1024;

#[derive(Default)]
pub struct HostCollector;

impl Collector for HostCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Host
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        Ok(Body::Host(read_host(&ctx.fs)))
    }
}

fn first_line(fs: &HostFs, path: &str) -> String {
    fs.read_file(path, SMALL)
        .map(|t| t.text.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

pub fn read_host(fs: &HostFs) -> HostSection {
    let os = fs
        .read_file("/etc/os-release", SMALL)
        .or_else(|_| fs.read_file("/usr/lib/os-release", SMALL))
        .map(|t| parse_os_release(&t.text))
        .unwrap_or_default();
    let get = |k: &str| {
        os.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut hostname = first_line(fs, "/etc/hostname");
    if hostname.is_empty() {
        hostname = first_line(fs, "/proc/sys/kernel/hostname");
    }
    if hostname.is_empty() && fs.is_real_root() {
        hostname = sysinfo::System::host_name().unwrap_or_default();
    }
    let mut kernel = first_line(fs, "/proc/sys/kernel/osrelease");
    if kernel.is_empty() && fs.is_real_root() {
        kernel = sysinfo::System::kernel_version().unwrap_or_default();
    }
    let uptime_s = first_line(fs, "/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0);
    let (cpu_count, memory_total_bytes) = if fs.is_real_root() {
        let mem = fs
            .read_file("/proc/meminfo", SMALL)
            .ok()
            .and_then(|t| {
                t.text
                    .lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        (
            std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(0),
            mem,
        )
    } else {
        (0, 0)
    };
    HostSection {
        hostname,
        os_id: get("ID"),
        os_version_id: get("VERSION_ID"),
        os_pretty_name: get("PRETTY_NAME"),
        kernel,
        arch: std::env::consts::ARCH.to_string(),
        machine_id: first_line(fs, "/etc/machine-id"),
        product_uuid: first_line(fs, "/sys/class/dmi/id/product_uuid").to_ascii_lowercase(),
        cloud_instance_id: cloud_instance_id(fs),
        uptime_s,
        cpu_count,
        memory_total_bytes,
    }
}

/// cloud-init writes the instance id here on every cloud it supports, so one
/// file covers EC2, GCE, Azure and OpenStack without a metadata call.
fn cloud_instance_id(fs: &HostFs) -> String {
    let id = first_line(fs, "/var/lib/cloud/data/instance-id");
    // cloud-init's placeholder when no datasource was found.
    if id == "iid-datasource-none" {
        String::new()
    } else {
        id
    }
}

/// os-release: KEY=value lines, values optionally quoted with shell escapes.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = if v.len() >= 2
                && (v.starts_with('"') && v.ends_with('"')
                    || v.starts_with('\'') && v.ends_with('\''))
            {
                v[1..v.len() - 1]
                    .replace("\\\"", "\"")
                    .replace("\\$", "$")
                    .replace("\\\\", "\\")
            } else {
                v.to_string()
            };
            Some((k.trim().to_string(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn os_release_quotes() {
        let kv = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# x\nVERSION_ID='12'\n",
        );
        assert_eq!(kv[0].1, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(kv[1], ("ID".into(), "debian".into()));
        assert_eq!(kv[2].1, "12");
    }

    #[test]
    fn fake_root_host_facts() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, c: &str| {
            let path = d.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, c).unwrap();
        };
        w("etc/hostname", "web-07\n");
        w(
            "etc/os-release",
            "ID=ubuntu\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\n",
        );
        w("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        w(
            "sys/class/dmi/id/product_uuid",
            "EC2ABCDE-0000-0000-0000-000000000000\n",
        );
        w("var/lib/cloud/data/instance-id", "i-0abc\n");
        let h = read_host(&HostFs::new(d.path()));
        assert_eq!(h.hostname, "web-07");
        assert_eq!(h.os_pretty_name, "Ubuntu 24.04 LTS");
        assert_eq!(h.os_version_id, "24.04");
        assert_eq!(h.machine_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(h.product_uuid, "ec2abcde-0000-0000-0000-000000000000");
        assert_eq!(h.cloud_instance_id, "i-0abc");
    }
}
