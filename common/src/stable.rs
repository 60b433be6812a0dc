//! The stable form of a section: what drift is about. Volatile values (pids,
//! RSS, CPU, uptime, sync progress, container state and health, /var/log
//! size) are cleared, and the process list becomes identity groups, so two
//! snapshots of an unchanged host have the same stable form and hash. The
//! agent and the collector both hash through here, so they always agree.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::proto::section::Body;
use crate::proto::{ListeningSection, Process, ProcessesSection, Section};

/// A section reduced to its stable content (status and error included: a
/// section that starts failing is a change).
pub fn stable_section(s: &Section) -> Section {
    Section {
        name: s.name.clone(),
        status: s.status.clone(),
        error: s.error.clone(),
        duration_us: 0,
        hash: String::new(),
        hash_only: false,
        body_collected_at_ms: 0,
        // What was left out is part of what is known: a host that grows
        // past a cap has changed.
        items_truncated: s.items_truncated,
        truncated: s.truncated.clone(),
        body: s.body.as_ref().map(stable_body),
    }
}

/// sha256 hex of the stable form's protobuf encoding.
pub fn section_hash(s: &Section) -> String {
    hex::encode(Sha256::digest(stable_section(s).encode_to_vec()))
}

pub fn stable_body(body: &Body) -> Body {
    match body {
        Body::Host(h) => {
            let mut h = h.clone();
            h.uptime_s = 0;
            Body::Host(h)
        }
        Body::Processes(p) => Body::Processes(process_groups(p)),
        Body::Containers(c) => {
            let mut c = c.clone();
            for k in &mut c.containers {
                // A container recreated from the same config is the same item.
                k.id.clear();
                k.created.clear();
                k.state.clear();
                k.started_at.clear();
                k.finished_at.clear();
                k.exit_code = 0;
                k.oom_killed = false;
                k.restart_count = 0;
                k.health = None;
            }
            Body::Containers(c)
        }
        Body::Raid(r) => {
            let mut r = r.clone();
            for a in &mut r.md_arrays {
                a.sync = None;
            }
            for c in &mut r.controllers {
                for d in &mut c.physical_drives {
                    d.media_errors = 0;
                    d.other_errors = 0;
                }
                for b in &mut c.batteries {
                    b.charge_percent = 0;
                }
            }
            Body::Raid(r)
        }
        Body::LogConfig(l) => {
            let mut l = l.clone();
            l.var_log_bytes = 0;
            l.var_log_partial = false;
            for u in &mut l.unrotated {
                u.size_bytes = 0;
            }
            Body::LogConfig(l)
        }
        Body::Listening(l) => Body::Listening(stable_listening(l)),
        Body::Updates(u) => {
            // Every `apt update` touches these; what is pending is the content.
            let mut u = u.clone();
            u.index_refreshed_ms = 0;
            for i in &mut u.indexes {
                i.release_date_ms = 0;
                i.mtime_ms = 0;
            }
            Body::Updates(u)
        }
        Body::SshKeys(_) | Body::Packages(_) | Body::Accounts(_) | Body::Sudoers(_) => body.clone(),
    }
}

/// Sockets without their inodes and owners without pids: a restarted
/// service is the same listener. Owners of one socket reduce to distinct
/// (exe, user) pairs (eight nginx workers are one owner), sorted.
fn stable_listening(l: &ListeningSection) -> ListeningSection {
    let mut l = l.clone();
    for s in &mut l.sockets {
        s.inode = 0;
        for o in &mut s.owners {
            o.pid = 0;
        }
        s.owners.sort_by(|a, b| {
            (&a.exe, &a.user, &a.name, a.uid).cmp(&(&b.exe, &b.user, &b.name, b.uid))
        });
        s.owners.dedup();
    }
    l.sockets.sort_by(|a, b| {
        (&a.protocol, a.port, &a.address, &a.family, a.uid).cmp(&(
            &b.protocol,
            b.port,
            &b.address,
            &b.family,
            b.uid,
        ))
    });
    l
}

/// Processes as identities: user + exe (or, when it could not be read,
/// name) + cmdline, with a count. Kernel threads are left out: they come
/// and go with load and say nothing about what the host was set up to run.
/// The exe stays as it was (empty included), so items read the same from a
/// raw and a stable form. Applied to its own output it changes nothing: a
/// group's count is carried (a raw process counts as 1), so a stored stable
/// form (a baseline, a history section) reduced again still says "nginx
/// x3", not "x1".
fn process_groups(p: &ProcessesSection) -> ProcessesSection {
    let mut keyed: Vec<&Process> = p.processes.iter().filter(|x| !x.kernel_thread).collect();
    // Name and uid break ties so the group's first member (whose name and
    // uid the group keeps) does not depend on the order /proc listed them.
    let key = |x: &Process| {
        let name = if x.exe.is_empty() {
            x.name.clone()
        } else {
            String::new()
        };
        (x.user.clone(), x.exe.clone(), name, x.cmdline.clone())
    };
    keyed.sort_by(|a, b| (key(a), &a.name, a.uid).cmp(&(key(b), &b.name, b.uid)));
    let mut groups: Vec<Process> = Vec::new();
    for x in keyed {
        let weight = x.count.max(1);
        match groups.last_mut() {
            Some(g) if key(g) == key(x) => g.count = g.count.saturating_add(weight),
            _ => groups.push(Process {
                user: x.user.clone(),
                uid: x.uid,
                name: x.name.clone(),
                exe: x.exe.clone(),
                cmdline: x.cmdline.clone(),
                count: weight,
                ..Default::default()
            }),
        }
    }
    ProcessesSection { processes: groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::HostSection;
    use crate::snapshot::ok_section;

    fn proc_(pid: u32, user: &str, exe: &str, rss: u64) -> Process {
        Process {
            pid,
            user: user.into(),
            exe: exe.into(),
            name: "n".into(),
            rss_bytes: rss,
            cmdline: vec![exe.into()],
            ..Default::default()
        }
    }

    #[test]
    fn volatile_values_do_not_change_the_hash() {
        let a = ok_section(
            Body::Host(HostSection {
                hostname: "a".into(),
                uptime_s: 5,
                ..Default::default()
            }),
            10,
        );
        let mut b = a.clone();
        b.duration_us = 99;
        if let Some(Body::Host(h)) = &mut b.body {
            h.uptime_s = 500;
        }
        assert_eq!(section_hash(&a), section_hash(&b));
        if let Some(Body::Host(h)) = &mut b.body {
            h.hostname = "b".into();
        }
        assert_ne!(section_hash(&a), section_hash(&b));
        let mut c = a.clone();
        c.status = "error".into();
        assert_ne!(section_hash(&a), section_hash(&c));
    }

    #[test]
    fn processes_hash_by_identity_and_count_not_pid_or_order() {
        let p1 = ProcessesSection {
            processes: vec![
                proc_(10, "root", "/usr/sbin/sshd", 5),
                proc_(20, "www", "/usr/sbin/nginx", 7),
                proc_(21, "www", "/usr/sbin/nginx", 7),
            ],
        };
        let p2 = ProcessesSection {
            processes: vec![
                proc_(99, "www", "/usr/sbin/nginx", 1),
                proc_(5, "root", "/usr/sbin/sshd", 9),
                proc_(98, "www", "/usr/sbin/nginx", 1),
                Process {
                    pid: 2,
                    name: "kworker/0:1".into(),
                    kernel_thread: true,
                    ..Default::default()
                },
            ],
        };
        let s = |p: ProcessesSection| ok_section(Body::Processes(p), 0);
        assert_eq!(section_hash(&s(p1.clone())), section_hash(&s(p2)));
        let Body::Processes(g) = stable_body(&Body::Processes(p1.clone())) else {
            unreachable!()
        };
        assert_eq!(
            g.processes
                .iter()
                .map(|p| (p.exe.as_str(), p.count))
                .collect::<Vec<_>>(),
            vec![("/usr/sbin/sshd", 1), ("/usr/sbin/nginx", 2)]
        );
        let mut p3 = p1.clone();
        p3.processes.pop();
        assert_ne!(
            section_hash(&s(p3)),
            section_hash(&s(p1)),
            "one worker fewer is a change"
        );
    }

    /// The stable form is a fixed point for every section kind: a stored
    /// stable form (baselines, the `sections` tree) reduced again must be
    /// what it was, or a host diffed against its own baseline shows changes
    /// that never happened (processes once came back "x1" for "x3").
    #[test]
    fn stable_form_of_the_stable_form_is_the_stable_form() {
        for seed in 0..300 {
            let mut g = crate::testgen::Gen::new(seed);
            for s in crate::testgen::sections(&mut g) {
                let once = stable_section(&s);
                let twice = stable_section(&once);
                assert_eq!(once, twice, "seed {seed}, section {}", s.name);
                assert_eq!(section_hash(&s), section_hash(&once), "seed {seed}");
            }
        }
    }

    #[test]
    fn process_groups_keep_their_counts_when_reduced_again() {
        let p = ProcessesSection {
            processes: vec![
                proc_(1, "www", "/usr/sbin/nginx", 1),
                proc_(2, "www", "/usr/sbin/nginx", 1),
                proc_(3, "www", "/usr/sbin/nginx", 1),
            ],
        };
        let Body::Processes(once) = stable_body(&Body::Processes(p)) else {
            unreachable!()
        };
        let Body::Processes(twice) = stable_body(&Body::Processes(once.clone())) else {
            unreachable!()
        };
        assert_eq!(twice.processes[0].count, 3);
        assert_eq!(once, twice);
    }
}
