//! What a host reports (process names, command lines, key comments, file
//! names) is written by whoever controls that host, and an admin's terminal
//! obeys control sequences: ESC and CSI can set the window title, clear the
//! screen or move the cursor to overwrite the lines above (hiding a finding
//! or a key). So nothing from a snapshot reaches the terminal raw: control
//! characters are shown as visible escapes. Table cells are escaped when
//! added (so columns stay aligned), and [`TerminalSafe`] escapes whatever
//! else the CLI prints, as the one place every byte of output goes through.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Characters a terminal may act on instead of showing: C0 controls, DEL,
/// C1 controls (U+009B is an 8-bit CSI) and the bidirectional overrides,
/// which reorder what is shown around them.
fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn push_escaped(out: &mut String, c: char, json: bool) {
    // Infallible: writing to a String.
    let _ = match (c, json) {
        (_, true) => write!(out, "\\u{:04x}", c as u32),
        ('\n', false) => write!(out, "\\n"),
        ('\t', false) => write!(out, "\\t"),
        ('\r', false) => write!(out, "\\r"),
        ('\u{1b}', false) => write!(out, "\\e"),
        (_, false) if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32),
        (_, false) => write!(out, "\\u{{{:x}}}", c as u32),
    };
}

fn escape_with(s: &str, keep_newlines: bool, json: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c, keep_newlines) {
            push_escaped(&mut out, c, json);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One table cell or one-line value: every control character, newlines
/// included, becomes a visible escape (`\e`, `\n`, `\x07`, `\u{202e}`).
pub fn escape_cell(s: &str) -> Cow<'_, str> {
    escape_with(s, false, false)
}

/// Wraps the CLI's output. Newlines and tabs pass (the CLI's own layout);
/// every other control character is escaped. With `json`, the escape is a
/// JSON `\uXXXX`: serde_json already escapes C0 inside strings, but not DEL,
/// C1 or the bidi overrides, and those only ever occur inside strings, so
/// the document stays valid and says the same.
pub struct TerminalSafe<W: Write> {
    inner: W,
    json: bool,
    /// The tail of a UTF-8 sequence split across two writes.
    pending: Vec<u8>,
}

impl<W: Write> TerminalSafe<W> {
    pub fn new(inner: W, json: bool) -> Self {
        TerminalSafe {
            inner,
            json,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, text: &str) -> io::Result<()> {
        let safe = escape_with(text, true, self.json);
        self.inner.write_all(safe.as_bytes())
    }

    /// Bytes that are not UTF-8 at all are shown as `\xNN`, never passed on.
    fn emit_invalid(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut s = String::new();
        for b in bytes {
            let _ = if self.json {
                write!(s, "\\u{:04x}", 0xfffd)
            } else {
                write!(s, "\\x{b:02x}")
            };
        }
        self.inner.write_all(s.as_bytes())
    }

    fn drain(&mut self, at_end: bool) -> io::Result<()> {
        let buf = std::mem::take(&mut self.pending);
        let mut rest = &buf[..];
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.emit(s)?;
                    rest = &[];
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 just now.
                    self.emit(std::str::from_utf8(good).unwrap_or_default())?;
                    match e.error_len() {
                        Some(n) => {
                            self.emit_invalid(&bad[..n])?;
                            rest = &bad[n..];
                        }
                        None if at_end => {
                            self.emit_invalid(bad)?;
                            rest = &[];
                        }
                        None => {
                            self.pending = bad.to_vec();
                            rest = &[];
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(json: bool, writes: &[&[u8]]) -> String {
        let mut out = Vec::new();
        {
            let mut w = TerminalSafe::new(&mut out, json);
            for b in writes {
                w.write_all(b).unwrap();
            }
            w.flush().unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cells_show_every_control_character() {
        // A window title, a screen clear, a cursor-up-and-erase, a bell,
        // an 8-bit CSI and a right-to-left override.
        let hostile = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[1A\u{1b}[2K\r\n\u{9b}31m\u{202e}cod.exe";
        let got = escape_cell(hostile);
        assert_eq!(
            got,
            "x\\e]0;owned\\x07\\e[2J\\e[1A\\e[2K\\r\\n\\x9b31m\\u{202e}cod.exe"
        );
        assert!(!got.chars().any(|c| c.is_control()));
        assert!(matches!(escape_cell("plain ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_output_writer_keeps_layout_and_escapes_the_rest() {
        let got = through(false, &[b"NAME\tSTATE\nevil\x1b[2J\n"]);
        assert_eq!(got, "NAME\tSTATE\nevil\\e[2J\n");
    }

    #[test]
    fn a_sequence_split_across_writes_is_still_caught() {
        // U+009B is C2 9B in UTF-8; a write boundary between the two bytes
        // must not let it through, and a plain multi-byte letter split the
        // same way must arrive intact.
        assert_eq!(through(false, &[b"a\xc2", b"\x9bb"]), "a\\x9bb");
        assert_eq!(through(false, &[b"\xc3", b"\xbc"]), "ü");
        // Not UTF-8 at all, and a sequence cut off at the end.
        assert_eq!(
            through(false, &[b"\xff ok \xe2\x80"]),
            "\\xff ok \\xe2\\x80"
        );
    }

    #[test]
    fn json_stays_valid_and_says_the_same() {
        let v = serde_json::json!({ "name": "a\u{1b}[2J\u{9b}\u{7f}\u{202e}b" });
        let raw = serde_json::to_vec(&v).unwrap();
        let got = through(true, &[&raw]);
        assert!(!got.chars().any(|c| c.is_control() || c == '\u{202e}'));
        let back: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(back, v);
    }
}
