//! journald.conf and its drop-ins (`journald.conf.d/*.conf`).
//!
//! Only the `[Journal]` section counts. Each file yields the assignments it
//! makes; [`apply`] lays them over the settings so far, so later files win.
//! An empty value (`SystemMaxUse=`) resets a key to journald's default,
//! which we report as unset rather than guessing the default.

use driftwatch_common::proto::{JournaldSettings, LogConfigIssue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub line: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Assignments to keys we report, in file order.
    pub assignments: Vec<Assignment>,
    pub issues: Vec<LogConfigIssue>,
}

/// The keys we report; everything else in `[Journal]` is accepted silently.
const KEYS: &[&str] = &[
    "Storage",
    "SystemMaxUse",
    "MaxRetentionSec",
    "ForwardToSyslog",
    "Compress",
    "RuntimeMaxUse",
];

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let n = i as u32 + 1;
        let mut line = raw.trim().to_string();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        // systemd joins lines ending in a backslash.
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, next)) => {
                    line.push(' ');
                    line.push_str(next.trim());
                }
                None => break,
            }
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) => section = Some(name.trim().to_string()),
                None => out.issues.push(LogConfigIssue {
                    line: n,
                    reason: format!("section header `{line}` has no closing `]`"),
                }),
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            out.issues.push(LogConfigIssue {
                line: n,
                reason: format!("`{line}` is not a KEY=VALUE assignment"),
            });
            continue;
        };
        let (key, value) = (key.trim(), unquote(value.trim()));
        match section.as_deref() {
            None => {
                out.issues.push(LogConfigIssue {
                    line: n,
                    reason: format!("`{key}=` is outside any section (journald ignores it)"),
                });
                continue;
            }
            Some("Journal") => {}
            Some(_) => continue,
        }
        if !KEYS.contains(&key) {
            continue;
        }
        if let Err(reason) = validate(key, &value) {
            out.issues.push(LogConfigIssue { line: n, reason });
            continue;
        }
        out.assignments.push(Assignment {
            key: key.to_string(),
            value,
            line: n,
        });
    }
    out
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

fn validate(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let ok = match key {
        "Storage" => matches!(value, "volatile" | "persistent" | "auto" | "none"),
        "ForwardToSyslog" => parse_bool(value).is_some(),
        // Compress also takes a threshold size; accept anything size-like.
        "Compress" => {
            parse_bool(value).is_some() || value.starts_with(|c: char| c.is_ascii_digit())
        }
        "SystemMaxUse" | "RuntimeMaxUse" | "MaxRetentionSec" => {
            value.starts_with(|c: char| c.is_ascii_digit()) || value == "infinity"
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}={value}`: invalid value (journald would ignore it)"
        ))
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Lays one file's assignments over `s`; an empty value resets the key.
pub fn apply(s: &mut JournaldSettings, file: &str, parsed: &Parsed) {
    s.files.push(file.to_string());
    for a in &parsed.assignments {
        let slot = match a.key.as_str() {
            "Storage" => &mut s.storage,
            "SystemMaxUse" => &mut s.system_max_use,
            "MaxRetentionSec" => &mut s.max_retention_sec,
            "ForwardToSyslog" => &mut s.forward_to_syslog,
            "Compress" => &mut s.compress,
            "RuntimeMaxUse" => &mut s.runtime_max_use,
            _ => continue,
        };
        *slot = a.value.clone();
    }
}

#[cfg(test)]
mod tests;
