//! `host show --section log_config`: where logs go, how they are kept, and
//! what an operator must fix (no forwarding, unrotated files, broken config)
//! marked with a leading `!`.

use driftwatch_common::proto::{LogConfigSection, RotationPolicy};

use super::table::{Table, clip, human_bytes};

pub fn render(s: &LogConfigSection) -> String {
    let mut out = format!("config found: {}\n", s.daemons.join(", "));
    forwards(s, &mut out);
    outputs(s, &mut out);
    journald(s, &mut out);
    rotation(s, &mut out);
    unrotated(s, &mut out);
    files(s, &mut out);
    out
}

fn forwards(s: &LogConfigSection, out: &mut String) {
    out.push_str("\nforwarding\n");
    if !s.forwards.iter().any(|f| !f.commented) {
        out.push_str("! NO ACTIVE FORWARDING: logs stay on this host\n");
    }
    if s.forwards.is_empty() {
        return;
    }
    let mut t = Table::new([
        "TARGET", "PORT", "PROTO", "WHAT", "DAEMON", "SOURCE", "NOTE",
    ]);
    for f in &s.forwards {
        let port = if f.port == 0 {
            "default".to_string()
        } else {
            f.port.to_string()
        };
        let note = if f.commented {
            "commented out (inactive)".to_string()
        } else {
            f.options.clone()
        };
        t.row([
            f.target.clone(),
            port,
            f.protocol.clone(),
            clip(
                if f.selector.is_empty() {
                    "(all)"
                } else {
                    &f.selector
                },
                40,
            ),
            f.daemon.clone(),
            format!("{}:{}", f.file, f.line),
            note,
        ]);
    }
    out.push_str(&t.render());
}

fn outputs(s: &LogConfigSection, out: &mut String) {
    if s.outputs.is_empty() {
        return;
    }
    out.push_str("\nlocal files written\n");
    let mut t = Table::new(["PATH", "WHAT", "DAEMON", "SOURCE"]);
    for o in &s.outputs {
        let path = if o.no_sync {
            format!("{} (no sync)", o.path)
        } else {
            o.path.clone()
        };
        t.row([
            path,
            clip(&o.selector, 40),
            o.daemon.clone(),
            format!("{}:{}", o.file, o.line),
        ]);
    }
    out.push_str(&t.render());
}

fn journald(s: &LogConfigSection, out: &mut String) {
    let Some(j) = &s.journald else {
        return;
    };
    out.push_str("\njournald (empty = journald's default)\n");
    for (k, v) in [
        ("Storage", &j.storage),
        ("SystemMaxUse", &j.system_max_use),
        ("RuntimeMaxUse", &j.runtime_max_use),
        ("MaxRetentionSec", &j.max_retention_sec),
        ("ForwardToSyslog", &j.forward_to_syslog),
        ("Compress", &j.compress),
    ] {
        let v = if v.is_empty() {
            "(default)"
        } else {
            v.as_str()
        };
        out.push_str(&format!("  {k:<16} {v}\n"));
    }
    if j.storage == "volatile" || j.storage == "none" {
        out.push_str(&format!(
            "! journal Storage={}: the journal does not survive a reboot\n",
            j.storage
        ));
    }
}

fn rotation(s: &LogConfigSection, out: &mut String) {
    if s.rotation.is_empty() {
        return;
    }
    out.push_str("\nrotation rules\n");
    let mut t = Table::new([
        "PATHS", "MATCHED", "FREQ", "KEEP", "SIZE", "OPTIONS", "SOURCE",
    ]);
    for r in &s.rotation {
        let p = r.policy.clone().unwrap_or_default();
        t.row([
            clip(&r.patterns.join(" "), 50),
            // A stanza logrotate skips rotates nothing, whatever it matches.
            if r.skipped.is_empty() {
                r.matched.len().to_string()
            } else {
                "SKIPPED".into()
            },
            if p.frequency.is_empty() {
                "-".into()
            } else {
                p.frequency.clone()
            },
            p.rotate
                .map(|n| {
                    if n == u32::MAX {
                        "all".into()
                    } else {
                        n.to_string()
                    }
                })
                .unwrap_or_else(|| "-".into()),
            size(&p),
            flags(&p),
            format!("{}:{}", r.file, r.line),
        ]);
    }
    out.push_str(&t.render());
}

fn size(p: &RotationPolicy) -> String {
    let mut v = Vec::new();
    for (name, b) in [
        ("size", p.size_bytes),
        ("max", p.maxsize_bytes),
        ("min", p.minsize_bytes),
    ] {
        if let Some(b) = b {
            v.push(format!("{name} {}", human_bytes(b)));
        }
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn flags(p: &RotationPolicy) -> String {
    let mut v: Vec<String> = [
        (p.compress, "compress"),
        (p.delaycompress, "delaycompress"),
        (p.missingok, "missingok"),
        (p.notifempty, "notifempty"),
        (p.copytruncate, "copytruncate"),
        (p.dateext, "dateext"),
        (p.sharedscripts, "sharedscripts"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n.to_string())
    .collect();
    if !p.create.is_empty() {
        v.push(if p.create == "default" {
            "create".into()
        } else {
            format!("create {}", p.create)
        });
    }
    if !p.su.is_empty() {
        v.push(format!("su {}", p.su));
    }
    if let Some(d) = p.maxage_days {
        v.push(format!("maxage {d}"));
    }
    if !p.olddir.is_empty() {
        v.push(format!("olddir {}", p.olddir));
    }
    if !p.scripts.is_empty() {
        v.push(format!("scripts: {}", p.scripts.join(",")));
    }
    v.join(" ")
}

fn unrotated(s: &LogConfigSection, out: &mut String) {
    let partial = if s.var_log_partial {
        " (walk hit its bound: partial)"
    } else {
        ""
    };
    out.push_str(&format!(
        "\n/var/log: {}{partial}\n",
        human_bytes(s.var_log_bytes)
    ));
    if s.unrotated.is_empty() {
        out.push_str("every file under /var/log is covered by a rotation rule\n");
        return;
    }
    out.push_str(&format!(
        "! {} UNROTATED: no rotation rule covers {}\n",
        super::count(s.unrotated.len() as u64, "file"),
        if s.unrotated.len() == 1 { "it" } else { "them" }
    ));
    let mut t = Table::new(["", "PATH", "SIZE"]);
    for u in &s.unrotated {
        t.row(["!".into(), u.path.clone(), human_bytes(u.size_bytes)]);
    }
    out.push_str(&t.render());
}

fn files(s: &LogConfigSection, out: &mut String) {
    out.push_str(&format!("\nconfig files read: {}\n", s.files.len()));
    for f in &s.files {
        if !f.error.is_empty() {
            out.push_str(&format!("! {} ({}): {}\n", f.path, f.daemon, f.error));
        }
        for i in &f.issues {
            out.push_str(&format!("! {}:{}: {}\n", f.path, i.line, i.reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::{
        JournaldSettings, LogConfigFile, LogConfigIssue, LogForward, RotationRule, UnrotatedFile,
    };

    fn sample() -> LogConfigSection {
        LogConfigSection {
            daemons: vec!["rsyslog".into(), "journald".into(), "logrotate".into()],
            forwards: vec![LogForward {
                daemon: "rsyslog".into(),
                target: "remote-host".into(),
                port: 514,
                protocol: "tcp".into(),
                selector: "*.*".into(),
                file: "/etc/rsyslog.conf".into(),
                line: 86,
                commented: true,
                options: String::new(),
            }],
            journald: Some(JournaldSettings {
                storage: "volatile".into(),
                ..Default::default()
            }),
            rotation: vec![RotationRule {
                patterns: vec!["/var/log/app/*.log".into()],
                matched: vec!["/var/log/app/a.log".into()],
                file: "/etc/logrotate.d/app".into(),
                line: 1,
                policy: Some(RotationPolicy {
                    frequency: "daily".into(),
                    rotate: Some(7),
                    maxsize_bytes: Some(10 << 20),
                    compress: true,
                    su: "app app".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            unrotated: vec![UnrotatedFile {
                path: "/var/log/custom.out".into(),
                size_bytes: 2048,
            }],
            var_log_bytes: 3 << 20,
            files: vec![LogConfigFile {
                path: "/etc/logrotate.d/broken".into(),
                daemon: "logrotate".into(),
                error: String::new(),
                issues: vec![LogConfigIssue {
                    line: 3,
                    reason: "missing `{` after log path(s) /var/log/x".into(),
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn problems_stand_out() {
        let text = render(&sample());
        assert!(text.contains("! NO ACTIVE FORWARDING"), "{text}");
        assert!(text.contains("commented out (inactive)"), "{text}");
        assert!(text.contains("remote-host  514   tcp"), "{text}");
        assert!(text.contains("! journal Storage=volatile"), "{text}");
        assert!(text.contains("! 1 file UNROTATED"), "{text}");
        assert!(text.contains("!  /var/log/custom.out  2.0 KiB"), "{text}");
        assert!(
            text.contains("! /etc/logrotate.d/broken:3: missing `{`"),
            "{text}"
        );
        assert!(text.contains("/var/log: 3.0 MiB"), "{text}");
    }

    #[test]
    fn rules_table_shows_the_policy() {
        let text = render(&sample());
        let row = text
            .lines()
            .find(|l| l.starts_with("/var/log/app/*.log"))
            .unwrap();
        for want in [
            "daily",
            "7",
            "max 10.0 MiB",
            "compress",
            "su app app",
            "/etc/logrotate.d/app:1",
        ] {
            assert!(row.contains(want), "{want} missing in {row}");
        }
        assert!(text.contains("SystemMaxUse     (default)"), "{text}");
    }

    #[test]
    fn active_forwarding_has_no_warning() {
        let mut s = sample();
        s.forwards[0].commented = false;
        s.unrotated.clear();
        let text = render(&s);
        assert!(!text.contains("NO ACTIVE FORWARDING"), "{text}");
        assert!(
            text.contains("every file under /var/log is covered"),
            "{text}"
        );
    }
}
