//! sshd_config (and `sshd -T` output, which is the same syntax in lower
//! case): the settings that decide which keys log in.
//!
//! [`parse_file`] is one file's lines; [`evaluate`] walks the main file and
//! its `Include`s in sshd's order, with the reading left to a callback, and
//! applies sshd's rules: keywords are case-insensitive, the first value of a
//! keyword wins, and settings inside a `Match` block are not global.

use driftwatch_common::proto::{SshdMatchBlock, SshdProblem, SshdSetting, SshdSettings};

/// sshd's own include depth limit.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Bound on files read in all, so a file that includes itself twice per
/// level cannot make 2^16 reads within the depth limit.
pub const MAX_CONFIG_FILES: usize = 256;
/// Relative Include paths are under this directory.
pub const CONFIG_DIR: &str = "/etc/ssh";
pub const DEFAULT_AUTHORIZED_KEYS_FILE: &str = ".ssh/authorized_keys .ssh/authorized_keys2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Setting {
        line: u32,
        /// As written.
        keyword: String,
        args: Vec<String>,
    },
    Include {
        line: u32,
        patterns: Vec<String>,
    },
    Match {
        line: u32,
        criteria: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFile {
    pub entries: Vec<Entry>,
    /// (1-based line, reason)
    pub problems: Vec<(u32, String)>,
}

/// Parses one file's text.
pub fn parse_file(text: &str) -> ParsedFile {
    let mut out = ParsedFile::default();
    for (i, raw) in text.lines().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let (keyword, rest) = split_keyword(raw.trim_end_matches('\r'));
        if keyword.is_empty() || keyword.starts_with('#') {
            continue;
        }
        let args = match split_args(rest) {
            Ok(a) => a,
            Err(e) => {
                out.problems.push((line, format!("{keyword}: {e}")));
                continue;
            }
        };
        if args.is_empty() {
            out.problems
                .push((line, format!("no argument after keyword {keyword:?}")));
            continue;
        }
        let entry = match keyword.to_ascii_lowercase().as_str() {
            "include" => Entry::Include {
                line,
                patterns: args,
            },
            "match" => Entry::Match {
                line,
                criteria: args.join(" "),
            },
            _ => Entry::Setting {
                line,
                keyword: keyword.to_string(),
                args,
            },
        };
        out.entries.push(entry);
    }
    out
}

/// The keyword ends at whitespace or at one `=` (which may have whitespace
/// around it): `Port 22`, `Port=22`, `Port = 22`.
fn split_keyword(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    let end = s.find([' ', '\t', '=']).unwrap_or(s.len());
    let (kw, mut rest) = s.split_at(end);
    rest = rest.trim_start_matches([' ', '\t']);
    if let Some(r) = rest.strip_prefix('=') {
        rest = r;
    }
    (kw, rest)
}

/// sshd's argument splitting: whitespace-separated, single or double
/// quotes group, a backslash escapes a quote, a backslash or (unquoted) a
/// space, and a `#` that starts an argument ends the line.
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(out),
            _ => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        chars.next();
                    }
                    _ => arg.push('\\'),
                },
                ' ' | '\t' if quote.is_none() => break,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                c if Some(c) == quote => quote = None,
                c => arg.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push(arg);
    }
}

/// One file a loader found for an Include pattern.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: String,
    /// The text, or why it could not be read.
    pub text: Result<String, String>,
    /// Read, but with a caveat worth reporting (truncated, not UTF-8).
    pub note: Option<String>,
}

/// Makes an Include pattern absolute (relative ones are under /etc/ssh).
pub fn include_path(pattern: &str) -> String {
    if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("{CONFIG_DIR}/{pattern}")
    }
}

/// Walks `main` and, through `load` (absolute pattern -> files, sorted),
/// everything it includes; then fills sshd's defaults.
pub fn evaluate(
    main_path: &str,
    main_text: &str,
    load: &mut dyn FnMut(&str) -> Vec<Loaded>,
) -> SshdSettings {
    let mut s = SshdSettings::default();
    walk(&mut s, main_path, main_text, None, 0, load);
    apply_match_all(&mut s);
    fill_defaults(&mut s);
    s
}

fn walk(
    s: &mut SshdSettings,
    path: &str,
    text: &str,
    inherited: Option<usize>,
    depth: usize,
    load: &mut dyn FnMut(&str) -> Vec<Loaded>,
) {
    s.config_files.push(path.to_string());
    let parsed = parse_file(text);
    for (line, reason) in parsed.problems {
        s.problems.push(problem(path, line, reason));
    }
    let mut current = inherited;
    for e in parsed.entries {
        match e {
            // Inside an included file that a Match block includes, `Match
            // all` goes back to that block's context.
            Entry::Match { criteria, .. }
                if inherited.is_some() && criteria.eq_ignore_ascii_case("all") =>
            {
                current = inherited;
            }
            // Elsewhere `Match all` is a block like any other, not a return to
            // the global section: what follows is applied when sshd re-reads
            // the config for a connection, so it overrides a global value
            // set earlier (`sshd -T -C` shows it; the oracle tests check).
            Entry::Match { line, criteria } => {
                s.match_blocks.push(SshdMatchBlock {
                    criteria,
                    file: path.into(),
                    line,
                    settings: Vec::new(),
                });
                current = Some(s.match_blocks.len() - 1);
            }
            Entry::Include { line, patterns } => {
                for p in patterns {
                    let abs = include_path(&p);
                    s.includes.push(setting("Include", abs.clone(), path, line));
                    if depth + 1 > MAX_INCLUDE_DEPTH {
                        s.problems.push(problem(
                            path,
                            line,
                            format!("Include {abs}: nested more than {MAX_INCLUDE_DEPTH} deep (a loop?); not followed"),
                        ));
                        continue;
                    }
                    // Checked before loading, too: past the bound, every
                    // further Include line would still read (and discard)
                    // its files, and a self-including file with many
                    // Include lines made that tens of thousands of reads
                    // (found by fuzz_sshd_config running slowly).
                    if s.config_files.len() >= MAX_CONFIG_FILES {
                        s.problems.push(problem(
                            path,
                            line,
                            format!("more than {MAX_CONFIG_FILES} config files included; Include {abs} not read"),
                        ));
                        continue;
                    }
                    for f in load(&abs) {
                        if s.config_files.len() >= MAX_CONFIG_FILES {
                            s.problems.push(problem(
                                path,
                                line,
                                format!("more than {MAX_CONFIG_FILES} config files included; {} not read", f.path),
                            ));
                            continue;
                        }
                        if let Some(n) = f.note {
                            s.problems.push(problem(&f.path, 0, n));
                        }
                        match f.text {
                            Ok(t) => walk(s, &f.path, &t, current, depth + 1, load),
                            Err(why) => s.problems.push(problem(&f.path, 0, why)),
                        }
                    }
                }
            }
            Entry::Setting {
                line,
                keyword,
                args,
            } => {
                let value = args.join(" ");
                if let Some(i) = current {
                    s.match_blocks[i]
                        .settings
                        .push(setting(&keyword, value, path, line));
                } else {
                    apply_global(s, &keyword, &args, path, line);
                }
            }
        }
    }
}

fn setting(keyword: &str, value: String, file: &str, line: u32) -> SshdSetting {
    SshdSetting {
        keyword: keyword.into(),
        value,
        file: file.into(),
        line,
    }
}

fn problem(file: &str, line: u32, reason: String) -> SshdProblem {
    SshdProblem {
        file: file.into(),
        line,
        reason,
    }
}

/// Keeps the first global value of the keywords this section reports.
/// A `Match all` block applies to every connection and, being read when
/// sshd evaluates Match blocks, overrides a global value set before it
/// (first value wins among the blocks themselves): the global view shows
/// what is in force for a connection no other block matches. The blocks
/// stay listed, in order, for per-user answers.
fn apply_match_all(s: &mut SshdSettings) {
    let mut seen = std::collections::HashSet::new();
    let overrides: Vec<SshdSetting> = s
        .match_blocks
        .iter()
        .filter(|b| b.criteria.eq_ignore_ascii_case("all"))
        .flat_map(|b| b.settings.iter())
        .filter(|x| seen.insert(x.keyword.to_ascii_lowercase()))
        .cloned()
        .collect();
    for x in overrides {
        let args: Vec<String> = x.value.split(' ').map(str::to_string).collect();
        let lower = x.keyword.to_ascii_lowercase();
        match lower.as_str() {
            "authorizedkeysfile" => s.authorized_keys_file = None,
            "authorizedkeyscommand" => s.authorized_keys_command = None,
            "authorizedkeyscommanduser" => s.authorized_keys_command_user = None,
            "trustedusercakeys" => s.trusted_user_ca_keys = None,
            "passwordauthentication" => s.password_authentication = None,
            "permitrootlogin" => s.permit_root_login = None,
            "pubkeyauthentication" => s.pubkey_authentication = None,
            _ => continue,
        }
        apply_global(s, &x.keyword, &args, &x.file, x.line);
    }
}

fn apply_global(s: &mut SshdSettings, keyword: &str, args: &[String], file: &str, line: u32) {
    let lower = keyword.to_ascii_lowercase();
    let (slot, name, fold) = match lower.as_str() {
        "authorizedkeysfile" => (&mut s.authorized_keys_file, "AuthorizedKeysFile", false),
        "authorizedkeyscommand" => (
            &mut s.authorized_keys_command,
            "AuthorizedKeysCommand",
            false,
        ),
        "authorizedkeyscommanduser" => (
            &mut s.authorized_keys_command_user,
            "AuthorizedKeysCommandUser",
            false,
        ),
        "trustedusercakeys" => (&mut s.trusted_user_ca_keys, "TrustedUserCAKeys", false),
        "passwordauthentication" => (
            &mut s.password_authentication,
            "PasswordAuthentication",
            true,
        ),
        "permitrootlogin" => (&mut s.permit_root_login, "PermitRootLogin", true),
        "pubkeyauthentication" => (&mut s.pubkey_authentication, "PubkeyAuthentication", true),
        _ => return,
    };
    if slot.is_some() {
        return;
    }
    let mut value = args.join(" ");
    if fold {
        value = value.to_ascii_lowercase();
    }
    *slot = Some(setting(name, value, file, line));
    if lower == "authorizedkeysfile" {
        s.authorized_keys_patterns = patterns_of(args);
    }
}

fn patterns_of(args: &[String]) -> Vec<String> {
    if args.len() == 1 && args[0].eq_ignore_ascii_case("none") {
        Vec::new()
    } else {
        args.to_vec()
    }
}

/// sshd's built-in defaults (OpenSSH 7.0+) for what was not set globally.
fn fill_defaults(s: &mut SshdSettings) {
    let default = |k: &str, v: &str| {
        Some(SshdSetting {
            keyword: k.into(),
            value: v.into(),
            file: String::new(),
            line: 0,
        })
    };
    if s.authorized_keys_file.is_none() {
        s.authorized_keys_file = default("AuthorizedKeysFile", DEFAULT_AUTHORIZED_KEYS_FILE);
        s.authorized_keys_patterns = DEFAULT_AUTHORIZED_KEYS_FILE
            .split(' ')
            .map(String::from)
            .collect();
    }
    if s.password_authentication.is_none() {
        s.password_authentication = default("PasswordAuthentication", "yes");
    }
    if s.permit_root_login.is_none() {
        s.permit_root_login = default("PermitRootLogin", "prohibit-password");
    }
    if s.pubkey_authentication.is_none() {
        s.pubkey_authentication = default("PubkeyAuthentication", "yes");
    }
}

/// Could a `Match` block with these criteria apply to `user`? Only the
/// `User` criterion is judged (sshd's pattern lists: `*`, `?`, `!` negation,
/// commas); blocks that also or only test groups, addresses or hosts are
/// assumed to apply, so no key file is missed.
pub fn match_may_apply_to(criteria: &str, user: &str) -> bool {
    let words: Vec<&str> = criteria.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let kw = words[i].to_ascii_lowercase();
        if kw == "all" || kw == "canonical" || kw == "final" {
            i += 1;
            continue;
        }
        let Some(list) = words.get(i + 1) else {
            return true;
        };
        if kw == "user" && !pattern_list_matches(list, user) {
            return false;
        }
        i += 2;
    }
    true
}

fn pattern_list_matches(list: &str, name: &str) -> bool {
    let mut any = false;
    for p in list.split(',') {
        match p.strip_prefix('!') {
            Some(neg) if wildcard(neg, name) => return false,
            Some(_) => {}
            None => any |= wildcard(p, name),
        }
    }
    any
}

/// `*` and `?` wildcards, as sshd's match_pattern.
fn wildcard(p: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Expands an AuthorizedKeysFile pattern for one user, as sshd does:
/// `%h` home, `%u` user name, `%U` numeric uid, `%%` a percent sign; a
/// relative result is relative to the home.
pub fn expand_authorized_keys(
    pattern: &str,
    user: &str,
    uid: u32,
    home: &str,
) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(home),
            Some('u') => out.push_str(user),
            Some('U') => out.push_str(&uid.to_string()),
            Some('%') => out.push('%'),
            Some(o) => return Err(format!("unknown token %{o} in {pattern:?}")),
            None => return Err(format!("lone % at the end of {pattern:?}")),
        }
    }
    if out.starts_with('/') {
        Ok(out)
    } else {
        Ok(format!("{}/{}", home.trim_end_matches('/'), out))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod oracle;
