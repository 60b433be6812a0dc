//! Caps on the items of every list in a section: the one table both sides
//! apply. The agent cuts a section it collected to these caps (a host with
//! 500,000 processes reports the first 100,000 and says how many it left
//! out); the collector applies the same caps to what it receives, so an
//! agent that sends more (an old one, a hostile one) is cut the same way
//! and marked "by the collector". Nothing is cut silently: the section's
//! `items_truncated` counts what was left out and `truncated` says what,
//! in words (ARCHITECTURE.md, "Caps on items").
//!
//! The caps sit far above what a real host has (a large Debian host lists
//! ~6,000 packages, a busy one a few thousand processes), so they bound what
//! one section can cost downstream (storage, drift items, the key index,
//! `host show`) without cutting honest data.

use crate::proto::section::Body;
use crate::proto::{
    AccountsSection, ContainersSection, ListeningSection, LogConfigSection, PackagesSection,
    ProcessesSection, RaidSection, Section, SshKeysSection, SudoersSection,
};

pub const PROCESSES: usize = 100_000;
pub const PACKAGES: usize = 100_000;
pub const CONTAINERS: usize = 10_000;
/// authorized_keys files per host (every account's files together).
pub const KEY_FILES: usize = 10_000;
/// How a cut of the key file list is named in `truncated`: the key index
/// looks for it, since a key may hide in a file that was left out.
pub const KEY_FILES_WHAT: &str = "authorized_keys files";
/// Keys per authorized_keys file. A file cut here is marked `incomplete`,
/// so `keys find` and sweeps treat it as unproven.
pub const KEYS_PER_FILE: usize = 10_000;
/// Log config lists: forwards, outputs, rotation rules, unrotated files,
/// config files, and the files one rotation rule matches.
pub const LOG_ITEMS: usize = 10_000;
/// md arrays, controllers' virtual and physical drives.
pub const RAID_ITEMS: usize = 1_024;
/// Local users, local groups; the members of one group.
pub const ACCOUNTS: usize = 100_000;
/// Listening sockets per host (a busy host has a few hundred; each UDP
/// client socket bound to a port counts too).
pub const SOCKETS: usize = 10_000;
/// Sudo rules after alias expansion, Defaults entries, sudoers files.
pub const SUDO_ITEMS: usize = 10_000;
/// Lists inside one item (a container's mounts, ports, labels; a file's
/// issues and malformed lines; an array's members), problems and errors.
pub const SMALL: usize = 1_000;

/// Sections and labels per snapshot: a report over these is refused whole
/// (there is no section to mark a cut on), with both numbers named.
pub const SECTIONS: usize = 64;
pub const LABELS: usize = 256;

/// What one application of the caps left out, per list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// (what, how many left out, the cap), in the order first met.
    pub lists: Vec<(&'static str, u64, usize)>,
}

impl Truncation {
    /// Counts `dropped` items of `what` beyond `cap` (nothing when 0).
    pub fn add(&mut self, what: &'static str, dropped: u64, cap: usize) {
        if dropped == 0 {
            return;
        }
        match self
            .lists
            .iter_mut()
            .find(|(w, _, c)| *w == what && *c == cap)
        {
            Some(entry) => entry.1 += dropped,
            None => self.lists.push((what, dropped, cap)),
        }
    }

    pub fn total(&self) -> u64 {
        self.lists.iter().map(|(_, n, _)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// "truncated: 1200 processes beyond the cap of 100000" (one clause
    /// per list, joined by "; ").
    pub fn message(&self) -> String {
        self.lists
            .iter()
            .map(|(what, n, cap)| format!("truncated: {n} {what} beyond the cap of {cap}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Records this truncation on the section: adds to what it already says
    /// was left out. `by` names who cut when it is not the agent.
    pub fn mark(&self, s: &mut Section, by: Option<&str>) {
        if self.is_empty() {
            return;
        }
        s.items_truncated = s.items_truncated.saturating_add(self.total());
        let mut msg = self.message();
        if let Some(by) = by {
            msg = format!("{msg} (by {by})");
        }
        if !s.truncated.is_empty() {
            msg = format!("{}; {msg}", s.truncated);
        }
        s.truncated = msg;
    }
}

/// Keeps the first `cap` items of `list` and counts the rest.
fn cut<T>(list: &mut Vec<T>, what: &'static str, cap: usize, t: &mut Truncation) {
    if list.len() > cap {
        t.add(what, (list.len() - cap) as u64, cap);
        list.truncate(cap);
    }
}

/// Cuts every list of a section body to its cap; what was cut is added to
/// `t`. Applying it to a body already within the caps changes nothing.
pub fn apply(body: &mut Body, t: &mut Truncation) {
    match body {
        Body::Host(_) => {}
        Body::Processes(p) => processes(p, t),
        Body::SshKeys(k) => ssh_keys(k, t),
        Body::LogConfig(l) => log_config(l, t),
        Body::Raid(r) => raid(r, t),
        Body::Packages(p) => packages(p, t),
        Body::Containers(c) => containers(c, t),
        Body::Accounts(a) => accounts(a, t),
        Body::Sudoers(s) => sudoers(s, t),
        Body::Listening(l) => listening(l, t),
        Body::Updates(u) => {
            cut(&mut u.updates, "pending updates", PACKAGES, t);
            cut(&mut u.indexes, "apt indexes", SMALL, t);
            cut(&mut u.problems, "updates problems", SMALL, t);
            if let Some(r) = u.reboot.as_mut() {
                cut(&mut r.packages, "packages needing a reboot", SMALL, t);
                cut(&mut r.reasons, "reboot reasons", SMALL, t);
            }
        }
    }
}

/// Applies the caps to a section with a body; what it cut is marked on the
/// section. Returns what was cut (empty when it was within the caps).
pub fn enforce(s: &mut Section, by: Option<&str>) -> Truncation {
    let mut t = Truncation::default();
    if let Some(body) = s.body.as_mut() {
        apply(body, &mut t);
    }
    t.mark(s, by);
    t
}

fn processes(p: &mut ProcessesSection, t: &mut Truncation) {
    cut(&mut p.processes, "processes", PROCESSES, t);
}

fn packages(p: &mut PackagesSection, t: &mut Truncation) {
    cut(&mut p.packages, "packages", PACKAGES, t);
    cut(&mut p.problems, "package problems", SMALL, t);
}

fn sudoers(s: &mut SudoersSection, t: &mut Truncation) {
    cut(&mut s.files, "sudoers files", SUDO_ITEMS, t);
    cut(&mut s.rules, "sudo rules", SUDO_ITEMS, t);
    cut(&mut s.defaults, "sudoers defaults", SUDO_ITEMS, t);
    cut(&mut s.problems, "sudoers problems", SMALL, t);
    for r in &mut s.rules {
        cut(&mut r.hosts, "hosts of a sudo rule", SMALL, t);
        cut(&mut r.runas_users, "run-as users of a sudo rule", SMALL, t);
        cut(
            &mut r.runas_groups,
            "run-as groups of a sudo rule",
            SMALL,
            t,
        );
        cut(&mut r.tags, "tags of a sudo rule", SMALL, t);
    }
}

fn accounts(a: &mut AccountsSection, t: &mut Truncation) {
    cut(&mut a.users, "local users", ACCOUNTS, t);
    cut(&mut a.groups, "local groups", ACCOUNTS, t);
    cut(&mut a.problems, "account problems", SMALL, t);
    for u in &mut a.users {
        cut(&mut u.groups, "groups of a user", SMALL, t);
        cut(&mut u.admin_groups, "admin groups of a user", SMALL, t);
    }
    for g in &mut a.groups {
        cut(&mut g.members, "members of a group", ACCOUNTS, t);
    }
}

fn containers(c: &mut ContainersSection, t: &mut Truncation) {
    cut(&mut c.containers, "containers", CONTAINERS, t);
    for k in &mut c.containers {
        cut(&mut k.ports, "ports of a container", SMALL, t);
        cut(&mut k.mounts, "mounts of a container", SMALL, t);
        cut(&mut k.labels, "labels of a container", SMALL, t);
        cut(
            &mut k.image_repo_digests,
            "digests of a container",
            SMALL,
            t,
        );
    }
}

fn listening(l: &mut ListeningSection, t: &mut Truncation) {
    cut(&mut l.sockets, "listening sockets", SOCKETS, t);
    cut(&mut l.problems, "listening problems", SMALL, t);
    for s in &mut l.sockets {
        cut(&mut s.owners, "owners of a socket", SMALL, t);
    }
}

fn ssh_keys(k: &mut SshKeysSection, t: &mut Truncation) {
    cut(&mut k.files, KEY_FILES_WHAT, KEY_FILES, t);
    cut(&mut k.errors, "ssh_keys errors", SMALL, t);
    let trusted = k
        .sshd
        .as_mut()
        .and_then(|s| s.trusted_user_ca_file.as_mut());
    for f in k.files.iter_mut().chain(trusted) {
        let before = f.keys.len();
        cut(&mut f.keys, "keys of a file", KEYS_PER_FILE, t);
        if f.keys.len() < before && f.incomplete.is_empty() {
            // A key may hide in what was cut: nothing proves it absent.
            f.incomplete = format!(
                "truncated: {} keys beyond the cap of {KEYS_PER_FILE}",
                before - f.keys.len()
            );
        }
        cut(&mut f.malformed, "malformed lines of a file", SMALL, t);
    }
    if let Some(s) = k.sshd.as_mut() {
        cut(&mut s.config_files, "sshd config files", SMALL, t);
        cut(&mut s.includes, "sshd includes", SMALL, t);
        cut(&mut s.match_blocks, "sshd match blocks", SMALL, t);
        cut(&mut s.problems, "sshd problems", SMALL, t);
        for m in &mut s.match_blocks {
            cut(&mut m.settings, "settings of a match block", SMALL, t);
        }
    }
}

fn log_config(l: &mut LogConfigSection, t: &mut Truncation) {
    cut(&mut l.forwards, "log forwards", LOG_ITEMS, t);
    cut(&mut l.outputs, "log outputs", LOG_ITEMS, t);
    cut(&mut l.rotation, "rotation rules", LOG_ITEMS, t);
    cut(&mut l.unrotated, "unrotated files", LOG_ITEMS, t);
    cut(&mut l.files, "log config files", LOG_ITEMS, t);
    cut(&mut l.rsyslog_modules, "rsyslog modules", SMALL, t);
    cut(&mut l.daemons, "log daemons", SMALL, t);
    if let Some(j) = l.journald.as_mut() {
        cut(&mut j.files, "journald files", SMALL, t);
    }
    for r in &mut l.rotation {
        cut(&mut r.patterns, "patterns of a rotation rule", SMALL, t);
        cut(
            &mut r.matched,
            "files a rotation rule matches",
            LOG_ITEMS,
            t,
        );
        cut(&mut r.duplicates, "duplicates of a rotation rule", SMALL, t);
    }
    for f in &mut l.files {
        cut(&mut f.issues, "issues of a log config file", SMALL, t);
    }
}

fn raid(r: &mut RaidSection, t: &mut Truncation) {
    cut(&mut r.md_personalities, "md personalities", SMALL, t);
    cut(&mut r.md_arrays, "md arrays", RAID_ITEMS, t);
    cut(&mut r.controllers, "RAID controllers", RAID_ITEMS, t);
    cut(&mut r.problems, "RAID problems", SMALL, t);
    for a in &mut r.md_arrays {
        cut(&mut a.members, "members of an md array", RAID_ITEMS, t);
        cut(&mut a.reasons, "reasons of an md array", SMALL, t);
    }
    for c in &mut r.controllers {
        cut(
            &mut c.virtual_drives,
            "virtual drives of a controller",
            RAID_ITEMS,
            t,
        );
        cut(
            &mut c.physical_drives,
            "physical drives of a controller",
            RAID_ITEMS,
            t,
        );
        cut(&mut c.batteries, "batteries of a controller", SMALL, t);
        cut(&mut c.reasons, "reasons of a controller", SMALL, t);
        for d in &mut c.virtual_drives {
            cut(&mut d.reasons, "reasons of a virtual drive", SMALL, t);
        }
        for d in &mut c.physical_drives {
            cut(&mut d.reasons, "reasons of a physical drive", SMALL, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AuthorizedKey, AuthorizedKeysFile, Package, Process};
    use crate::snapshot::ok_section;

    fn procs(n: usize) -> Body {
        Body::Processes(ProcessesSection {
            processes: (0..n)
                .map(|i| Process {
                    pid: i as u32 + 1,
                    ..Default::default()
                })
                .collect(),
        })
    }

    #[test]
    fn a_list_over_its_cap_is_cut_counted_and_said() {
        let mut s = ok_section(procs(PROCESSES + 7), 1);
        let t = enforce(&mut s, None);
        assert_eq!(t.total(), 7);
        assert_eq!(s.items_truncated, 7);
        assert_eq!(
            s.truncated,
            format!("truncated: 7 processes beyond the cap of {PROCESSES}")
        );
        let Some(Body::Processes(p)) = &s.body else {
            panic!()
        };
        assert_eq!(p.processes.len(), PROCESSES);
        assert_eq!(p.processes.last().unwrap().pid as usize, PROCESSES);
        assert_eq!(s.status, "ok");
        // Within the caps now: a second pass (the collector's) cuts nothing
        // and says nothing more.
        let before = s.clone();
        assert!(enforce(&mut s, Some("the collector")).is_empty());
        assert_eq!(s, before);
    }

    #[test]
    fn within_the_caps_nothing_changes() {
        let mut s = ok_section(procs(10), 1);
        let before = s.clone();
        assert!(enforce(&mut s, Some("the collector")).is_empty());
        assert_eq!(s, before);
    }

    #[test]
    fn the_collector_adds_to_what_the_agent_said() {
        let body = Body::Packages(PackagesSection {
            packages: vec![Package::default(); PACKAGES + 2],
            ..Default::default()
        });
        let mut s = ok_section(body, 1);
        s.items_truncated = 5;
        s.truncated = "truncated: 5 packages beyond the cap of 100000".into();
        enforce(&mut s, Some("the collector"));
        assert_eq!(s.items_truncated, 7);
        assert_eq!(
            s.truncated,
            "truncated: 5 packages beyond the cap of 100000; \
             truncated: 2 packages beyond the cap of 100000 (by the collector)"
        );
    }

    #[test]
    fn a_key_file_cut_is_incomplete_and_nested_lists_sum() {
        let file = AuthorizedKeysFile {
            keys: vec![AuthorizedKey::default(); KEYS_PER_FILE + 3],
            ..Default::default()
        };
        let mut body = Body::SshKeys(SshKeysSection {
            files: vec![file.clone(), file],
            ..Default::default()
        });
        let mut t = Truncation::default();
        apply(&mut body, &mut t);
        assert_eq!(t.lists, vec![("keys of a file", 6, KEYS_PER_FILE)]);
        let Body::SshKeys(k) = body else { panic!() };
        assert!(k.files.iter().all(|f| f.keys.len() == KEYS_PER_FILE
            && f.incomplete == format!("truncated: 3 keys beyond the cap of {KEYS_PER_FILE}")));
    }
}
