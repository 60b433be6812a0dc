//! sudoers(5): one file's text into typed entries, and syntax errors with
//! their line numbers. Pure; includes are the collector's to follow and
//! aliases are resolved across all files by [`expand`].
//!
//! What is checked is the grammar (what `visudo -c` calls a syntax error,
//! an empty name, an unterminated regular expression, a bad TIMEOUT, an
//! alias defined twice); what is not is whether a Defaults name is one
//! this host's sudo knows, since the set differs between sudo versions
//! (`oracle.rs` lists where this deliberately differs from visudo).

mod cursor;
pub mod expand;

use cursor::Cursor;

/// One entry of a user, host or run-as list: `alice`, `%sudo`, `!bob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub negated: bool,
    pub name: String,
}

/// One command of a rule with what applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmndSpec {
    /// None: inherited from the previous command of the list (or root).
    pub runas_users: Option<Vec<Member>>,
    pub runas_groups: Option<Vec<Member>>,
    pub tags: Vec<String>,
    /// `CWD=/tmp`, `TIMEOUT=5m`, as written.
    pub options: Vec<String>,
    /// `ALL`, an alias name, `/usr/bin/systemctl restart nginx`.
    pub cmnd: Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AliasKind {
    User,
    Runas,
    Host,
    Cmnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Include {
        line: usize,
        path: String,
        dir: bool,
    },
    Defaults {
        line: usize,
        /// "", "@", ":", "!", ">": what the binding list names.
        binding: &'static str,
        targets: Vec<Member>,
        /// (`!authenticate`, ""), (`secure_path`, "/usr/bin"),
        /// (`env_keep+`, "A B") for `+=`.
        settings: Vec<(String, String)>,
    },
    Alias {
        line: usize,
        kind: AliasKind,
        name: String,
        members: Vec<Member>,
    },
    UserSpec {
        line: usize,
        users: Vec<Member>,
        /// (hosts, commands) per `host = commands` part.
        parts: Vec<(Vec<Member>, Vec<CmndSpec>)>,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    pub entries: Vec<Entry>,
    /// Syntax errors: (1-based line, why). Each costs its whole entry.
    pub errors: Vec<(usize, String)>,
}

/// The tags a command may carry (`NOPASSWD:`).
const TAGS: &[&str] = &[
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];

/// The per-command options Debian's sudo accepts (AppArmor and Solaris
/// privileges are not built in: its visudo calls them syntax errors).
const OPTIONS: &[&str] = &[
    "ROLE",
    "TYPE",
    "CWD",
    "CHROOT",
    "TIMEOUT",
    "NOTBEFORE",
    "NOTAFTER",
];

/// Joins continued lines (a trailing `\`), keeping each logical line's
/// first physical line number. A continuation with nothing after it is
/// an error at its line.
/// A line number with text: a logical line, or an error at a line.
type Numbered = (usize, String);

fn logical_lines(text: &str) -> (Vec<Numbered>, Option<Numbered>) {
    let mut out: Vec<Numbered> = Vec::new();
    let mut pending: Option<Numbered> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let is_comment = acc.is_empty() && {
            let t = line.trim_start();
            t.starts_with('#') && !t.starts_with("#include")
        };
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if !is_comment && trailing % 2 == 1 {
            acc.push_str(&line[..line.len() - 1]);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    let dangling =
        pending.map(|(start, _)| (start, "line continuation with nothing after it".into()));
    (out, dangling)
}

/// Parses one sudoers file's text.
pub fn parse(text: &str) -> ParsedFile {
    let mut p = ParsedFile::default();
    let (lines, dangling) = logical_lines(text);
    for (n, line) in lines {
        match parse_line(&line, n) {
            Ok(entries) => p.entries.extend(entries),
            Err(why) => p.errors.push((n, why)),
        }
    }
    p.errors.extend(dangling);
    p
}

fn parse_line(line: &str, n: usize) -> Result<Vec<Entry>, String> {
    let t = line.trim_start();
    for (word, dir) in [
        ("@includedir", true),
        ("#includedir", true),
        ("@include", false),
        ("#include", false),
    ] {
        if let Some(rest) = t.strip_prefix(word)
            && rest.starts_with([' ', '\t'])
        {
            let mut c = Cursor::new(rest);
            c.skip_ws();
            let path = c.word(false)?;
            if path.is_empty() {
                return Err(format!("{word} names no file"));
            }
            c.expect_end()?;
            return Ok(vec![Entry::Include { line: n, path, dir }]);
        }
    }
    let mut c = Cursor::new(line);
    c.skip_ws();
    if c.at_end() {
        return Ok(Vec::new());
    }
    if c.eat_keyword("Defaults") {
        return defaults(&mut c, n).map(|e| vec![e]);
    }
    for (word, kind) in [
        ("User_Alias", AliasKind::User),
        ("Runas_Alias", AliasKind::Runas),
        ("Host_Alias", AliasKind::Host),
        ("Cmnd_Alias", AliasKind::Cmnd),
        ("Cmd_Alias", AliasKind::Cmnd),
    ] {
        if c.eat_keyword(word) {
            return alias(&mut c, n, kind);
        }
    }
    user_spec(&mut c, n).map(|e| vec![e])
}

fn defaults(c: &mut Cursor, n: usize) -> Result<Entry, String> {
    let (binding, targets) = match c.peek() {
        Some(b @ ('@' | ':' | '>')) => {
            c.bump();
            let b = match b {
                '@' => "@",
                ':' => ":",
                _ => ">",
            };
            (b, c.list()?)
        }
        Some('!') => {
            c.bump();
            // Commands without arguments: sudo does not take them here.
            let cmnds = c.sep_by_comma(|c| {
                c.skip_ws();
                let name = c.command_word()?;
                Ok(Member {
                    negated: false,
                    name,
                })
            })?;
            ("!", cmnds)
        }
        _ => ("", Vec::new()),
    };
    if !c.skip_ws() && !binding.is_empty() {
        return Err("syntax error: Defaults binding not followed by a setting".into());
    }
    let mut settings = Vec::new();
    loop {
        c.skip_ws();
        let mut name = String::new();
        while c.eat('!') {
            name.push('!');
        }
        let word = c.ident();
        if word.is_empty() {
            return Err("syntax error: Defaults without a setting".into());
        }
        name.push_str(&word);
        c.skip_ws();
        let op = if c.eat_str("+=") {
            "+"
        } else if c.eat_str("-=") {
            "-"
        } else if c.eat('=') {
            ""
        } else {
            settings.push((name, String::new()));
            if c.eat(',') {
                continue;
            }
            break;
        };
        c.skip_ws();
        let value = c.word(true)?;
        settings.push((format!("{name}{op}"), value));
        c.skip_ws();
        if !c.eat(',') {
            break;
        }
    }
    c.expect_end()?;
    Ok(Entry::Defaults {
        line: n,
        binding,
        targets,
        settings,
    })
}

fn is_alias_name(s: &str) -> bool {
    let mut ch = s.chars();
    ch.next().is_some_and(|f| f.is_ascii_uppercase())
        && ch.all(|x| x.is_ascii_uppercase() || x.is_ascii_digit() || x == '_')
}

fn alias(c: &mut Cursor, n: usize, kind: AliasKind) -> Result<Vec<Entry>, String> {
    // Several definitions may share a line (`A = x : B = y`).
    let mut defs = Vec::new();
    loop {
        c.skip_ws();
        let name = c.ident();
        if name == "ALL" {
            return Err("syntax error, reserved word ALL used as an alias name".into());
        }
        if !is_alias_name(&name) {
            return Err(format!(
                "syntax error: alias name {name:?} must be upper case letters, digits and _"
            ));
        }
        c.skip_ws();
        if !c.eat('=') {
            return Err(format!("syntax error: '=' expected after alias {name}"));
        }
        let members = if kind == AliasKind::Cmnd {
            c.sep_by_comma(|c| cmnd(c).map(|(m, _)| m))?
        } else {
            c.list()?
        };
        defs.push((name, members));
        c.skip_ws();
        if !c.eat(':') {
            break;
        }
    }
    c.expect_end()?;
    Ok(defs
        .into_iter()
        .map(|(name, members)| Entry::Alias {
            line: n,
            kind,
            name,
            members,
        })
        .collect())
}

fn user_spec(c: &mut Cursor, n: usize) -> Result<Entry, String> {
    let users = c.list()?;
    if users.is_empty() {
        return Err("syntax error: a rule names no user".into());
    }
    let mut parts = Vec::new();
    loop {
        c.skip_ws();
        let hosts = c.list()?;
        if hosts.is_empty() {
            return Err("syntax error: a rule names no host".into());
        }
        c.skip_ws();
        if !c.eat('=') {
            return Err("syntax error: '=' expected after the host list".into());
        }
        let mut cmnds: Vec<CmndSpec> = Vec::new();
        loop {
            cmnds.push(cmnd_spec(c)?);
            c.skip_ws();
            if !c.eat(',') {
                break;
            }
        }
        parts.push((hosts, cmnds));
        c.skip_ws();
        if !c.eat(':') {
            break;
        }
    }
    c.expect_end()?;
    Ok(Entry::UserSpec {
        line: n,
        users,
        parts,
    })
}

fn cmnd_spec(c: &mut Cursor) -> Result<CmndSpec, String> {
    c.skip_ws();
    let (mut runas_users, mut runas_groups) = (None, None);
    if c.eat('(') {
        c.skip_ws();
        let users = if c.peek() == Some(':') || c.peek() == Some(')') {
            Vec::new()
        } else {
            c.list()?
        };
        c.skip_ws();
        let groups = if c.eat(':') {
            c.skip_ws();
            if c.peek() == Some(')') {
                Vec::new()
            } else {
                c.list()?
            }
        } else {
            Vec::new()
        };
        c.skip_ws();
        if !c.eat(')') {
            return Err("syntax error: ')' expected after the run-as list".into());
        }
        runas_users = Some(users);
        runas_groups = Some(groups);
    }
    let mut tags = Vec::new();
    let mut options = Vec::new();
    loop {
        c.skip_ws();
        let save = c.pos();
        let word = c.ident();
        if !word.is_empty() && TAGS.contains(&word.as_str()) && c.eat(':') {
            tags.push(word);
            continue;
        }
        if !word.is_empty()
            && c.peek() == Some('=')
            && word.chars().all(|x| x.is_ascii_uppercase() || x == '_')
        {
            if !OPTIONS.contains(&word.as_str()) {
                return Err(format!(
                    "syntax error: {word}= is not an option this sudo knows"
                ));
            }
            c.bump();
            if c.peek() == Some('"') {
                return Err(format!("syntax error: {word}= takes an unquoted value"));
            }
            let value = c.word(false)?;
            if value.is_empty() {
                return Err(format!("syntax error: {word}= without a value"));
            }
            if word == "TIMEOUT" && !valid_timeout(&value) {
                return Err(format!("invalid timeout value {value:?}"));
            }
            options.push(format!("{word}={value}"));
            continue;
        }
        c.set_pos(save);
        break;
    }
    let (cmnd, _) = cmnd(c)?;
    Ok(CmndSpec {
        runas_users,
        runas_groups,
        tags,
        options,
        cmnd,
    })
}

/// `45`, `30s`, `10m30s`, `7d4h10m30s` (any case).
fn valid_timeout(v: &str) -> bool {
    if v.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let mut order = "dhms".chars().peekable();
    let mut digits = 0;
    for ch in v.chars() {
        if ch.is_ascii_digit() {
            digits += 1;
            continue;
        }
        let unit = ch.to_ascii_lowercase();
        if digits == 0 {
            return false;
        }
        loop {
            match order.next() {
                Some(u) if u == unit => break,
                Some(_) => continue,
                None => return false,
            }
        }
        digits = 0;
    }
    digits == 0
}

const DIGESTS: &[(&str, usize)] = &[
    ("sha224", 28),
    ("sha256", 32),
    ("sha384", 48),
    ("sha512", 64),
];

/// A digest value: hex, or base64 with or without padding.
fn valid_digest(value: &str, bytes: usize) -> bool {
    let hex = value.len() == bytes * 2 && value.chars().all(|c| c.is_ascii_hexdigit());
    let b64_chars = value
        .trim_end_matches('=')
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    let unpadded = (bytes * 4).div_ceil(3);
    let padded = bytes.div_ceil(3) * 4;
    hex || (b64_chars && (value.len() == unpadded || value.len() == padded))
}

/// One command with its arguments; the bool says it carried digests.
fn cmnd(c: &mut Cursor) -> Result<(Member, bool), String> {
    c.skip_ws();
    let mut negated = false;
    while c.eat('!') {
        negated = !negated;
        c.skip_ws();
    }
    let mut digested = false;
    loop {
        let save = c.pos();
        let word = c.ident();
        if let Some(&(_, bytes)) = DIGESTS.iter().find(|(d, _)| *d == word)
            && c.eat(':')
        {
            let value = c.word(false)?;
            if !valid_digest(&value, bytes) {
                return Err(format!(
                    "syntax error: {word} digest {value:?} has the wrong length"
                ));
            }
            digested = true;
            c.skip_ws();
            if c.eat(',') {
                c.skip_ws();
                continue;
            }
            break;
        }
        c.set_pos(save);
        break;
    }
    let head = c.command_word()?;
    if head.is_empty() {
        return Err("syntax error: command expected".into());
    }
    let plain = head == "ALL" || is_alias_name(&head) || head == "list";
    if !plain && head != "sudoedit" && !head.starts_with('/') && !head.starts_with('^') {
        return Err(format!(
            "expected a fully-qualified path name, found {head:?}"
        ));
    }
    let mut name = head.clone();
    if !plain {
        let args = c.args()?;
        if !args.is_empty() {
            name.push(' ');
            name.push_str(&args);
        }
    }
    Ok((Member { negated, name }, digested))
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
