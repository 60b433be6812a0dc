//! syslog-ng configuration: network destinations (`network()`, `tcp()`,
//! `udp()`, `syslog()` and their v6 forms), `file()` destinations and
//! `@include`. Sources (the receiving side) are not forwards and are skipped.
//!
//! The grammar is read generically — words, `name(args)` calls and
//! `head { body }` blocks — and then destinations are picked out, so
//! unfamiliar drivers and options cost nothing.

mod tree;

use driftwatch_common::proto::{LogConfigIssue, LogForward, LogOutput};

use tree::Node;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// `daemon` is "syslog-ng"; `selector` is the destination name; `file`
    /// is left for the caller.
    pub forwards: Vec<LogForward>,
    pub outputs: Vec<LogOutput>,
    /// `@include` patterns with their line; relative ones are relative to
    /// the main config's directory.
    pub includes: Vec<(String, u32)>,
    pub issues: Vec<LogConfigIssue>,
}

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    // Pragmas (`@version`, `@include`) are whole lines; comment-only lines
    // are parsed separately so a commented remote destination is noted.
    let mut active = String::with_capacity(text.len());
    let mut runs: Vec<(u32, String)> = Vec::new();
    let mut last_comment = None;
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let t = line.trim_start();
        if let Some(p) = t.strip_prefix('@') {
            if let Some(arg) = p.strip_prefix("include") {
                let arg = arg.trim();
                let path = arg.trim_matches('"').trim_matches('\'');
                if path.is_empty() {
                    out.issues.push(LogConfigIssue {
                        line: n,
                        reason: "`@include` without a path".into(),
                    });
                } else {
                    out.includes.push((path.to_string(), n));
                }
            }
            active.push('\n');
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            match runs.last_mut() {
                Some((_, run)) if last_comment == Some(n - 1) => {
                    run.push('\n');
                    run.push_str(c);
                }
                _ => runs.push((n, c.to_string())),
            }
            last_comment = Some(n);
            active.push('\n');
            continue;
        }
        active.push_str(line);
        active.push('\n');
    }
    let (nodes, issues) = tree::parse(&active, 1);
    out.issues.extend(issues);
    collect(&nodes, false, &mut out);
    for (first, run) in &runs {
        let (nodes, _) = tree::parse(run, *first);
        collect(&nodes, true, &mut out);
    }
    out.forwards.sort_by_key(|f| f.line);
    out.issues.sort_by_key(|i| i.line);
    out
}

/// Walks every block for destinations, named (`destination d { … };`) or
/// inline in a log path (`log { destination { … }; };`).
fn collect(nodes: &[Node], commented: bool, out: &mut Parsed) {
    for n in nodes {
        if let Node::Block { head, body, .. } = n {
            let dest = match head.as_slice() {
                [.., kw, name] if kw == "destination" => Some(name.as_str()),
                [.., kw] if kw == "destination" => Some(""),
                _ => None,
            };
            match dest {
                Some(name) => destination(name, body, commented, out),
                // Sources receive; only other blocks (log paths) can hold
                // inline destinations.
                None if head.last().is_some_and(|h| h == "source") => {}
                None => collect(body, commented, out),
            }
        }
    }
}

fn destination(name: &str, body: &[Node], commented: bool, out: &mut Parsed) {
    for d in body {
        let Node::Call {
            name: driver,
            args,
            line,
        } = d
        else {
            continue;
        };
        let positional = args.iter().find_map(|a| match a {
            Node::Word(w, _) => Some(w.clone()),
            _ => None,
        });
        let option = |key: &str| {
            args.iter().find_map(|a| match a {
                Node::Call { name, args, .. } if name.replace('_', "-") == key => {
                    args.iter().find_map(|x| match x {
                        Node::Word(w, _) => Some(w.clone()),
                        _ => None,
                    })
                }
                _ => None,
            })
        };
        let driver = driver.replace('_', "-");
        let protocol = match driver.as_str() {
            "tcp" | "tcp6" => "tcp".to_string(),
            "udp" | "udp6" => "udp".to_string(),
            "network" | "syslog" => option("transport")
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_else(|| "tcp".into()),
            "file" => {
                if let (Some(path), false) = (positional, commented) {
                    out.outputs.push(LogOutput {
                        daemon: "syslog-ng".into(),
                        path,
                        selector: name.to_string(),
                        no_sync: false,
                        file: String::new(),
                        line: *line,
                    });
                }
                continue;
            }
            _ => continue,
        };
        let Some(target) = positional else {
            if !commented {
                out.issues.push(LogConfigIssue {
                    line: *line,
                    reason: format!("{driver}() destination without a host"),
                });
            }
            continue;
        };
        let port = match option("port") {
            None => 0,
            Some(p) => match p.parse::<u32>() {
                Ok(n) if n <= 65535 => n,
                _ => {
                    if !commented {
                        out.issues.push(LogConfigIssue {
                            line: *line,
                            reason: format!("{driver}(): bad port `{p}`"),
                        });
                    }
                    continue;
                }
            },
        };
        let has_tls = args
            .iter()
            .any(|a| matches!(a, Node::Call { name, .. } if name == "tls"));
        let protocol = if has_tls && protocol == "tcp" {
            "tls".to_string()
        } else {
            protocol
        };
        out.forwards.push(LogForward {
            daemon: "syslog-ng".into(),
            target,
            port,
            protocol,
            selector: name.to_string(),
            file: String::new(),
            line: *line,
            commented,
            options: format!("{driver}()"),
        });
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod oracle;
