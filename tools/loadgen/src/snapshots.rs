//! Realistic snapshots: this machine's own collection, made distinct per
//! simulated host, then changed at a configurable rate the way a fleet
//! changes (a package upgraded here and there).

use driftwatch_agent::collect::{Collectors, Context};
use driftwatch_agent::hostfs::HostFs;
use driftwatch_common::proto::{Snapshot, section::Body};
use driftwatch_common::stable::section_hash;

/// One real collection of this machine (every section the agent knows).
pub fn collect_template() -> anyhow::Result<Snapshot> {
    let mut collectors = Collectors::new(&[]).map_err(anyhow::Error::msg)?;
    let ctx = Context {
        fs: HostFs::default(),
    };
    Ok(Snapshot {
        collected_at_ms: driftwatch_common::time::now_ms(),
        agent_version: format!("loadgen-{}", env!("CARGO_PKG_VERSION")),
        sections: collectors.collect_all(&ctx),
        ..Default::default()
    })
}

/// Host `i`'s first snapshot: the template with its own hostname and
/// identifiers (so its host section is its own; the rest is shared with
/// its peers, as on a fleet built from one image).
pub fn for_host(template: &Snapshot, i: usize, interval_s: u64) -> Snapshot {
    let mut s = template.clone();
    s.agent_epoch = fastrand::u64(1..);
    s.interval_s = interval_s;
    for sec in &mut s.sections {
        if let Some(Body::Host(h)) = &mut sec.body {
            h.hostname = format!("loadgen-{i:06}");
            h.machine_id = format!("{i:032x}");
            h.product_uuid.clear();
            sec.hash = section_hash(sec);
        }
    }
    s
}

/// One change on the host: a package "upgraded" (the version of one
/// package bumped), or the hostname when this machine lists no packages.
pub fn change(s: &mut Snapshot, n: u64) {
    let has_packages = s
        .sections
        .iter()
        .any(|sec| matches!(&sec.body, Some(Body::Packages(p)) if !p.packages.is_empty()));
    for sec in &mut s.sections {
        match &mut sec.body {
            Some(Body::Packages(p)) if has_packages => {
                let k = (n as usize) % p.packages.len();
                let v = &mut p.packages[k].version;
                let base = v.split("+lg").next().unwrap_or_default().to_string();
                *v = format!("{base}+lg{n}");
            }
            Some(Body::Host(h)) if !has_packages => {
                let base = h.hostname.split('+').next().unwrap_or_default().to_string();
                h.hostname = format!("{base}+{n}");
            }
            _ => continue,
        }
        sec.hash = section_hash(sec);
    }
}
