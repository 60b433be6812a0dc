//! `/etc/group` and the account state in `/etc/shadow`: pure parsers.
//!
//! Shadow is read for one purpose, the state of each account (locked, no
//! password, password set, expiry). [`shadow_states`] turns each line into
//! a [`ShadowState`] on the spot: nothing it returns, problems included,
//! holds any part of the password field, so a hash cannot leave the
//! function that read the file.

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub use super::colon_file::LineProblem;

/// Parses group text. NIS compat lines (`+`, `-`) carry no local group.
pub fn parse_group(text: &str) -> (Vec<Group>, Vec<LineProblem>) {
    let mut groups = Vec::new();
    let (records, mut problems) = super::colon_file::records(text, 4);
    for (line_no, f) in records {
        if f[0].is_empty() {
            problems.push((line_no, "empty group name".into()));
            continue;
        }
        let Ok(gid) = f[2].parse() else {
            problems.push((line_no, format!("gid {:?} is not a number", f[2])));
            continue;
        };
        let mut members: Vec<String> = f[3]
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        members.sort();
        members.dedup();
        groups.push(Group {
            name: f[0].to_string(),
            gid,
            members,
        });
    }
    // Field-count problems came first: report them all in line order.
    problems.sort_by_key(|p| p.0);
    (groups, problems)
}

/// What shadow says of one account, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowState {
    pub name: String,
    /// "set", "locked", "empty" or "disabled" (see accounts.proto).
    pub password_state: &'static str,
    /// Account expiry, days since 1970-01-01.
    pub expires_day: Option<i64>,
    /// When the password must be changed, days since 1970-01-01: the last
    /// change plus the maximum age, or 0 when a change is forced.
    pub password_expires_day: Option<i64>,
}

/// The state of a password field, read without keeping it.
pub fn password_state(field: &str) -> &'static str {
    if field.is_empty() {
        "empty"
    } else if field.starts_with('!') {
        // `!`, `!!` (never set on RHEL), `!<hash>` (usermod -L).
        "locked"
    } else if field.starts_with('$') || is_des_hash(field) {
        "set"
    } else {
        // `*`, `x`, anything crypt() cannot produce: no password matches.
        "disabled"
    }
}

fn is_des_hash(field: &str) -> bool {
    field.len() == 13
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

fn day(field: &str) -> Result<Option<i64>, ()> {
    if field.is_empty() {
        return Ok(None);
    }
    field.parse::<i64>().map(Some).map_err(|_| ())
}

/// Parses shadow text into account states. A malformed line is reported
/// by number and field position only: its content may be a hash.
pub fn shadow_states(text: &str) -> (Vec<ShadowState>, Vec<LineProblem>) {
    let mut out = Vec::new();
    let (records, mut problems) = super::colon_file::records(text, 9);
    for (line_no, f) in records {
        let (Ok(last_change), Ok(max_age), Ok(expires_day)) = (day(f[2]), day(f[4]), day(f[7]))
        else {
            problems.push((
                line_no,
                "last change, maximum age or expiry is not a number of days".into(),
            ));
            continue;
        };
        // 99999 and more is "never" as shadow-utils writes it.
        let password_expires_day = match (last_change, max_age) {
            (Some(0), _) => Some(0),
            (Some(c), Some(m)) if m < 99_999 => Some(c + m),
            _ => None,
        };
        out.push(ShadowState {
            name: f[0].to_string(),
            password_state: password_state(f[1]),
            expires_day,
            password_expires_day,
        });
    }
    // Field-count problems came first: report them all in line order.
    problems.sort_by_key(|p| p.0);
    (out, problems)
}

/// Whether a login shell lets a person in: not one of the shells that
/// exist to refuse (nologin, false) or to run one command (sync,
/// shutdown, halt). An empty shell is /bin/sh to login(1).
pub fn is_login_shell(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    !matches!(base, "nologin" | "false" | "sync" | "shutdown" | "halt")
}

/// The admin groups: whose members sudo's shipped configurations
/// (Debian's `%sudo`, RHEL's `%wheel`, Ubuntu's old `%admin`) let become
/// root.
pub const ADMIN_GROUPS: &[&str] = &["sudo", "wheel", "admin"];

/// YYYY-MM-DD of a day number (days since 1970-01-01, proleptic
/// Gregorian), by the civil-from-days arithmetic on 400-year eras.
pub fn date_of_day(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests;
