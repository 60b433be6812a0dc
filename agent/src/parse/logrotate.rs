//! logrotate configuration (`logrotate.conf`, `/etc/logrotate.d/*`).
//!
//! A file is a sequence of global options, `include` directives and stanzas
//! (`PATH… { directives }`). Stanzas start from the global options seen so
//! far in the file (or passed in from the including file), so the parser
//! takes the inherited policy and returns items in order; the collector
//! follows includes with the policy in force at that point.

use driftwatch_common::proto::{LogConfigIssue, RotationPolicy};

/// One thing found in a logrotate file, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `include PATH`: a file or a directory. `globals` is the policy in
    /// force there, which the included files start from.
    Include {
        path: String,
        line: u32,
        globals: RotationPolicy,
    },
    Rule(Rule),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub patterns: Vec<String>,
    pub line: u32,
    pub policy: RotationPolicy,
    /// Why logrotate skips this stanza (a bad directive in it); it then
    /// rotates nothing.
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub items: Vec<Item>,
    /// Global options at the end of the file.
    pub globals: RotationPolicy,
    pub issues: Vec<LogConfigIssue>,
}

impl Parsed {
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.items.iter().filter_map(|i| match i {
            Item::Rule(r) => Some(r),
            Item::Include { .. } => None,
        })
    }
}

const SCRIPTS: &[&str] = &[
    "prerotate",
    "postrotate",
    "firstaction",
    "lastaction",
    "preremove",
];

/// Parses one logrotate file whose stanzas inherit `inherited`, the way
/// logrotate 3.x reads it (config.c's state machine): several directives
/// may share a line (`/var/log/x.log { daily }`), a directive with a value
/// takes the rest of its line (so `{ rotate 5 }` is a bad count), a bad
/// value inside a stanza makes logrotate skip the whole stanza ("found
/// error in …, skipping"), and a bad global value, a stray `}` or a
/// path without its `{` make it stop reading the file there.
pub fn parse(text: &str, inherited: &RotationPolicy) -> Parsed {
    let mut p = Parser {
        out: Parsed {
            globals: inherited.clone(),
            ..Parsed::default()
        },
        block: None,
        skipping: None,
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let n = i as u32 + 1;
        match p.line(&lines, &mut i) {
            Ok(()) => {}
            Err(Abort(at, reason)) => {
                let _ = n;
                if let Some(rule) = p.block.take().or(p.skipping.take().map(|(r, _)| r)) {
                    p.skip(rule, format!("line {at}: {reason}"));
                }
                p.issue(
                    at,
                    format!("{reason}: logrotate stops reading this file here"),
                );
                return p.out;
            }
        }
        i += 1;
    }
    if let Some(rule) = p.block.take() {
        let line = rule.line;
        p.issue(
            line,
            "stanza is never closed: no `}` before the end of the file".into(),
        );
        p.out.items.push(Item::Rule(rule));
    }
    if let Some((rule, reason)) = p.skipping.take() {
        // logrotate drops a bad stanza only when it finds its `}`; at the
        // end of the file it keeps it (with the directives before the error).
        p.issue(
            rule.line,
            format!("{reason}; no `}}` follows, so logrotate keeps this stanza anyway"),
        );
        p.out.items.push(Item::Rule(rule));
    }
    p.out
}

/// logrotate stops reading the file (config.c's `goto error`).
struct Abort(u32, String);

struct Parser {
    out: Parsed,
    block: Option<Rule>,
    /// A stanza with a bad directive, skipped up to its `}`.
    skipping: Option<(Rule, String)>,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Parser {
    fn issue(&mut self, line: u32, reason: String) {
        self.out.issues.push(LogConfigIssue { line, reason });
    }

    fn skip(&mut self, mut rule: Rule, reason: String) {
        rule.skipped = Some(reason);
        self.out.items.push(Item::Rule(rule));
    }

    /// One physical line (`*i` moves on when a path list or a script spans
    /// several).
    fn line(&mut self, lines: &[&str], i: &mut usize) -> Result<(), Abort> {
        let n = *i as u32 + 1;
        let mut rest: &str = lines[*i];
        loop {
            rest = rest.trim_start_matches(is_blank);
            let Some(c) = rest.chars().next() else {
                return Ok(());
            };
            if self.skipping.is_some() {
                if let Some(after) = rest.strip_prefix('}') {
                    let (rule, reason) = self.skipping.take().unwrap_or_else(|| unreachable!());
                    self.skip(rule, reason);
                    return self.after_close(n, after);
                }
                let (word, after) = keyword(rest);
                if SCRIPTS.contains(&word) {
                    self.script(lines, i, word, false)?;
                }
                let _ = after;
                return Ok(());
            }
            if c == '#' {
                return Ok(());
            }
            if c.is_ascii_alphabetic() {
                let (word, after) = keyword(rest);
                if let Some(c) = after.chars().next()
                    && !c.is_whitespace()
                    && c != '='
                {
                    let e = format!("keyword `{word}` not properly separated (found `{c}`)");
                    self.raise(n, e)?;
                    return Ok(());
                }
                if SCRIPTS.contains(&word) {
                    match &mut self.block {
                        Some(rule) => rule.policy.scripts.push(word.to_string()),
                        None => self.issue(n, format!("`{word}` outside a stanza")),
                    }
                    return self.script(lines, i, word, true);
                }
                match self.directive(n, word, after) {
                    Ok(Some(left)) => {
                        rest = left;
                        continue;
                    }
                    Ok(None) => return Ok(()),
                    Err(Bad::Skip(e)) => return self.raise(n, e),
                    Err(Bad::Abort(e)) => return Err(Abort(n, e)),
                }
            }
            match c {
                '/' | '"' | '\'' | '~' => {
                    if self.block.is_some() {
                        return self.raise(n, "a log path inside a stanza".into());
                    }
                    rest = self.paths(lines, i, rest)?;
                }
                '}' => {
                    let Some(rule) = self.block.take() else {
                        return Err(Abort(n, "`}` without a stanza".into()));
                    };
                    self.out.items.push(Item::Rule(rule));
                    return self.after_close(n, &rest[1..]);
                }
                _ => {
                    return self.raise(
                        n,
                        format!(
                            "`{}`: lines must begin with a directive or a log path",
                            clip(rest)
                        ),
                    );
                }
            }
        }
    }

    fn after_close(&mut self, n: u32, after: &str) -> Result<(), Abort> {
        if !after.trim().is_empty() {
            // logrotate warns and ignores the rest of the line.
            self.issue(
                n,
                format!("unexpected text after `}}`: `{}`", clip(after.trim())),
            );
        }
        Ok(())
    }

    /// A bad directive: in a stanza, logrotate skips the stanza; outside
    /// one, it stops reading the file.
    fn raise(&mut self, n: u32, e: String) -> Result<(), Abort> {
        match self.block.take() {
            Some(rule) => {
                self.issue(n, format!("{e}: logrotate skips this whole stanza"));
                self.skipping = Some((rule, format!("line {n}: {e}")));
                Ok(())
            }
            None => Err(Abort(n, e)),
        }
    }

    /// A script body (shell, not config) up to `endscript`.
    fn script(
        &mut self,
        lines: &[&str],
        i: &mut usize,
        word: &str,
        _live: bool,
    ) -> Result<(), Abort> {
        let n = *i as u32 + 1;
        while *i + 1 < lines.len() {
            *i += 1;
            if keyword(lines[*i].trim_start()).0 == "endscript" {
                return Ok(());
            }
        }
        Err(Abort(n, format!("`{word}` script has no `endscript`")))
    }

    /// Log paths up to the `{` (across lines, skipping comment lines);
    /// returns what follows the `{` on its line.
    fn paths<'a>(
        &mut self,
        lines: &[&'a str],
        i: &mut usize,
        first: &'a str,
    ) -> Result<&'a str, Abort> {
        let line = *i as u32 + 1;
        let mut text = String::new();
        let mut cur = first;
        loop {
            if !cur.trim_start().starts_with('#') {
                if let Some(at) = cur.find(['{', '}']) {
                    if cur.as_bytes()[at] == b'}' {
                        return Err(Abort(
                            line,
                            format!("log path(s) without `{{`: `}}` at line {}", *i + 1),
                        ));
                    }
                    text.push_str(&cur[..at]);
                    let patterns = split_words(&text);
                    self.block = Some(Rule {
                        patterns,
                        line,
                        policy: self.out.globals.clone(),
                        skipped: None,
                    });
                    return Ok(&cur[at + 1..]);
                }
                text.push_str(cur);
                text.push(' ');
            }
            *i += 1;
            match lines.get(*i) {
                Some(l) => cur = l,
                None => {
                    *i -= 1;
                    return Err(Abort(line, "log path(s) with no `{ … }` stanza".into()));
                }
            }
        }
    }

    /// Applies one directive; `Ok(Some(rest))` when it takes no value and
    /// the line goes on, `Ok(None)` when it took the rest of the line.
    fn directive<'a>(
        &mut self,
        n: u32,
        word: &str,
        after: &'a str,
    ) -> Result<Option<&'a str>, Bad> {
        if FLAGS.contains(&word) {
            let policy = self.policy();
            flag(policy, word);
            return Ok(Some(after));
        }
        if !VALUED.contains(&word) {
            // logrotate: "unknown option … -- ignoring line".
            self.issue(
                n,
                format!("unknown directive `{word}` (logrotate ignores the line)"),
            );
            return Ok(None);
        }
        let value = after.trim_start_matches(is_blank);
        let value = value.strip_prefix('=').unwrap_or(value).trim();
        if word == "include" {
            if self.block.is_some() {
                self.issue(n, "`include` inside a stanza is not followed".into());
                return Ok(None);
            }
            if value.is_empty() {
                return Err(Bad::Abort("`include` without a path".into()));
            }
            self.out.items.push(Item::Include {
                path: value.to_string(),
                line: n,
                globals: self.out.globals.clone(),
            });
            return Ok(None);
        }
        let policy = self.policy();
        valued(policy, word, value)?;
        Ok(None)
    }

    fn policy(&mut self) -> &mut RotationPolicy {
        match &mut self.block {
            Some(r) => &mut r.policy,
            None => &mut self.out.globals,
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// logrotate's keyword: the leading run of letters.
fn keyword(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Words of a line, honouring double and single quotes around paths.
fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                has = true;
            }
            None if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            None => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Directives without a value: the line may go on after them.
const FLAGS: &[&str] = &[
    "compress",
    "nocompress",
    "delaycompress",
    "nodelaycompress",
    "shred",
    "noshred",
    "allowhardlink",
    "noallowhardlink",
    "sharedscripts",
    "nosharedscripts",
    "copytruncate",
    "nocopytruncate",
    "renamecopy",
    "norenamecopy",
    "copy",
    "nocopy",
    "ifempty",
    "notifempty",
    "dateext",
    "nodateext",
    "dateyesterday",
    "nodateyesterday",
    "datehourago",
    "nodatehourago",
    "noolddir",
    "mailfirst",
    "maillast",
    "nocreateolddir",
    "nocreate",
    "hourly",
    "daily",
    "yearly",
    "nomail",
    "missingok",
    "nomissingok",
    "ignoreduplicates",
    "errors",
];

/// Directives that take the rest of their line as the value.
const VALUED: &[&str] = &[
    "include",
    "rotate",
    "size",
    "maxsize",
    "minsize",
    "maxage",
    "minage",
    "start",
    "shredcycles",
    "minutes",
    "weekly",
    "monthly",
    "create",
    "createolddir",
    "su",
    "olddir",
    "dateformat",
    "compressext",
    "compresscmd",
    "uncompresscmd",
    "compressoptions",
    "extension",
    "addextension",
    "mail",
    "tabooext",
    "taboopat",
];

/// Why a directive is bad: logrotate skips the stanza, or (weekly and
/// monthly arguments) stops reading the file.
enum Bad {
    Skip(String),
    Abort(String),
}

fn flag(p: &mut RotationPolicy, key: &str) {
    match key {
        "daily" | "yearly" | "hourly" => p.frequency = key.to_string(),
        "compress" => p.compress = true,
        "nocompress" => p.compress = false,
        "delaycompress" => p.delaycompress = true,
        "nodelaycompress" => p.delaycompress = false,
        "missingok" => p.missingok = true,
        "nomissingok" => p.missingok = false,
        "copytruncate" => p.copytruncate = true,
        "nocopytruncate" => p.copytruncate = false,
        "notifempty" => p.notifempty = true,
        "ifempty" => p.notifempty = false,
        "dateext" => p.dateext = true,
        "nodateext" => p.dateext = false,
        "sharedscripts" => p.sharedscripts = true,
        "nosharedscripts" => p.sharedscripts = false,
        "nocreate" => p.create.clear(),
        "noolddir" => p.olddir.clear(),
        "ignoreduplicates" => p.ignoreduplicates = true,
        _ => {}
    }
}

/// C's strtoul(…, 0) on the whole text: decimal, 0x hex or 0 octal.
fn c_number(v: &str) -> Option<i64> {
    let (neg, d) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if d.len() > 1 && d.starts_with('0') {
        i64::from_str_radix(&d[1..], 8).ok()?
    } else if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) {
        d.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

/// Applies a directive with its value (the rest of the line, trimmed).
fn valued(p: &mut RotationPolicy, key: &str, v: &str) -> Result<(), Bad> {
    let takes_line = matches!(
        key,
        "weekly" | "monthly" | "create" | "createolddir" | "su" | "compressoptions"
    );
    if v.is_empty() && !takes_line {
        return Err(Bad::Skip(format!("`{key}` needs a value")));
    }
    let count = |what: &str| -> Result<u32, Bad> {
        c_number(v)
            .filter(|n| *n >= 0)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Bad::Skip(format!("bad {what} `{v}`")))
    };
    match key {
        "weekly" | "monthly" => {
            let max = if key == "weekly" { 7 } else { 31 };
            if !v.is_empty() && !v.parse::<u32>().is_ok_and(|d| d <= max) {
                return Err(Bad::Abort(format!("bad {key} directive `{v}`")));
            }
            p.frequency = key.to_string();
        }
        "rotate" => {
            p.rotate = Some(match c_number(v) {
                // -1: keep forever.
                Some(-1) => u32::MAX,
                Some(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
                _ => return Err(Bad::Skip(format!("bad rotation count `{v}`"))),
            });
        }
        "size" | "maxsize" | "minsize" => {
            let n = parse_size(v).map_err(Bad::Skip)?;
            match key {
                "size" => p.size_bytes = Some(n),
                "maxsize" => p.maxsize_bytes = Some(n),
                _ => p.minsize_bytes = Some(n),
            }
        }
        "maxage" => p.maxage_days = Some(count("maximum age")?),
        "minage" | "start" | "shredcycles" | "minutes" => {
            count(key)?;
        }
        "create" => {
            p.create = if v.is_empty() {
                "default".into()
            } else {
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            }
        }
        "su" => {
            let w: Vec<&str> = v.split_whitespace().collect();
            match w.len() {
                0 => return Err(Bad::Skip("`su` needs a user and a group".into())),
                1 => return Err(Bad::Skip("no group for `su`".into())),
                2 => p.su = w.join(" "),
                _ => return Err(Bad::Skip("extra arguments for `su`".into())),
            }
        }
        "olddir" => p.olddir = v.to_string(),
        "dateformat" => p.dateformat = v.to_string(),
        "compressext" => p.compressext = v.to_string(),
        _ => {}
    }
    Ok(())
}

/// `100`, `100k`, `10M`, `1G`: logrotate's units (k and K, M, G: powers of
/// 1024; lower-case m and g are not units to it), number as C's strtoull.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'M')) => (&s[..i], 1 << 20),
        Some((i, 'G')) => (&s[..i], 1 << 30),
        Some((_, c)) if !c.is_ascii_digit() => return Err(format!("unknown unit `{c}` in `{s}`")),
        _ => (s, 1),
    };
    c_number(num)
        .filter(|n| *n >= 0)
        .and_then(|n| (n as u64).checked_mul(mult))
        .ok_or_else(|| format!("bad size `{s}`"))
}

#[cfg(test)]
mod tests;
