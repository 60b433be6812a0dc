//! The `accounts` section: local users and groups, and from shadow the
//! state of each account only (see `parse::accounts`).
//!
//! Every file is read through [`HostFs`] (links re-rooted under `--root`)
//! and bounded; a file cut at its bound loses its last, partial line and
//! says so in `problems`, like a malformed line.

use std::collections::BTreeMap;

use driftwatch_common::proto::section::Body;
use driftwatch_common::proto::{AccountProblem, AccountsSection, LocalGroup, LocalUser};
use driftwatch_common::section::SectionKind;

use super::{Collector, Context, SectionError, passwd};
use crate::hostfs::{FsError, HostFs};
use crate::parse::accounts::{self as parse, ADMIN_GROUPS, ShadowState};

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";
pub const SHADOW: &str = "/etc/shadow";
/// A directory-backed host can export tens of thousands of accounts into
/// the local files; 16 MiB is far above that and bounds a hostile file.
pub const MAX_ACCOUNT_FILE_BYTES: u64 = 16 << 20;

pub struct AccountsCollector;

impl Collector for AccountsCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Accounts
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let today = driftwatch_common::time::now_ms().div_euclid(86_400_000);
        collect_accounts(&ctx.fs, today, MAX_ACCOUNT_FILE_BYTES).map(Body::Accounts)
    }
}

fn problem(s: &mut AccountsSection, source: &str, line: usize, message: String) {
    s.problems.push(AccountProblem {
        source: source.into(),
        line: line as u32,
        message,
    });
}

/// Reads one account file; None when it is absent (problem recorded when
/// it could not be read). A cut file keeps only its whole lines.
fn read_text(fs: &HostFs, path: &str, max: u64, s: &mut AccountsSection) -> Option<String> {
    match fs.read_file(path, max) {
        Ok(t) => {
            let mut text = t.text;
            if t.truncated {
                problem(
                    s,
                    path,
                    0,
                    format!("larger than {max} bytes: later lines not read"),
                );
                let whole = text.rfind('\n').map_or(0, |i| i + 1);
                text.truncate(whole);
            }
            if t.lossy {
                problem(s, path, 0, "holds bytes that are not UTF-8".into());
            }
            Some(text)
        }
        Err(FsError::NotFound { .. }) => None,
        Err(e) => {
            problem(s, path, 0, format!("not read: {e}"));
            None
        }
    }
}

/// Reads shadow and keeps only each account's state. The file's text
/// (hashes included) lives in this function alone and is dropped here;
/// problems name lines, never their content.
fn read_shadow(
    fs: &HostFs,
    max: u64,
    s: &mut AccountsSection,
) -> Option<BTreeMap<String, ShadowState>> {
    let text = read_text(fs, SHADOW, max, s)?;
    let (states, bad) = parse::shadow_states(&text);
    drop(text);
    for (line, why) in bad {
        problem(s, SHADOW, line, why);
    }
    Some(states.into_iter().map(|st| (st.name.clone(), st)).collect())
}

/// The section from the files under `fs`, judged on day `today` (days
/// since 1970-01-01). Fails only when /etc/passwd cannot be read at all.
pub fn collect_accounts(
    fs: &HostFs,
    today: i64,
    max: u64,
) -> Result<AccountsSection, SectionError> {
    let mut s = AccountsSection::default();
    let Some(passwd_text) = read_text(fs, PASSWD, max, &mut s) else {
        return Err(match s.problems.pop() {
            Some(p) => SectionError::Failed(p.message),
            None => SectionError::Unsupported(format!("{PASSWD} not found under the root")),
        });
    };
    let (accounts, bad) = passwd::parse(&passwd_text);
    for (line, why) in bad {
        problem(&mut s, PASSWD, line, why);
    }
    let (groups, bad) = match read_text(fs, GROUP, max, &mut s) {
        Some(t) => parse::parse_group(&t),
        None => (Vec::new(), Vec::new()),
    };
    for (line, why) in bad {
        problem(&mut s, GROUP, line, why);
    }
    let shadow = read_shadow(fs, max, &mut s);
    s.shadow_read = shadow.is_some();

    let group_name: BTreeMap<u32, &str> = groups
        .iter()
        .rev()
        .map(|g| (g.gid, g.name.as_str()))
        .collect();
    let mut member_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for g in &groups {
        for m in &g.members {
            member_of
                .entry(m.as_str())
                .or_default()
                .push(g.name.clone());
        }
    }

    for a in &accounts {
        let primary_group = group_name.get(&a.gid).copied().unwrap_or("").to_string();
        let mut supplementary = member_of.remove(a.name.as_str()).unwrap_or_default();
        supplementary.sort();
        supplementary.dedup();
        let mut admin_groups: Vec<String> = ADMIN_GROUPS
            .iter()
            .filter(|g| primary_group == **g || supplementary.iter().any(|s| s == *g))
            .map(|g| g.to_string())
            .collect();
        admin_groups.sort();
        let st = shadow.as_ref().and_then(|m| m.get(&a.name));
        let password_state = match (a.passwd_state, st) {
            // A password in passwd itself (or none) is what login uses.
            (Some(p), _) => p,
            (None, Some(st)) => st.password_state,
            (None, None) => "unknown",
        };
        let expires_day = st.and_then(|st| st.expires_day);
        let pw_day = st.and_then(|st| st.password_expires_day);
        s.users.push(LocalUser {
            name: a.name.clone(),
            uid: a.uid,
            gid: a.gid,
            primary_group,
            home: a.home.clone(),
            shell: a.shell.clone(),
            login_shell: parse::is_login_shell(&a.shell),
            password_state: password_state.into(),
            expires: expires_day.map(parse::date_of_day).unwrap_or_default(),
            expired: expires_day.is_some_and(|d| d <= today),
            groups: supplementary,
            extra_root: a.uid == 0 && a.name != "root",
            admin_groups,
            password_expires: match pw_day {
                Some(0) => "now".into(),
                Some(d) => parse::date_of_day(d),
                None => String::new(),
            },
            password_expired: pw_day.is_some_and(|d| d <= today),
        });
    }
    s.users
        .sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
    s.groups = groups
        .into_iter()
        .map(|g| LocalGroup {
            admin: ADMIN_GROUPS.contains(&g.name.as_str()),
            name: g.name,
            gid: g.gid,
            members: g.members,
        })
        .collect();
    s.groups
        .sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
    Ok(s)
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
