//! A generic reader for syslog-ng's grammar: words and strings, `name(…)`
//! calls and `head { … }` blocks, separated by `;`.

use driftwatch_common::proto::LogConfigIssue;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Word(String, u32),
    Call {
        name: String,
        args: Vec<Node>,
        line: u32,
    },
    Block {
        /// The words before `{` since the previous statement.
        head: Vec<String>,
        body: Vec<Node>,
        line: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open(char),
    Close(char),
    Semi,
}

fn tokenize(text: &str, first_line: u32, issues: &mut Vec<LogConfigIssue>) -> Vec<(Tok, u32)> {
    let mut out = Vec::new();
    let mut line = first_line;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() || c == ',' => {}
            '#' => {
                while it.peek().is_some_and(|&c| c != '\n') {
                    it.next();
                }
            }
            '"' | '\'' | '`' => {
                let start = line;
                let mut s = String::new();
                let mut closed = false;
                while let Some(ch) = it.next() {
                    if ch == '\n' {
                        line += 1;
                    }
                    if ch == c {
                        closed = true;
                        break;
                    }
                    if ch == '\\' && c == '"' {
                        if let Some(e) = it.next() {
                            s.push(e);
                        }
                        continue;
                    }
                    s.push(ch);
                }
                if !closed {
                    issues.push(LogConfigIssue {
                        line: start,
                        reason: format!("unterminated {c}string{c}"),
                    });
                }
                if c == '`' {
                    s = format!("`{s}`");
                }
                out.push((Tok::Word(s), start));
            }
            '{' | '(' => out.push((Tok::Open(c), line)),
            '}' | ')' => out.push((Tok::Close(c), line)),
            ';' => out.push((Tok::Semi, line)),
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || "{}();,\"'`#".contains(n) {
                        break;
                    }
                    s.push(n);
                    it.next();
                }
                out.push((Tok::Word(s), line));
            }
        }
    }
    out
}

pub(super) fn parse(text: &str, first_line: u32) -> (Vec<Node>, Vec<LogConfigIssue>) {
    let mut issues = Vec::new();
    let toks = tokenize(text, first_line, &mut issues);
    let mut pos = 0;
    let nodes = seq(&toks, &mut pos, None, &mut issues);
    (nodes, issues)
}

/// Reads nodes until the closing `close` (consumed) or the end.
fn seq(
    toks: &[(Tok, u32)],
    pos: &mut usize,
    close: Option<(char, u32)>,
    issues: &mut Vec<LogConfigIssue>,
) -> Vec<Node> {
    let mut out = Vec::new();
    let mut head: Vec<(String, u32)> = Vec::new();
    let flush = |head: &mut Vec<(String, u32)>, out: &mut Vec<Node>| {
        out.extend(head.drain(..).map(|(w, l)| Node::Word(w, l)));
    };
    while *pos < toks.len() {
        let (tok, line) = &toks[*pos];
        *pos += 1;
        match tok {
            Tok::Word(w) => head.push((w.clone(), *line)),
            Tok::Semi => flush(&mut head, &mut out),
            Tok::Open('(') => {
                let Some((name, l)) = head.pop() else {
                    // A bare parenthesis: read and keep its contents flat.
                    let inner = seq(toks, pos, Some((')', *line)), issues);
                    out.extend(inner);
                    continue;
                };
                flush(&mut head, &mut out);
                let args = seq(toks, pos, Some((')', l)), issues);
                out.push(Node::Call {
                    name,
                    args,
                    line: l,
                });
            }
            Tok::Open(_) => {
                let line0 = head.first().map(|h| h.1).unwrap_or(*line);
                let h: Vec<String> = head.drain(..).map(|(w, _)| w).collect();
                let body = seq(toks, pos, Some(('}', *line)), issues);
                out.push(Node::Block {
                    head: h,
                    body,
                    line: line0,
                });
            }
            Tok::Close(c) => {
                flush(&mut head, &mut out);
                match close {
                    Some((want, _)) if want == *c => return out,
                    _ => issues.push(LogConfigIssue {
                        line: *line,
                        reason: format!("unexpected `{c}`"),
                    }),
                }
            }
        }
    }
    flush(&mut head, &mut out);
    if let Some((want, line)) = close {
        let open = if want == ')' { '(' } else { '{' };
        issues.push(LogConfigIssue {
            line,
            reason: format!("`{open}` is never closed"),
        });
    }
    out
}
