//! The `updates` section: what `apt upgrade` would offer, computed offline
//! from apt's cached indexes (`/var/lib/apt/lists/*_Packages[.lz4]`)
//! against dpkg's status, versions compared as dpkg compares them
//! (`driftwatch_common::debversion`). Nothing is fetched: the answer is as
//! of the last `apt update`, whose time the section carries so a stale
//! answer is seen to be stale. Also whether the host needs a reboot.
//!
//! An index is tens of megabytes of text (bookworm's main is ~50 MB), so
//! it is streamed line by line, only the stanzas of installed packages are
//! kept, and what was read is kept across collections until the index
//! file or dpkg's status changes (size or mtime): an unchanged host costs
//! a few `stat`s per collection.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;

use driftwatch_common::debversion;
use driftwatch_common::proto::{
    AptIndex, Package, PendingUpdate, RebootStatus, UpdatesProblem, UpdatesSection, section::Body,
};
use driftwatch_common::section::SectionKind;

use super::{Collector, Context, SectionError};
use crate::hostfs::{FsError, HostFs, for_each_line};
use crate::parse::{apt, dpkg};

const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const LISTS: &str = "/var/lib/apt/lists";
/// As for the packages section: a large status file is 5–10 MiB.
const MAX_STATUS_BYTES: u64 = 64 << 20;
/// An index file as stored (bookworm main: 19 MB as lz4, ~50 MB plain).
const MAX_INDEX_BYTES: u64 = 256 << 20;
/// Its text once decompressed.
const MAX_INDEX_TEXT: u64 = 512 << 20;
/// Release files carry every index's checksums: ~150 KB for Debian main.
const MAX_RELEASE_BYTES: u64 = 8 << 20;
/// Indexes read per collection.
const MAX_INDEXES: usize = 256;
const REBOOT_REQUIRED: &str = "/var/run/reboot-required";
const REBOOT_PKGS: &str = "/var/run/reboot-required.pkgs";

/// What was read from one index, kept while its file is unchanged.
struct CachedIndex {
    size: u64,
    mtime_ns: i128,
    offers: Vec<apt::Offer>,
    stanzas: u64,
    problems: Vec<(u32, String)>,
}

#[derive(Default)]
pub struct UpdatesCollector {
    /// dpkg status (size, mtime) the cached offers were filtered for.
    status_key: Option<(u64, i128)>,
    cache: HashMap<String, CachedIndex>,
}

impl Collector for UpdatesCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Updates
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let fs_ = &ctx.fs;
        let mut s = UpdatesSection::default();
        let status = match fs_.read_file(DPKG_STATUS, MAX_STATUS_BYTES) {
            Ok(t) => t,
            Err(FsError::NotFound { .. }) => {
                return Err(SectionError::Unsupported(
                    "no dpkg status database (/var/lib/dpkg/status): not a Debian-style host"
                        .into(),
                ));
            }
            Err(e) => return Err(SectionError::Failed(e.to_string())),
        };
        if status.truncated {
            problem(
                &mut s,
                DPKG_STATUS,
                0,
                format!("larger than {MAX_STATUS_BYTES} bytes: packages past it are not compared"),
            );
        }
        let installed: Vec<Package> = dpkg::parse(&status.text)
            .packages
            .into_iter()
            .filter(|p| p.installed)
            .collect();
        let status_key = fs_
            .resolve(DPKG_STATUS)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (m.size(), mtime_ns(&m)));
        if status_key != self.status_key {
            // Another set of packages: the kept offers were filtered for
            // the old one.
            self.cache.clear();
            self.status_key = status_key;
        }
        s.reboot = Some(reboot(fs_, &installed));

        let names = match fs_.read_dir(LISTS) {
            Ok(n) => n,
            Err(FsError::NotFound { .. }) => {
                problem(
                    &mut s,
                    LISTS,
                    0,
                    "no apt lists: nothing to compare against (run apt update)".into(),
                );
                return Ok(Body::Updates(s));
            }
            Err(e) => return Err(SectionError::Failed(e.to_string())),
        };
        s.source = "apt".into();
        let releases = read_releases(fs_, &names, &mut s);
        let wanted: HashSet<String> = installed.iter().map(|p| p.name.clone()).collect();
        let mut indexes: Vec<(AptIndex, &[apt::Offer])> = Vec::new();
        let mut index_names: Vec<&String> = names.iter().filter(|n| is_index(n)).collect();
        if index_names.len() > MAX_INDEXES {
            problem(
                &mut s,
                LISTS,
                0,
                format!(
                    "{} indexes beyond the bound of {MAX_INDEXES} not read",
                    index_names.len() - MAX_INDEXES
                ),
            );
            index_names.truncate(MAX_INDEXES);
        }
        let live: HashSet<String> = index_names.iter().map(|n| format!("{LISTS}/{n}")).collect();
        self.cache.retain(|k, _| live.contains(k));
        for name in &index_names {
            let path = format!("{LISTS}/{name}");
            if let Err(why) = self.refresh(fs_, &path, name, &wanted) {
                problem(&mut s, &path, 0, why);
                continue;
            }
        }
        for name in &index_names {
            let path = format!("{LISTS}/{name}");
            let Some(c) = self.cache.get(&path) else {
                continue;
            };
            for (line, why) in &c.problems {
                problem(&mut s, &path, *line, why.clone());
            }
            let rel = releases
                .iter()
                .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, r)| r);
            let r = rel.cloned().unwrap_or_default();
            let security = r.is_security() || apt::name_says_security(name);
            indexes.push((
                AptIndex {
                    path: path.clone(),
                    origin: r.origin,
                    label: r.label,
                    suite: if r.suite.is_empty() {
                        r.codename.clone()
                    } else {
                        r.suite
                    },
                    codename: r.codename,
                    release_date_ms: r.date_ms.unwrap_or(0),
                    mtime_ms: (c.mtime_ns / 1_000_000) as i64,
                    security,
                    packages: c.stanzas,
                },
                &c.offers,
            ));
        }
        // apt touches the Release files at every successful update even
        // when the indexes did not change (their mtime is the server's).
        let release_mtime = names
            .iter()
            .filter(|n| n.ends_with("_InRelease") || n.ends_with("_Release"))
            .filter_map(|n| fs_.resolve(&format!("{LISTS}/{n}")).ok())
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| (mtime_ns(&m) / 1_000_000) as i64)
            .max();
        s.index_refreshed_ms = release_mtime
            .or_else(|| indexes.iter().map(|(i, _)| i.mtime_ms).max())
            .unwrap_or(0);
        s.updates = pending(&installed, &indexes);
        s.security_count = s.updates.iter().filter(|u| u.security).count() as u64;
        s.indexes = indexes.into_iter().map(|(i, _)| i).collect();
        Ok(Body::Updates(s))
    }
}

impl UpdatesCollector {
    /// Reads an index into the cache unless its file is unchanged.
    fn refresh(
        &mut self,
        fs_: &HostFs,
        path: &str,
        name: &str,
        wanted: &HashSet<String>,
    ) -> Result<(), String> {
        let (file, meta) = fs_.open_file(path).map_err(|e| e.to_string())?;
        let (size, mtime) = (meta.size(), mtime_ns(&meta));
        if self
            .cache
            .get(path)
            .is_some_and(|c| c.size == size && c.mtime_ns == mtime)
        {
            return Ok(());
        }
        let mut reader = apt::IndexReader::new(Some(wanted));
        let raw = file.take(MAX_INDEX_BYTES);
        let whole = if name.ends_with(".lz4") {
            let dec = lz4_flex::frame::FrameDecoder::new(raw);
            for_each_line(dec, MAX_INDEX_TEXT, |n, l| reader.line(n, l))
        } else {
            for_each_line(raw, MAX_INDEX_TEXT, |n, l| reader.line(n, l))
        }
        .map_err(|e| format!("reading failed: {e}"))?;
        reader.finish();
        let mut problems = std::mem::take(&mut reader.problems);
        if reader.problems_dropped > 0 {
            problems.push((
                0,
                format!(
                    "{} more malformed lines not listed",
                    reader.problems_dropped
                ),
            ));
        }
        if !whole || size > MAX_INDEX_BYTES {
            problems.push((0, format!("larger than the bound ({MAX_INDEX_BYTES} bytes stored, {MAX_INDEX_TEXT} as text): packages past it are not compared")));
        }
        self.cache.insert(
            path.to_string(),
            CachedIndex {
                size,
                mtime_ns: mtime,
                offers: reader.offers,
                stanzas: reader.stanzas,
                problems,
            },
        );
        Ok(())
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

fn problem(s: &mut UpdatesSection, source: &str, line: u32, message: String) {
    s.problems.push(UpdatesProblem {
        source: source.into(),
        line,
        message,
    });
}

/// `..._binary-amd64_Packages` (plain, or lz4 as apt keeps it when
/// configured to). Other compressions are named as unread by the caller.
fn is_index(name: &str) -> bool {
    name.ends_with("_Packages") || name.ends_with("_Packages.lz4")
}

/// (name prefix, parsed header) of every Release/InRelease file: an index
/// belongs to the release whose prefix is the longest that starts its name.
fn read_releases(
    fs_: &HostFs,
    names: &[String],
    s: &mut UpdatesSection,
) -> Vec<(String, apt::Release)> {
    let mut out = Vec::new();
    for n in names {
        if n.contains("_Packages.") && !is_index(n) {
            problem(s, &format!("{LISTS}/{n}"), 0, "compressed in a format the agent does not read (plain and .lz4 are read): its packages are not compared".into());
        }
        let prefix = if let Some(p) = n.strip_suffix("InRelease") {
            p
        } else if let Some(p) = n.strip_suffix("Release") {
            p
        } else {
            continue;
        };
        if !prefix.ends_with('_') {
            continue;
        }
        let path = format!("{LISTS}/{n}");
        match fs_.read_file(&path, MAX_RELEASE_BYTES) {
            // A Release beside an InRelease says the same: the first wins.
            Ok(t) if !out.iter().any(|(p, _)| p == prefix) => {
                out.push((prefix.to_string(), apt::release(&t.text)))
            }
            Ok(_) => {}
            Err(e) => problem(s, &path, 0, e.to_string()),
        }
    }
    out
}

/// Installed packages some index offers a newer version of.
fn pending(installed: &[Package], indexes: &[(AptIndex, &[apt::Offer])]) -> Vec<PendingUpdate> {
    // name → (arch, version, index) of every offer.
    let mut offers: HashMap<&str, Vec<(&str, &str, &AptIndex)>> = HashMap::new();
    for (ix, list) in indexes {
        for o in list.iter() {
            offers
                .entry(&o.name)
                .or_default()
                .push((&o.arch, &o.version, ix));
        }
    }
    let mut out: BTreeMap<(String, String), PendingUpdate> = BTreeMap::new();
    for p in installed {
        let Some(list) = offers.get(p.name.as_str()) else {
            continue;
        };
        let fits = |arch: &str| arch == p.architecture || arch == "all" || p.architecture == "all";
        let newer: Vec<&(&str, &str, &AptIndex)> = list
            .iter()
            .filter(|(a, v, _)| fits(a) && debversion::compare(v, &p.version).is_gt())
            .collect();
        let Some(best) = newer.iter().max_by(|a, b| debversion::compare(a.1, b.1)) else {
            continue;
        };
        let security = newer.iter().any(|(_, _, ix)| ix.security);
        // Of the indexes offering the candidate, a security one names it.
        let suite = newer
            .iter()
            .filter(|(_, v, _)| debversion::compare(v, best.1).is_eq())
            .max_by_key(|(_, _, ix)| ix.security)
            .map(|(_, _, ix)| ix.suite.clone())
            .unwrap_or_default();
        out.insert(
            (p.name.clone(), p.architecture.clone()),
            PendingUpdate {
                name: p.name.clone(),
                architecture: p.architecture.clone(),
                installed_version: p.version.clone(),
                candidate_version: best.1.to_string(),
                security,
                suite,
            },
        );
    }
    out.into_values().collect()
}

/// Whether the host waits for a reboot: Debian's and Ubuntu's marker file
/// (written by package hooks), or a running kernel older than the newest
/// installed `linux-image-*` package.
fn reboot(fs_: &HostFs, installed: &[Package]) -> RebootStatus {
    let mut r = RebootStatus::default();
    let mtime_ms = |path: &str| {
        fs_.resolve(path)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (mtime_ns(&m) / 1_000_000) as i64)
    };
    if let Some(at) = mtime_ms(REBOOT_REQUIRED) {
        r.required = true;
        r.reasons.push(format!("{REBOOT_REQUIRED} exists"));
        r.since_ms = at;
    }
    if let Ok(t) = fs_.read_file(REBOOT_PKGS, 1 << 20) {
        let pkgs: BTreeSet<String> = t
            .text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        r.packages = pkgs.into_iter().collect();
    }
    r.running_kernel = fs_
        .read_file("/proc/sys/kernel/osrelease", 256)
        .map(|t| t.text.trim().to_string())
        .unwrap_or_default();
    // linux-image-6.1.0-26-amd64 (and its -unsigned twin), not the
    // linux-image-amd64 metapackage nor -dbg symbols.
    let kernels: Vec<(&Package, &str)> = installed
        .iter()
        .filter_map(|p| {
            let rel = p.name.strip_prefix("linux-image-")?;
            let rel = rel.strip_suffix("-unsigned").unwrap_or(rel);
            (rel.starts_with(|c: char| c.is_ascii_digit()) && !rel.ends_with("-dbg"))
                .then_some((p, rel))
        })
        .collect();
    let Some(&(newest, newest_rel)) = kernels.iter().max_by(|a, b| {
        debversion::compare(&a.0.version, &b.0.version).then_with(|| debversion::compare(a.1, b.1))
    }) else {
        return r;
    };
    r.newest_kernel = newest_rel.to_string();
    if r.running_kernel.is_empty() || newest_rel == r.running_kernel {
        return r;
    }
    let running = kernels.iter().find(|(_, rel)| *rel == r.running_kernel);
    let older = match running {
        Some((p, _)) => debversion::compare(&p.version, &newest.version).is_lt(),
        // Not from a package (or removed): compare the releases.
        None => debversion::compare(&r.running_kernel, newest_rel).is_lt(),
    };
    if older {
        r.reasons.push(format!(
            "running kernel {} is older than installed {} ({})",
            r.running_kernel, newest.name, newest.version
        ));
        let list = [
            format!("/var/lib/dpkg/info/{}.list", newest.name),
            format!(
                "/var/lib/dpkg/info/{}:{}.list",
                newest.name, newest.architecture
            ),
        ];
        let since = list.iter().find_map(|p| mtime_ms(p)).unwrap_or(0);
        if !r.required || (since > 0 && since < r.since_ms) {
            r.since_ms = since;
        }
        r.required = true;
    }
    r
}

#[cfg(test)]
#[path = "updates_tests.rs"]
mod tests;
