//! apt's cached indexes under `/var/lib/apt/lists`: the `Packages` files
//! (one stanza per package version the repository offers) and the
//! `Release`/`InRelease` files beside them (the repository's Origin,
//! Label, Suite, Codename and Date).
//!
//! A `Packages` index runs to tens of megabytes, so it is fed line by line
//! ([`IndexReader`]) and only the fields an upgrade needs are kept, for
//! the packages the caller asks about.

use std::collections::{HashMap, HashSet};

/// One version a repository offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub name: String,
    pub arch: String,
    pub version: String,
}

/// Reads a `Packages` index one line at a time, keeping the stanzas whose
/// Package is in `wanted` (all of them when `wanted` is None).
pub struct IndexReader<'w> {
    wanted: Option<&'w HashSet<String>>,
    name: String,
    arch: String,
    version: String,
    start: u32,
    in_stanza: bool,
    /// Stanzas seen (every package the index lists).
    pub stanzas: u64,
    pub offers: Vec<Offer>,
    /// (1-based line, reason); at most [`MAX_PROBLEMS`].
    pub problems: Vec<(u32, String)>,
    pub problems_dropped: u64,
}

pub const MAX_PROBLEMS: usize = 50;

impl<'w> IndexReader<'w> {
    pub fn new(wanted: Option<&'w HashSet<String>>) -> Self {
        IndexReader {
            wanted,
            name: String::new(),
            arch: String::new(),
            version: String::new(),
            start: 0,
            in_stanza: false,
            stanzas: 0,
            offers: Vec::new(),
            problems: Vec::new(),
            problems_dropped: 0,
        }
    }

    /// One line (terminator included or not) with its 1-based number.
    pub fn line(&mut self, n: u32, raw: &[u8]) {
        let line = trim_eol(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            self.end();
            return;
        }
        if !self.in_stanza {
            self.in_stanza = true;
            self.start = n;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Continuations only extend fields we do not keep.
            return;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            self.problem(n, "not a 'Field: value' line".into());
            return;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let slot = match key {
            b"Package" => &mut self.name,
            b"Architecture" => &mut self.arch,
            b"Version" => &mut self.version,
            _ => return,
        };
        *slot = String::from_utf8_lossy(value).trim().to_string();
    }

    /// The end of the input: the last stanza needs no blank line after it.
    pub fn finish(&mut self) {
        self.end();
    }

    fn end(&mut self) {
        if !self.in_stanza {
            return;
        }
        self.in_stanza = false;
        self.stanzas += 1;
        let name = std::mem::take(&mut self.name);
        let arch = std::mem::take(&mut self.arch);
        let version = std::mem::take(&mut self.version);
        if name.is_empty() || version.is_empty() {
            let start = self.start;
            self.problem(start, "stanza without Package or Version".into());
            return;
        }
        if self.wanted.is_some_and(|w| !w.contains(&name)) {
            return;
        }
        self.offers.push(Offer {
            name,
            arch,
            version,
        });
    }

    fn problem(&mut self, n: u32, why: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push((n, why));
        } else {
            self.problems_dropped += 1;
        }
    }
}

fn trim_eol(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// The fields of a Release or InRelease file's header that say where an
/// index comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    /// `Date:`, ms since the epoch; None when absent or unreadable.
    pub date_ms: Option<i64>,
}

/// Parses the first stanza of a Release file, or of the signed text of an
/// InRelease file (the clearsign armour lines are skipped).
pub fn release(text: &str) -> Release {
    let mut r = Release::default();
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut started = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("-----BEGIN PGP SIGNED MESSAGE") || line.starts_with("Hash:") {
            continue;
        }
        if line.trim().is_empty() {
            if started {
                break;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        started = true;
        if let Some((k, v)) = line.split_once(':') {
            fields.entry(k).or_insert(v.trim());
        }
    }
    let get = |k: &str| fields.get(k).map(|v| v.to_string()).unwrap_or_default();
    r.origin = get("Origin");
    r.label = get("Label");
    r.suite = get("Suite");
    r.codename = get("Codename");
    r.date_ms = fields.get("Date").and_then(|d| rfc2822_ms(d));
    r
}

impl Release {
    /// Security by origin: a `-security` suite (Debian's
    /// `bookworm-security`, Ubuntu's `jammy-security`) or a label that
    /// says so (`Debian-Security`).
    pub fn is_security(&self) -> bool {
        self.suite.ends_with("-security")
            || self.codename.ends_with("-security")
            || self.suite.ends_with("/updates")
            || self.label.to_ascii_lowercase().contains("security")
            || self.origin.to_ascii_lowercase().contains("security")
    }
}

/// A lists file name names its repository (`host_path_dists_SUITE_...`):
/// `-security` in it is a security index even when no Release sits beside it.
pub fn name_says_security(file_name: &str) -> bool {
    file_name.contains("-security_") || file_name.contains("_security_")
}

/// An RFC 2822 date as Release files write it ("Sat, 09 Nov 2024
/// 10:35:41 UTC"; the weekday is optional, the zone UTC, GMT, Z or ±hhmm).
pub fn rfc2822_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_, rest)) => rest.trim(),
        None => s,
    };
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() < 4 {
        return None;
    }
    let day: i64 = f[0].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(f[1]))? as i64
        + 1;
    let year: i64 = f[2].parse().ok()?;
    let t: Vec<i64> = f[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (h, mi, sec) = match t[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    let offset_s = match f.get(4).copied().unwrap_or("UTC") {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "apt_tests.rs"]
mod tests;
