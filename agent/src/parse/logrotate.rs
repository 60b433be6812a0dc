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

/// Directives logrotate knows but whose value we do not report.
const IGNORED: &[&str] = &[
    "compresscmd",
    "uncompresscmd",
    "compressoptions",
    "nocompress",
    "copy",
    "nocopy",
    "nocopytruncate",
    "createolddir",
    "nocreateolddir",
    "nodateext",
    "dateyesterday",
    "datehourago",
    "nodelaycompress",
    "extension",
    "addextension",
    "ifempty",
    "mail",
    "nomail",
    "mailfirst",
    "maillast",
    "minage",
    "nomissingok",
    "noolddir",
    "nosharedscripts",
    "shred",
    "noshred",
    "shredcycles",
    "start",
    "tabooext",
    "taboopat",
    "renamecopy",
    "norenamecopy",
    "allowhardlink",
    "noallowhardlink",
    "ignoreduplicates",
];

/// Parses one logrotate file whose stanzas inherit `inherited`.
pub fn parse(text: &str, inherited: &RotationPolicy) -> Parsed {
    let mut p = Parser {
        out: Parsed {
            globals: inherited.clone(),
            ..Parsed::default()
        },
        pending: Vec::new(),
        pending_line: 0,
        block: None,
    };
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let n = i as u32 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if SCRIPTS.contains(&word) {
            // Script bodies are shell, not config: skip to `endscript`.
            let mut closed = false;
            for (_, l) in lines.by_ref() {
                if l.trim() == "endscript" {
                    closed = true;
                    break;
                }
            }
            if !closed {
                p.issue(n, format!("`{word}` script has no `endscript`"));
            }
            match &mut p.block {
                Some(rule) => rule.policy.scripts.push(word.to_string()),
                None => p.issue(n, format!("`{word}` outside a stanza")),
            }
            continue;
        }
        p.line(n, line);
    }
    if let Some(rule) = p.block.take() {
        let line = rule.line;
        p.issue(
            line,
            "stanza is never closed: no `}` before the end of the file".into(),
        );
        p.out.items.push(Item::Rule(rule));
    }
    if !p.pending.is_empty() {
        p.issue(
            p.pending_line,
            format!("log path {} has no `{{ … }}` stanza", p.pending.join(" ")),
        );
    }
    p.out
}

struct Parser {
    out: Parsed,
    /// Paths seen outside a stanza, waiting for their `{`.
    pending: Vec<String>,
    pending_line: u32,
    block: Option<Rule>,
}

impl Parser {
    fn issue(&mut self, line: u32, reason: String) {
        self.out.issues.push(LogConfigIssue { line, reason });
    }

    fn line(&mut self, n: u32, line: &str) {
        if self.block.is_some() {
            return self.in_block(n, line);
        }
        // Outside a stanza: paths (possibly ending in `{`), `{` alone,
        // global directives, or `include`.
        let (body, opens) = match line.strip_suffix('{') {
            Some(b) => (b.trim(), true),
            None => (line, false),
        };
        let words = split_words(body);
        let first = words.first().map(String::as_str).unwrap_or("");
        if !opens && is_directive(first) {
            if !self.pending.is_empty() {
                // logrotate tolerates a missing `{`; we report it and read on
                // as if it were there so the policy is still known.
                let paths = self.pending.join(" ");
                self.issue(
                    self.pending_line,
                    format!("missing `{{` after log path(s) {paths}"),
                );
                self.open(n);
                return self.in_block(n, line);
            }
            return self.global(n, &words);
        }
        if !words.is_empty() && !looks_like_path(first) {
            self.issue(n, format!("unknown directive `{first}`"));
            return;
        }
        if self.pending.is_empty() {
            self.pending_line = n;
        }
        self.pending.extend(words);
        if opens {
            if self.pending.is_empty() {
                self.issue(n, "`{` without any log path before it".into());
            }
            self.open(n);
        }
    }

    fn open(&mut self, n: u32) {
        let line = if self.pending.is_empty() {
            n
        } else {
            self.pending_line
        };
        self.block = Some(Rule {
            patterns: std::mem::take(&mut self.pending),
            line,
            policy: self.out.globals.clone(),
        });
    }

    fn global(&mut self, n: u32, words: &[String]) {
        if words[0] == "include" {
            match words.get(1) {
                Some(path) => self.out.items.push(Item::Include {
                    path: path.clone(),
                    line: n,
                    globals: self.out.globals.clone(),
                }),
                None => self.issue(n, "`include` without a path".into()),
            }
            return;
        }
        let mut policy = std::mem::take(&mut self.out.globals);
        if let Err(e) = apply(&mut policy, words) {
            self.issue(n, e);
        }
        self.out.globals = policy;
    }

    fn in_block(&mut self, n: u32, line: &str) {
        if line == "}" {
            if let Some(rule) = self.block.take() {
                self.out.items.push(Item::Rule(rule));
            }
            return;
        }
        let words = split_words(line);
        let first = words.first().map(String::as_str).unwrap_or("");
        if first == "include" {
            return self.issue(n, "`include` is not allowed inside a stanza".into());
        }
        if line.ends_with('{') {
            return self.issue(n, "`{` inside a stanza (missing `}` before it?)".into());
        }
        let Some(rule) = self.block.as_mut() else {
            return;
        };
        if let Err(e) = apply(&mut rule.policy, &words) {
            self.issue(n, e);
        }
    }
}

fn is_directive(w: &str) -> bool {
    w == "include" || IGNORED.contains(&w) || KNOWN.contains(&w)
}

const KNOWN: &[&str] = &[
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "hourly",
    "rotate",
    "size",
    "maxsize",
    "minsize",
    "compress",
    "delaycompress",
    "missingok",
    "copytruncate",
    "notifempty",
    "dateext",
    "sharedscripts",
    "create",
    "nocreate",
    "su",
    "maxage",
    "olddir",
    "dateformat",
    "compressext",
];

fn looks_like_path(w: &str) -> bool {
    w.contains('/') || w.contains('*') || w.contains('?')
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

/// Applies one directive to a policy; `Err` says why it is malformed.
fn apply(p: &mut RotationPolicy, words: &[String]) -> Result<(), String> {
    let key = words[0].as_str();
    let arg = words.get(1).map(String::as_str);
    let need = |what: &str| arg.ok_or_else(|| format!("`{key}` needs {what}"));
    match key {
        "daily" | "weekly" | "monthly" | "yearly" | "hourly" => p.frequency = key.to_string(),
        "rotate" => {
            let v = need("a count")?;
            // logrotate accepts -1 for "keep forever"; map it to the max.
            p.rotate = Some(match v.parse::<i64>() {
                Ok(n) if n < 0 => u32::MAX,
                Ok(n) => u32::try_from(n).map_err(|_| format!("`rotate {v}`: too large"))?,
                Err(_) => return Err(format!("`rotate {v}`: not a number")),
            });
        }
        "size" | "maxsize" | "minsize" => {
            let v = parse_size(need("a size")?)?;
            match key {
                "size" => p.size_bytes = Some(v),
                "maxsize" => p.maxsize_bytes = Some(v),
                _ => p.minsize_bytes = Some(v),
            }
        }
        "maxage" => {
            let v = need("a number of days")?;
            p.maxage_days = Some(
                v.parse()
                    .map_err(|_| format!("`maxage {v}`: not a number"))?,
            );
        }
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
        "create" => {
            p.create = if words.len() > 1 {
                words[1..].join(" ")
            } else {
                "default".into()
            }
        }
        "nocreate" => p.create.clear(),
        "su" => {
            if words.len() < 2 {
                return Err("`su` needs a user (and group)".into());
            }
            p.su = words[1..].join(" ");
        }
        "olddir" => p.olddir = need("a directory")?.to_string(),
        "noolddir" => p.olddir.clear(),
        "dateformat" => p.dateformat = need("a format")?.to_string(),
        "compressext" => p.compressext = need("an extension")?.to_string(),
        k if IGNORED.contains(&k) => {}
        k => return Err(format!("unknown directive `{k}`")),
    }
    Ok(())
}

/// `100`, `100k`, `10M`, `1G` (logrotate's units, powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim_start_matches('+');
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}`: not a size (use N, Nk, NM or NG)"))
}

#[cfg(test)]
mod tests;
