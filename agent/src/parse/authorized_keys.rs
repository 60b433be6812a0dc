//! authorized_keys: one key per line, `[options] type base64 [comment]`.
//!
//! Every line that is not blank or a comment becomes either a key or a
//! malformed line with its reason; both keep their 1-based line number and
//! byte range so a later sweep can remove exactly that line.

mod cert;
mod key;
mod options;

use driftwatch_common::proto::{AuthorizedKey, MalformedKeyLine};

pub use key::is_known_type;

/// Longest text kept for a malformed line.
const MAX_SHOWN: usize = 200;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub keys: Vec<AuthorizedKey>,
    pub malformed: Vec<MalformedKeyLine>,
}

/// One physical line: where it is and its text without the terminator.
struct Line<'a> {
    number: u32,
    offset: usize,
    text: &'a str,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    text.split_inclusive('\n')
        .enumerate()
        .map(move |(i, piece)| {
            let start = offset;
            offset += piece.len();
            let body = piece.strip_suffix('\n').unwrap_or(piece);
            let body = body.strip_suffix('\r').unwrap_or(body);
            Line {
                number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                offset: start,
                text: body,
            }
        })
}

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for l in lines(text) {
        let body = l.text.trim_start_matches([' ', '\t']);
        if body.trim().is_empty() || body.starts_with('#') {
            continue;
        }
        match parse_line(body) {
            Ok(mut k) => {
                k.line = l.number;
                k.byte_offset = l.offset as u64;
                k.byte_len = l.text.len() as u64;
                out.keys.push(k);
            }
            Err(reason) => out.malformed.push(MalformedKeyLine {
                line: l.number,
                byte_offset: l.offset as u64,
                byte_len: l.text.len() as u64,
                reason,
                text: clip(l.text),
            }),
        }
    }
    out
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(MAX_SHOWN - 1).collect();
        c.push('…');
        c
    }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits off the next whitespace-delimited word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(is_ws);
    match s.find(is_ws) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses one non-blank, non-comment line (leading whitespace removed).
fn parse_line(body: &str) -> Result<AuthorizedKey, String> {
    let (first, after_first) = word(body);
    let (opts, rest) = if is_known_type(first) {
        (Vec::new(), body)
    } else if !options::starts_with_known_option(first)
        && !first.contains(['=', ','])
        && word(after_first).0.starts_with("AAAA")
    {
        // `name@example.com AAAA…`: a key type sshd does not know, not an
        // options field (sshd would try it as options and fail the same).
        return Err(format!("unknown key type {first:?}"));
    } else {
        let (opts, end) = options::parse(body)?;
        (opts, &body[end..])
    };
    let (key_type, rest) = word(rest);
    if !is_known_type(key_type) {
        return Err(if key_type.is_empty() {
            "no key after the options".into()
        } else {
            format!("unknown key type {key_type:?}")
        });
    }
    let (blob, rest) = word(rest);
    if blob.is_empty() {
        return Err(format!("{key_type}: no key data"));
    }
    let d = key::decode(key_type, blob)?;
    let problems = options::problems(&opts);
    Ok(AuthorizedKey {
        line: 0,
        byte_offset: 0,
        byte_len: 0,
        key_type: key_type.to_string(),
        label: d.label,
        bits: d.bits,
        fingerprint: d.fingerprint,
        comment: rest.trim_matches(is_ws).to_string(),
        options: opts,
        certificate: d.certificate,
        problems,
    })
}

#[cfg(test)]
mod tests;
