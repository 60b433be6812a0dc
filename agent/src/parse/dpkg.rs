//! `/var/lib/dpkg/status`: one RFC 822-style stanza per package, separated
//! by blank lines, with continuation lines (a leading space or tab) for
//! multi-line fields such as Description and Conffiles.

use driftwatch_common::proto::Package;

/// Parsed packages (sorted by name, architecture, version) and the lines
/// that could not be read: (1-based line, reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DpkgStatus {
    pub packages: Vec<Package>,
    pub problems: Vec<(usize, String)>,
}

const MAX_PROBLEMS: usize = 50;

#[derive(Default)]
struct Stanza {
    start: usize,
    name: String,
    version: String,
    arch: String,
    status: String,
    seen_field: bool,
}

pub fn parse(text: &str) -> DpkgStatus {
    let mut out = DpkgStatus::default();
    let mut cur = Stanza::default();
    let mut dropped = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            finish(&mut out, std::mem::take(&mut cur));
            continue;
        }
        if !cur.seen_field {
            cur.start = lineno;
        }
        if line.starts_with([' ', '\t']) {
            if !cur.seen_field {
                push(
                    &mut out,
                    &mut dropped,
                    lineno,
                    "continuation line outside a field".into(),
                );
            }
            // Continuations only extend fields we do not keep.
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            push(
                &mut out,
                &mut dropped,
                lineno,
                format!("not a 'Field: value' line: {:.60}", line),
            );
            continue;
        };
        cur.seen_field = true;
        let value = value.trim().to_string();
        // Field names are case-insensitive (deb-control(5)).
        match key.to_ascii_lowercase().as_str() {
            "package" => cur.name = value,
            "version" => cur.version = value,
            "architecture" => cur.arch = value,
            "status" => cur.status = value,
            _ => {}
        }
    }
    finish(&mut out, cur);
    if dropped > 0 {
        out.problems
            .push((0, format!("{dropped} more unreadable lines not listed")));
    }
    out.packages.sort_by(|a, b| {
        (&a.name, &a.architecture, &a.version).cmp(&(&b.name, &b.architecture, &b.version))
    });
    out
}

fn push(out: &mut DpkgStatus, dropped: &mut usize, line: usize, msg: String) {
    if out.problems.len() < MAX_PROBLEMS {
        out.problems.push((line, msg));
    } else {
        *dropped += 1;
    }
}

fn finish(out: &mut DpkgStatus, s: Stanza) {
    if !s.seen_field {
        return;
    }
    if s.name.is_empty() {
        out.problems
            .push((s.start, "stanza without a Package field".into()));
        return;
    }
    // "want flag status": only the status word says whether it is there.
    let installed = s.status.split_whitespace().nth(2) == Some("installed");
    out.packages.push(Package {
        name: s.name,
        version: s.version,
        architecture: s.arch,
        status: s.status,
        installed,
        source: "dpkg".into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Provides: libz1
Depends: libc6 (>= 2.14)
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.  This package includes the shared library.
Homepage: http://zlib.net/

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u4
Conffiles:
 /etc/ld.so.conf.d/i386-linux-gnu.conf 3ba6b9b2d1b9a8c7e3c0c0a3f0e1b3a4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 A paragraph after a dot line.

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9-1
Conffiles:
 /etc/oldpkg.conf 0123456789abcdef0123456789abcdef obsolete

package: half
status: install reinstreq half-installed
architecture: all
version: 3.0

Status: install ok installed
Version: 1.0
";

    #[test]
    fn stanzas_fields_and_status() {
        let d = parse(SAMPLE);
        let got: Vec<(&str, &str, &str, bool)> = d
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.architecture.as_str(),
                    p.version.as_str(),
                    p.installed,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("half", "all", "3.0", false),
                ("libc6", "amd64", "2.36-9+deb12u4", true),
                ("libc6", "i386", "2.36-9+deb12u4", true),
                ("oldpkg", "amd64", "0.9-1", false),
                ("zlib1g", "amd64", "1:1.2.13.dfsg-1", true),
            ]
        );
        assert_eq!(d.packages[3].status, "deinstall ok config-files");
        assert_eq!(d.packages[0].status, "install reinstreq half-installed");
        // The stanza with no Package is reported at its first line.
        assert_eq!(
            d.problems,
            vec![(46, "stanza without a Package field".to_string())]
        );
    }

    #[test]
    fn crlf_no_trailing_newline_and_garbage() {
        let d =
            parse("Package: a\r\nVersion: 1\r\nStatus: install ok installed\r\nArchitecture: all");
        assert_eq!(d.packages.len(), 1);
        assert!(d.packages[0].installed);
        assert_eq!(d.packages[0].architecture, "all");

        let d = parse("\u{0}\u{fffd}\u{fffd}binary\n\u{1}junk\n");
        assert!(d.packages.is_empty());
        assert_eq!(d.problems.len(), 2);
        assert_eq!(d.problems[0].0, 1);

        let junk = "nonsense\n".repeat(1000);
        assert_eq!(parse(&junk).problems.len(), MAX_PROBLEMS + 1);
    }

    /// This machine is Debian: our installed count must equal dpkg's own.
    #[test]
    fn the_real_database_matches_dpkg_query() {
        let text = std::fs::read_to_string("/var/lib/dpkg/status").expect("a Debian test host");
        let d = parse(&text);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let ours = d.packages.iter().filter(|p| p.installed).count();
        let out = std::process::Command::new("dpkg-query")
            .args(["-f", "${db:Status-Abbrev}\n", "-W"])
            .output()
            .expect("dpkg-query");
        let abbrev = String::from_utf8_lossy(&out.stdout);
        // Second letter `i`: installed, whatever was wanted (held packages
        // read "hi"); on a host without holds this is `grep -c '^ii'`.
        let theirs = abbrev
            .lines()
            .filter(|l| l.as_bytes().get(1) == Some(&b'i'))
            .count();
        assert!(ours > 50, "{ours}");
        assert_eq!(ours, theirs);
    }
}
