//! Fuzz entry points: one per parser of host-controlled text, each a plain
//! function of bytes that must never panic. The cargo-fuzz targets in
//! `fuzz/` (nightly) and the stable, bounded run in
//! `agent/tests/fuzz_parsers.rs` call exactly these, so a crash found by
//! either reproduces in the other.
//!
//! Bytes become text the way [`crate::hostfs`] hands files to parsers
//! (invalid UTF-8 replaced), and each entry also runs what the collector
//! does next with the parse (verdicts, merges, include walks), since a
//! panic there is as fatal as one in the parser.

use driftwatch_common::proto::{JournaldSettings, RotationPolicy};

use crate::parse::{
    authorized_keys, docker_inspect, dpkg, journald, logrotate, mdstat, megacli, megaraid,
    proc_stat, rpm, rsyslog, sshd_config, storcli, syslog_ng,
};

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

pub fn fuzz_mdstat(data: &[u8]) {
    let m = mdstat::parse(&text(data));
    for a in &m.arrays {
        let _ = mdstat::assess(a);
    }
}

pub fn fuzz_storcli(data: &[u8]) {
    let t = text(data);
    if let Ok(mut s) = storcli::parse_controllers(&t) {
        if let Ok(d) = storcli::parse_drives(&t) {
            storcli::merge_drives(&mut s.controllers, d);
        }
        for c in &mut s.controllers {
            megaraid::assess_controller(c, Default::default());
        }
    }
}

pub fn fuzz_megacli(data: &[u8]) {
    let _ = megacli::parse(&text(data)).into_controllers();
}

pub fn fuzz_authorized_keys(data: &[u8]) {
    let _ = authorized_keys::parse(&text(data));
}

/// The file is its own main config and the answer to every Include, so
/// include walking and Match evaluation run too (their depth is bounded).
pub fn fuzz_sshd_config(data: &[u8]) {
    let t = text(data);
    let _ = sshd_config::parse_file(&t);
    let mut load = |pattern: &str| {
        vec![sshd_config::Loaded {
            path: pattern.to_string(),
            text: Ok(t.clone()),
            note: None,
        }]
    };
    let _ = sshd_config::evaluate("/etc/ssh/sshd_config", &t, &mut load);
    for line in t.lines().take(8) {
        let _ = sshd_config::expand_authorized_keys(line, "alice", 1000, "/home/alice");
        let _ = sshd_config::match_may_apply_to(line, "alice");
    }
}

pub fn fuzz_rsyslog(data: &[u8]) {
    let _ = rsyslog::parse(&text(data));
}

pub fn fuzz_syslog_ng(data: &[u8]) {
    let _ = syslog_ng::parse(&text(data));
}

pub fn fuzz_journald(data: &[u8]) {
    let p = journald::parse(&text(data));
    let mut s = JournaldSettings::default();
    journald::apply(&mut s, "/etc/systemd/journald.conf", &p);
}

pub fn fuzz_logrotate(data: &[u8]) {
    let t = text(data);
    let _ = logrotate::parse(&t, &RotationPolicy::default());
    for w in t.split_whitespace().take(16) {
        let _ = logrotate::parse_size(w);
    }
}

pub fn fuzz_dpkg_status(data: &[u8]) {
    let _ = dpkg::parse(&text(data));
}

/// `/proc/PID/stat` is bytes (a comm may be any bytes): no text step.
pub fn fuzz_proc_stat(data: &[u8]) {
    if let Ok(s) = proc_stat::parse(data) {
        let _ = (
            s.is_kernel_thread(),
            s.cpu_ticks(),
            proc_stat::state_name(s.state),
        );
    }
}

pub fn fuzz_rpm(data: &[u8]) {
    let _ = rpm::parse(&text(data));
}

/// `docker inspect` JSON, containers and images, and the section built
/// from each container with each image.
pub fn fuzz_docker_inspect(data: &[u8]) {
    let t = text(data);
    let images = docker_inspect::parse_images(&t).unwrap_or_default();
    if let Ok(cs) = docker_inspect::parse_containers(&t) {
        for c in &cs {
            let _ = docker_inspect::container(c, images.first());
        }
    }
    let _ = docker_inspect::bounded_output(&t);
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target by name: the names of the cargo-fuzz targets and of the
/// regression directories under `fuzz/regressions/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("mdstat", fuzz_mdstat),
    ("storcli", fuzz_storcli),
    ("megacli", fuzz_megacli),
    ("authorized_keys", fuzz_authorized_keys),
    ("sshd_config", fuzz_sshd_config),
    ("rsyslog", fuzz_rsyslog),
    ("syslog_ng", fuzz_syslog_ng),
    ("journald", fuzz_journald),
    ("logrotate", fuzz_logrotate),
    ("dpkg_status", fuzz_dpkg_status),
    ("proc_stat", fuzz_proc_stat),
    ("rpm", fuzz_rpm),
    ("docker_inspect", fuzz_docker_inspect),
];
