//! `host show --section packages`: a count and one row per package.

use driftwatch_common::proto::PackagesSection;

use super::Options;
use super::table::{Table, clip};

pub fn render(p: &PackagesSection, opts: &Options) -> String {
    let mut out = format!(
        "{} ({} installed) from {}\n",
        super::count(p.packages.len() as u64, "package"),
        p.installed_count,
        if p.source.is_empty() { "?" } else { &p.source }
    );
    let shown = if opts.limit > 0 {
        opts.limit.min(p.packages.len())
    } else {
        p.packages.len()
    };
    let mut t = Table::new(["NAME", "VERSION", "ARCH", "STATUS"]);
    for pkg in &p.packages[..shown] {
        t.row([
            pkg.name.clone(),
            clip(&pkg.version, 40),
            pkg.architecture.clone(),
            pkg.status.clone(),
        ]);
    }
    out.push_str(&t.render());
    if shown < p.packages.len() {
        out.push_str(&format!(
            "… {} more (use --limit 0 for all)\n",
            p.packages.len() - shown
        ));
    }
    for pr in &p.problems {
        let at = if pr.line > 0 {
            format!("{}:{}", pr.source, pr.line)
        } else {
            pr.source.clone()
        };
        out.push_str(&format!("! {at}: {}\n", pr.message));
    }
    out
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::{Package, PackageProblem};

    use super::*;

    fn pkg(name: &str, version: &str, status: &str, installed: bool) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            status: status.into(),
            installed,
            source: "dpkg".into(),
        }
    }

    #[test]
    fn count_table_and_problems() {
        let p = PackagesSection {
            source: "dpkg".into(),
            installed_count: 1,
            packages: vec![
                pkg("apache2", "2.4.62-1", "deinstall ok config-files", false),
                pkg(
                    "openssh-server",
                    "1:9.2p1-2+deb12u3",
                    "install ok installed",
                    true,
                ),
            ],
            problems: vec![PackageProblem {
                source: "/var/lib/dpkg/status".into(),
                line: 12,
                message: "stanza without a Package field".into(),
            }],
        };
        let text = render(&p, &Options::default());
        assert_eq!(
            text,
            "2 packages (1 installed) from dpkg\n\
             NAME            VERSION            ARCH   STATUS\n\
             apache2         2.4.62-1           amd64  deinstall ok config-files\n\
             openssh-server  1:9.2p1-2+deb12u3  amd64  install ok installed\n\
             ! /var/lib/dpkg/status:12: stanza without a Package field\n"
        );
        let limited = render(
            &p,
            &Options {
                limit: 1,
                ..Default::default()
            },
        );
        assert!(limited.contains("… 1 more"), "{limited}");
        assert!(!limited.contains("openssh-server"));
    }
}
