//! `rpm -qa --queryformat` output in the format [`QUERY_FORMAT`] asks for:
//! one tab-separated line per package.

use driftwatch_common::proto::Package;

/// Name, version-release, arch, epoch. rpm prints "(none)" for missing
/// tags (gpg-pubkey has no arch, most packages no epoch).
pub const QUERY_FORMAT: &str = "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{EPOCH}\\n";

/// Packages sorted by name, architecture, version, and the lines that could
/// not be read: (1-based line, reason).
pub fn parse(text: &str) -> (Vec<Package>, Vec<(usize, String)>) {
    let mut pkgs = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 || f[0].is_empty() {
            if problems.len() < 50 {
                problems.push((
                    i + 1,
                    format!("expected 4 tab-separated fields, found {}", f.len()),
                ));
            }
            continue;
        }
        let none = |s: &str| {
            if s == "(none)" {
                String::new()
            } else {
                s.to_string()
            }
        };
        let epoch = none(f[3]);
        let version = if epoch.is_empty() || epoch == "0" {
            f[1].to_string()
        } else {
            format!("{epoch}:{}", f[1])
        };
        pkgs.push(Package {
            name: f[0].to_string(),
            version,
            architecture: none(f[2]),
            status: "installed".into(),
            installed: true,
            source: "rpm".into(),
        });
    }
    pkgs.sort_by(|a, b| {
        (&a.name, &a.architecture, &a.version).cmp(&(&b.name, &b.architecture, &b.version))
    });
    (pkgs, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_format_lines() {
        let text = "openssl-libs\t3.0.7-27.el9\tx86_64\t1\n\
                    bash\t5.1.8-9.el9\tx86_64\t(none)\n\
                    gpg-pubkey\tfd431d51-4ae0493b\t(none)\t(none)\n\
                    glibc\t2.34-100.el9\ti686\t(none)\n\
                    glibc\t2.34-100.el9\tx86_64\t0\n\
                    broken line\n";
        let (p, problems) = parse(text);
        let got: Vec<(&str, &str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.architecture.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bash", "5.1.8-9.el9", "x86_64"),
                ("glibc", "2.34-100.el9", "i686"),
                ("glibc", "2.34-100.el9", "x86_64"),
                ("gpg-pubkey", "fd431d51-4ae0493b", ""),
                ("openssl-libs", "1:3.0.7-27.el9", "x86_64"),
            ]
        );
        assert!(p.iter().all(|p| p.installed && p.source == "rpm"));
        assert_eq!(
            problems,
            vec![(6, "expected 4 tab-separated fields, found 1".to_string())]
        );
    }
}
