//! The `packages` section: the dpkg status database, and `rpm -qa` when rpm
//! is installed. Unsupported when the host has neither.
//!
//! rpm runs only when the root is the real `/`, for the same reason as the
//! RAID tools: running a binary on behalf of another tree would execute that
//! tree's code as root (and `rpm --root` would still be our rpm reading a
//! foreign database format).

use driftwatch_common::section::SectionKind;
use std::ffi::OsString;
use std::time::Duration;

use driftwatch_common::proto::{PackageProblem, PackagesSection, section::Body};

use super::{Collector, Context, SectionError};
use crate::hostfs::FsError;
use crate::parse::{dpkg, rpm};
use crate::subprocess::{Spec, which_in};

const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// A large Debian host's status file is 5–10 MiB; 64 MiB bounds a bad one.
const MAX_DPKG_BYTES: u64 = 64 << 20;
const RPM_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_RPM_OUTPUT: usize = 64 << 20;

pub struct PackagesCollector {
    search_path: OsString,
}

impl Default for PackagesCollector {
    fn default() -> Self {
        PackagesCollector {
            search_path: std::env::var_os("PATH").unwrap_or_default(),
        }
    }
}

impl Collector for PackagesCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Packages
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let mut s = PackagesSection::default();
        let mut sources = Vec::new();
        let mut errors = Vec::new();

        match ctx.fs.read_file(DPKG_STATUS, MAX_DPKG_BYTES) {
            Ok(t) => {
                let mut text = t.text.as_str();
                if t.truncated {
                    problem(
                        &mut s,
                        DPKG_STATUS,
                        0,
                        format!("larger than {MAX_DPKG_BYTES} bytes: the rest is not listed"),
                    );
                    // Drop the stanza the bound cut in half.
                    text = text.rfind("\n\n").map_or("", |i| &text[..i]);
                }
                if t.lossy {
                    problem(
                        &mut s,
                        DPKG_STATUS,
                        0,
                        "holds bytes that are not UTF-8".into(),
                    );
                }
                let d = dpkg::parse(text);
                for (line, msg) in d.problems {
                    problem(&mut s, DPKG_STATUS, line, msg);
                }
                s.packages.extend(d.packages);
                sources.push("dpkg");
            }
            Err(FsError::NotFound { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }

        if ctx.fs.is_real_root() && which_in("rpm", &self.search_path).is_some() {
            let spec = Spec::new("rpm")
                .args(["-qa", "--queryformat", rpm::QUERY_FORMAT])
                .search_path(self.search_path.clone())
                .timeout(RPM_TIMEOUT)
                .max_output(MAX_RPM_OUTPUT);
            match spec.run() {
                Ok(out) => {
                    let (pkgs, problems) = rpm::parse(&out.stdout_lossy());
                    for (line, msg) in problems {
                        problem(&mut s, "rpm -qa", line, msg);
                    }
                    // rpm installed on a dpkg host usually has an empty
                    // database: only count it as a source when it lists something.
                    if !pkgs.is_empty() {
                        sources.push("rpm");
                        s.packages.extend(pkgs);
                    }
                }
                Err(e) => {
                    problem(&mut s, "rpm -qa", 0, e.to_string());
                    errors.push(e.to_string());
                }
            }
        }

        if sources.is_empty() {
            return Err(match errors.into_iter().next() {
                Some(e) => SectionError::Failed(e),
                None => {
                    SectionError::Unsupported("no dpkg status database and no rpm on PATH".into())
                }
            });
        }
        s.source = sources.join("+");
        s.packages.sort_by(|a, b| {
            (&a.name, &a.architecture, &a.version, &a.source).cmp(&(
                &b.name,
                &b.architecture,
                &b.version,
                &b.source,
            ))
        });
        s.installed_count = s.packages.iter().filter(|p| p.installed).count() as u64;
        Ok(Body::Packages(s))
    }
}

fn problem(s: &mut PackagesSection, source: &str, line: usize, message: String) {
    s.problems.push(PackageProblem {
        source: source.to_string(),
        line: line as u32,
        message,
    });
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::hostfs::HostFs;

    fn ctx(root: &Path) -> Context {
        Context {
            fs: HostFs::new(root),
        }
    }

    fn collector(bin: &Path) -> PackagesCollector {
        PackagesCollector {
            search_path: bin.as_os_str().to_owned(),
        }
    }

    fn with_status(content: &[u8]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
        fs::write(d.path().join("var/lib/dpkg/status"), content).unwrap();
        d
    }

    const STATUS: &str = "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2+deb12u3\nDescription: secure shell (SSH) server\n multi-line\n\nPackage: apache2\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2.4.62-1\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u8\n";

    #[test]
    fn dpkg_under_a_fake_root() {
        let root = with_status(STATUS.as_bytes());
        let bin = tempfile::tempdir().unwrap();
        let s = match collector(bin.path()).collect(&ctx(root.path())).unwrap() {
            Body::Packages(s) => s,
            _ => panic!("wrong body"),
        };
        assert_eq!(s.source, "dpkg");
        assert_eq!(s.installed_count, 2);
        let rows: Vec<(&str, &str, &str, bool)> = s
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.status.as_str(),
                    p.installed,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("apache2", "2.4.62-1", "deinstall ok config-files", false),
                ("base-files", "12.4+deb12u8", "install ok installed", true),
                (
                    "openssh-server",
                    "1:9.2p1-2+deb12u3",
                    "install ok installed",
                    true
                ),
            ]
        );
        assert!(s.problems.is_empty());
    }

    #[test]
    fn nothing_there_is_unsupported() {
        let root = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        match collector(bin.path()).collect(&ctx(root.path())) {
            Err(SectionError::Unsupported(why)) => assert!(why.contains("dpkg"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_databases_are_reported() {
        let bin = tempfile::tempdir().unwrap();
        // Non-UTF-8 bytes inside a value and a garbage line.
        let mut bytes = STATUS.as_bytes().to_vec();
        bytes.extend_from_slice(
            b"\nPackage: caf\xe9\nStatus: install ok installed\nVersion: 1\n\x00\x01garbage\n",
        );
        let root = with_status(&bytes);
        let s = match collector(bin.path()).collect(&ctx(root.path())).unwrap() {
            Body::Packages(s) => s,
            _ => panic!("wrong body"),
        };
        assert_eq!(s.installed_count, 3);
        assert!(s.packages.iter().any(|p| p.name == "caf\u{fffd}"));
        let msgs: Vec<String> = s
            .problems
            .iter()
            .map(|p| format!("{}:{}", p.line, p.message))
            .collect();
        assert!(msgs.iter().any(|m| m.contains("not UTF-8")), "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("21:not a 'Field: value'")),
            "{msgs:?}"
        );

        // A directory where the database should be: the section fails.
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("var/lib/dpkg/status")).unwrap();
        match collector(bin.path()).collect(&ctx(root.path())) {
            Err(SectionError::Failed(why)) => assert!(why.contains(DPKG_STATUS), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rpm_is_only_run_for_the_real_root() {
        // A fake rpm on PATH: with the real root it is run and merged with
        // dpkg; with a fake root it is not.
        let bin = tempfile::tempdir().unwrap();
        crate::testutil::write_script(
            &bin.path().join("rpm"),
            "printf 'zsh\\t5.8-9.el9\\tx86_64\\t(none)\\n'",
        );
        let root = with_status(STATUS.as_bytes());
        let Body::Packages(s) = collector(bin.path()).collect(&ctx(root.path())).unwrap() else {
            panic!("wrong body")
        };
        assert_eq!(s.source, "dpkg");

        let Body::Packages(s) = collector(bin.path()).collect(&ctx(Path::new("/"))).unwrap() else {
            panic!("wrong body")
        };
        assert_eq!(s.source, "dpkg+rpm");
        let zsh = s.packages.iter().find(|p| p.source == "rpm").unwrap();
        assert_eq!(
            (zsh.name.as_str(), zsh.version.as_str()),
            ("zsh", "5.8-9.el9")
        );
        assert!(s.installed_count > 50);
    }
}
