//! Turning rsyslog.conf text into lines the statement parser can read:
//! comments removed (but commented-out runs kept aside, because a commented
//! forward is worth noting), backslash continuations joined. Line numbers
//! are preserved: removed text leaves empty lines behind.

/// A run of consecutive comment lines with the `#` stripped.
pub(super) struct CommentRun {
    /// 1-based line of the run's first line.
    pub first_line: u32,
    pub lines: Vec<String>,
}

pub(super) struct Prepared {
    pub active: Vec<String>,
    pub comments: Vec<CommentRun>,
}

pub(super) fn prepare(text: &str) -> Prepared {
    let mut active = Vec::new();
    let mut comments: Vec<CommentRun> = Vec::new();
    let mut in_block_comment = false;
    let mut last_comment_line: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if !in_block_comment && trimmed.starts_with('#') {
            let body = trimmed.trim_start_matches('#').to_string();
            match comments.last_mut() {
                Some(run) if last_comment_line == Some(i.wrapping_sub(1)) => run.lines.push(body),
                _ => comments.push(CommentRun {
                    first_line: i as u32 + 1,
                    lines: vec![body],
                }),
            }
            last_comment_line = Some(i);
            active.push(String::new());
            continue;
        }
        active.push(strip_comments(raw, &mut in_block_comment));
    }
    join_continuations(&mut active);
    for run in &mut comments {
        join_continuations(&mut run.lines);
    }
    Prepared { active, comments }
}

/// Removes `# …` and `/* … */` outside quotes. A `#` or `/*` only starts a
/// comment at the start of a line or after whitespace, so paths such as
/// `/etc/rsyslog.d/*.conf` survive.
fn strip_comments(line: &str, in_block: &mut bool) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<u8> = None;
    let mut i = 0;
    let mut keep_from = 0;
    while i < b.len() {
        if *in_block {
            if b[i..].starts_with(b"*/") {
                *in_block = false;
                i += 2;
                keep_from = i;
            } else {
                i += 1;
            }
            continue;
        }
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                let at_word_start = i == 0 || b[i - 1].is_ascii_whitespace();
                if c == b'"' || c == b'\'' {
                    quote = Some(c);
                } else if c == b'#' && at_word_start {
                    out.push_str(&line[keep_from..i]);
                    return out;
                } else if c == b'/' && b.get(i + 1) == Some(&b'*') && at_word_start {
                    out.push_str(&line[keep_from..i]);
                    *in_block = true;
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    if !*in_block {
        out.push_str(&line[keep_from.min(line.len())..]);
    }
    out
}

/// Joins lines ending in `\` with the next one; the joined lines become empty
/// so numbering stays true.
fn join_continuations(lines: &mut [String]) {
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while lines[i].trim_end().ends_with('\\') && j + 1 < lines.len() {
            j += 1;
            let next = std::mem::take(&mut lines[j]);
            let cur = &mut lines[i];
            let keep = cur.trim_end().len() - 1;
            cur.truncate(keep);
            cur.push_str(next.trim());
        }
        i = j + 1;
    }
}
