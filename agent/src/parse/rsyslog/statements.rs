//! The statement scanner: walks the prepared text with a cursor, because
//! RainerScript statements span lines while legacy ones end at the newline.

use driftwatch_common::proto::{LogConfigIssue, LogForward, LogOutput};

use super::legacy;
use super::{Include, Parsed};

/// RainerScript objects written `name(params)`.
const OBJECTS: &[&str] = &[
    "action",
    "module",
    "input",
    "include",
    "template",
    "global",
    "main_queue",
    "ruleset",
    "lookup_table",
    "parser",
    "timezone",
    "dyn_stats",
    "percentile_stats",
    "ratelimit",
    "property",
    "constant",
];

/// Runs the scanner over `lines` (line `first_line` is the first). In
/// `commented` mode only forwards are kept, marked commented, and nothing is
/// an error: comments are mostly prose.
pub(super) fn run(lines: &[String], first_line: u32, commented: bool, out: &mut Parsed) {
    let text = lines.join("\n");
    let mut line_starts = vec![0usize];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(i + 1);
        }
    }
    let mut s = Scanner {
        t: &text,
        pos: 0,
        line_starts,
        first_line,
        commented,
        stack: Vec::new(),
        pending: None,
        last_legacy_selector: String::new(),
        out,
    };
    s.statements();
}

struct Scanner<'a, 'o> {
    t: &'a str,
    pos: usize,
    line_starts: Vec<usize>,
    first_line: u32,
    commented: bool,
    /// Filters of the `{ … }` blocks we are inside.
    stack: Vec<String>,
    /// A filter (`if …`) that applies to the next statement only.
    pending: Option<String>,
    /// For legacy `& action` lines, which reuse the previous selector.
    last_legacy_selector: String,
    out: &'o mut Parsed,
}

impl<'a> Scanner<'a, '_> {
    fn line_at(&self, pos: usize) -> u32 {
        let idx = self.line_starts.partition_point(|&s| s <= pos);
        self.first_line + idx.saturating_sub(1) as u32
    }

    fn issue(&mut self, pos: usize, reason: String) {
        if !self.commented {
            let line = self.line_at(pos);
            self.out.issues.push(LogConfigIssue { line, reason });
        }
    }

    fn rest(&self) -> &'a str {
        &self.t[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    /// The rest of the current line, consuming it.
    fn take_line(&mut self) -> &'a str {
        let r: &'a str = &self.t[self.pos..];
        let end = r.find('\n').unwrap_or(r.len());
        self.pos += end;
        &r[..end]
    }

    fn selector(&mut self) -> String {
        self.pending
            .take()
            .or_else(|| self.stack.last().cloned())
            .unwrap_or_default()
    }

    fn statements(&mut self) {
        loop {
            self.skip_ws();
            if self.pos >= self.t.len() {
                return;
            }
            let start = self.pos;
            if !self.statement() {
                return;
            }
            if self.pos == start {
                // Never loop in place on input we do not understand.
                self.take_line();
            }
        }
    }

    /// One statement; false when the rest of the text cannot be read.
    fn statement(&mut self) -> bool {
        let r = self.rest();
        let word: &str = {
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            &r[..end]
        };
        let after_word = r[word.len()..].trim_start();
        match r.as_bytes()[0] {
            b'$' => {
                let start = self.pos;
                let line = self.take_line().to_string();
                self.legacy_directive(start, &line);
                return true;
            }
            b'{' => {
                self.pos += 1;
                let sel = self.selector();
                self.stack.push(sel);
                return true;
            }
            b'}' => {
                self.pos += 1;
                self.stack.pop();
                self.pending = None;
                return true;
            }
            b'&' => {
                let start = self.pos;
                self.pos += 1;
                let sel = self.last_legacy_selector.clone();
                return self.legacy_action(start, sel);
            }
            b':' => return self.property_filter(),
            _ => {}
        }
        // `if … then @@host:514`: a legacy action after a RainerScript filter.
        if self.pending.is_some() && starts_legacy_action(r) {
            let start = self.pos;
            let sel = self.selector();
            return self.legacy_action(start, sel);
        }
        match word {
            "if" if !after_word.is_empty() => return self.if_then("if", "then"),
            "foreach" if !after_word.is_empty() => return self.if_then("foreach", "do"),
            "else" => {
                self.pos += word.len();
                self.pending = Some("else".into());
                return true;
            }
            "stop" | "continue" => {
                self.pos += word.len();
                self.pending = None;
                return true;
            }
            "call" => {
                self.take_line();
                self.pending = None;
                return true;
            }
            "set" | "unset" | "reset" => {
                // `set $.x = …;` ends at its semicolon.
                let r = self.rest();
                self.pos += r.find(';').map(|i| i + 1).unwrap_or(r.len());
                return true;
            }
            _ => {}
        }
        if OBJECTS.contains(&word) && after_word.starts_with('(') {
            let start = self.pos;
            self.pos += r.len() - after_word.len();
            let Some(body) = self.balanced(start, word) else {
                return false;
            };
            self.object(start, word, &body);
            return true;
        }
        let start = self.pos;
        let sel = self.take_selector();
        self.legacy_selector_line(start, sel)
    }

    /// Reads `( … )` at the cursor, honouring quotes; returns the inside.
    fn balanced(&mut self, start: usize, what: &str) -> Option<String> {
        let b = self.t.as_bytes();
        let open = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<u8> = None;
        let mut i = open;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) => {
                    if c == b'\\' {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = i + 1;
                            return Some(self.t[open + 1..i].to_string());
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        self.issue(start, format!("`{what}(` is never closed: no matching `)`"));
        self.pos = self.t.len();
        None
    }

    /// `if EXPR then` / `foreach (…) do`: the filter applies to what follows.
    fn if_then(&mut self, kw: &str, then_kw: &str) -> bool {
        let start = self.pos;
        let r = self.rest();
        // In comments the expression must end on its own line: prose that
        // happens to start with "if" must not swallow what follows.
        let scope = if self.commented {
            &r[..r.find('\n').unwrap_or(r.len())]
        } else {
            r
        };
        let Some(then) = find_keyword(scope, then_kw) else {
            self.issue(start, format!("`{kw}` without `{then_kw}`"));
            self.take_line();
            return true;
        };
        let expr = normalize_ws(scope[kw.len()..then].trim());
        self.pos += then + then_kw.len();
        self.pending = Some(format!("{kw} {expr}"));
        true
    }

    /// `:property, [!]compare-op, "value"  action`
    fn property_filter(&mut self) -> bool {
        let start = self.pos;
        let r = self.rest();
        // `:omrelp:` and friends at the start of a line are not filters.
        let line = &r[..r.find('\n').unwrap_or(r.len())];
        let Some(q1) = line.find('"') else {
            self.issue(start, format!("cannot read property filter `{line}`"));
            self.take_line();
            return true;
        };
        let mut end = None;
        let b = line.as_bytes();
        let mut i = q1 + 1;
        while i < b.len() {
            if b[i] == b'\\' {
                i += 1;
            } else if b[i] == b'"' {
                end = Some(i);
                break;
            }
            i += 1;
        }
        let Some(end) = end else {
            self.issue(start, format!("unterminated string in `{line}`"));
            self.take_line();
            return true;
        };
        let sel = line[..=end].to_string();
        self.pos += end + 1;
        self.legacy_action(start, sel)
    }

    /// The selector field of a legacy line (up to whitespace).
    fn take_selector(&mut self) -> String {
        let r = self.rest();
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        self.pos += end;
        r[..end].to_string()
    }

    fn legacy_selector_line(&mut self, start: usize, sel: String) -> bool {
        if !is_selector(&sel) {
            let line = format!("{sel}{}", self.take_line());
            self.issue(start, format!("cannot read `{}`", line.trim()));
            return true;
        }
        self.last_legacy_selector = sel.clone();
        self.legacy_action(start, sel)
    }

    /// The action part of a legacy line, at the cursor.
    fn legacy_action(&mut self, start: usize, sel: String) -> bool {
        // Horizontal whitespace only: the action is on the selector's line.
        let r = self.rest();
        let ws = r.len() - r.trim_start_matches([' ', '\t']).len();
        self.pos += ws;
        let r = self.rest();
        if r.starts_with("action") && r["action".len()..].trim_start().starts_with('(') {
            self.pos += r.len() - r["action".len()..].trim_start().len();
            let Some(body) = self.balanced(start, "action") else {
                return false;
            };
            self.pending = Some(sel);
            self.object(start, "action", &body);
            return true;
        }
        let action = self.take_line().trim().to_string();
        if action.is_empty() {
            self.issue(start, format!("selector `{sel}` has no action"));
            return true;
        }
        let line = self.line_at(start);
        let parsed = legacy::action(&action);
        match parsed {
            Ok(Some(legacy::Action::Forward(mut f))) => {
                f.selector = sel;
                f.line = line;
                f.commented = self.commented;
                self.out.forwards.push(f);
            }
            Ok(Some(legacy::Action::File { path, no_sync })) if !self.commented => {
                self.out.outputs.push(LogOutput {
                    daemon: "rsyslog".into(),
                    path,
                    selector: sel,
                    no_sync,
                    file: String::new(),
                    line,
                });
            }
            Ok(_) => {}
            Err(e) => self.issue(start, e),
        }
        true
    }

    fn legacy_directive(&mut self, start: usize, line: &str) {
        if self.commented {
            return;
        }
        let mut it = line.split_whitespace();
        let name = it.next().unwrap_or("").to_ascii_lowercase();
        let arg = it.next().unwrap_or("");
        match name.as_str() {
            "$includeconfig" => {
                if arg.is_empty() {
                    self.issue(start, "`$IncludeConfig` without a path".into());
                } else {
                    let line = self.line_at(start);
                    self.out.includes.push(Include {
                        pattern: arg.to_string(),
                        line,
                        optional: false,
                    });
                }
            }
            "$modload" if !arg.is_empty() => self.out.modules.push(arg.to_string()),
            _ => {}
        }
    }

    fn object(&mut self, start: usize, kind: &str, body: &str) {
        let params = match params(body) {
            Ok(p) => p,
            Err(e) => {
                self.issue(start, format!("`{kind}(…)`: {e}"));
                self.pending = None;
                return;
            }
        };
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let line = self.line_at(start);
        match kind {
            "module" if !self.commented => match get("load") {
                Some(m) => self.out.modules.push(m.to_string()),
                None => self.issue(start, "`module(…)` without `load=`".into()),
            },
            "include" if !self.commented => {
                if let Some(f) = get("file") {
                    self.out.includes.push(Include {
                        pattern: f.to_string(),
                        line,
                        optional: get("mode") == Some("optional"),
                    });
                } else if get("text").is_none() {
                    self.issue(start, "`include(…)` without `file=` or `text=`".into());
                }
            }
            "ruleset" => {
                let name = get("name").unwrap_or("").to_string();
                self.pending = Some(format!("ruleset {name}"));
                return;
            }
            "action" => {
                let sel = self.selector();
                self.action(start, line, sel, &get);
                return;
            }
            _ => {}
        }
        self.pending = None;
    }

    fn action<'p>(
        &mut self,
        start: usize,
        line: u32,
        selector: String,
        get: &dyn Fn(&str) -> Option<&'p str>,
    ) {
        let Some(kind) = get("type") else {
            self.issue(start, "`action(…)` without `type=`".into());
            return;
        };
        let kind = kind.to_ascii_lowercase();
        let options = get("template")
            .map(|t| format!("template={t}"))
            .unwrap_or_default();
        let (target_key, port_key) = match kind.as_str() {
            "omfwd" | "omrelp" => ("target", "port"),
            "omhttp" | "omelasticsearch" => ("server", "serverport"),
            "omkafka" => ("broker", ""),
            "omfile" => {
                if self.commented {
                    return;
                }
                let (path, no_sync) = match (get("file"), get("dynafile")) {
                    (Some(f), _) => (f.to_string(), false),
                    (None, Some(t)) => (format!("dynafile:{t}"), false),
                    (None, None) => {
                        return self
                            .issue(start, "omfile action without `file=` or `dynaFile=`".into());
                    }
                };
                let sync_off = get("flushOnTXEnd") == Some("off");
                self.out.outputs.push(LogOutput {
                    daemon: "rsyslog".into(),
                    path,
                    selector,
                    no_sync: no_sync || sync_off,
                    file: String::new(),
                    line,
                });
                return;
            }
            _ => return,
        };
        let Some(targets) = get(target_key) else {
            return self.issue(start, format!("{kind} action without `{target_key}=`"));
        };
        // omfwd (rsyslog 8.2402+) load-balances over `target=["a","b"]`
        // with `port=["1","2"]`: target i uses port i, or the first port
        // when there are fewer ports than targets (extra ports are ignored).
        let targets = array_values(targets);
        let ports = match get(port_key).filter(|_| !port_key.is_empty()) {
            None => vec![0],
            Some(p) => {
                let mut ports = Vec::new();
                for v in array_values(p) {
                    match v.parse::<u32>() {
                        Ok(n) if n <= 65535 => ports.push(n),
                        _ => return self.issue(start, format!("{kind} action: bad port `{v}`")),
                    }
                }
                if ports.is_empty() {
                    return self.issue(start, format!("{kind} action: empty port list"));
                }
                ports
            }
        };
        if targets.is_empty() {
            return self.issue(start, format!("{kind} action: empty `{target_key}=` list"));
        }
        let protocol = match kind.as_str() {
            "omfwd" => {
                let tls =
                    get("streamDriverMode") == Some("1") || get("StreamDriver.Mode") == Some("1");
                if tls {
                    "tls".to_string()
                } else {
                    get("protocol").unwrap_or("udp").to_ascii_lowercase()
                }
            }
            "omrelp" => "relp".into(),
            "omkafka" => "kafka".into(),
            _ => "http".into(),
        };
        for (i, target) in targets.iter().enumerate() {
            self.out.forwards.push(LogForward {
                daemon: "rsyslog".into(),
                target: target.clone(),
                port: ports.get(i).copied().unwrap_or(ports[0]),
                protocol: protocol.clone(),
                selector: selector.clone(),
                file: String::new(),
                line,
                commented: self.commented,
                options: options.clone(),
            });
        }
    }
}

/// `name="value" name2='v' name3=bare` pairs; names keep their case.
fn params(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected name=\"value\" at `{}`", clip(rest)))?;
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("expected name=\"value\" at `{}`", clip(rest)));
        }
        let v = rest[eq + 1..].trim_start();
        let (value, after) = match v.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => {
                let b = v.as_bytes();
                let mut i = 1;
                let mut val = String::new();
                loop {
                    match b.get(i) {
                        None => return Err(format!("unterminated string after `{name}=`")),
                        Some(&c) if c == q => break,
                        Some(b'\\') if i + 1 < b.len() => {
                            // The escaped character may be multi-byte.
                            let ch = v[i + 1..].chars().next().unwrap_or(' ');
                            val.push(ch);
                            i += 1 + ch.len_utf8();
                            continue;
                        }
                        Some(_) => {}
                    }
                    let ch = v[i..].chars().next().unwrap_or(' ');
                    val.push(ch);
                    i += ch.len_utf8();
                }
                (val, &v[i + 1..])
            }
            Some(b'[') => {
                let end = v
                    .find(']')
                    .ok_or_else(|| format!("unterminated `[` after `{name}=`"))?;
                (v[..=end].to_string(), &v[end + 1..])
            }
            _ => {
                let end = v.find(char::is_whitespace).unwrap_or(v.len());
                (v[..end].to_string(), &v[end..])
            }
        };
        out.push((name.to_string(), value));
        rest = after.trim_start();
    }
    Ok(out)
}

/// `["a", "b"]` as its strings; any other value as itself.
fn array_values(v: &str) -> Vec<String> {
    let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) else {
        return vec![v.to_string()];
    };
    inner
        .split(',')
        .map(|x| x.trim().trim_matches(['"', '\'']).to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Position of `kw` as a whole word outside quotes.
fn find_keyword(s: &str, kw: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if c == b'\\' => i += 1,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None => {
                let before_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                let after = i + kw.len();
                let after_ok =
                    after >= b.len() || !(b[after].is_ascii_alphanumeric() || b[after] == b'_');
                if before_ok && after_ok && b[i..].starts_with(kw.as_bytes()) {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn starts_legacy_action(r: &str) -> bool {
    r.starts_with(['@', '/', '~', '?', '|', '^']) || r.starts_with("-/") || r.starts_with(":om")
}

/// `facility.priority[;…]` as legacy selectors are written.
fn is_selector(s: &str) -> bool {
    s.contains('.')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '*' | ',' | ';' | '.' | '=' | '!' | '<' | '>' | '_')
        })
}
