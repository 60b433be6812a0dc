//! The sudoers lexer as a cursor over one logical line: words, quoted
//! strings, lists and command arguments with sudoers' escaping rules.

use super::Member;

pub(super) struct Cursor {
    s: Vec<char>,
    i: usize,
}

/// Characters that end an unquoted name in a list.
fn ends_name(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ':' | '=' | '(' | ')' | '!')
}

impl Cursor {
    pub fn new(s: &str) -> Self {
        Cursor {
            s: s.chars().collect(),
            i: 0,
        }
    }

    pub fn pos(&self) -> usize {
        self.i
    }

    pub fn set_pos(&mut self, i: usize) {
        self.i = i;
    }

    pub fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_str(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        if self.s.len() >= self.i + n && self.s[self.i..self.i + n].iter().copied().eq(w.chars()) {
            self.i += n;
            true
        } else {
            false
        }
    }

    /// A keyword followed by something that cannot continue a name.
    pub fn eat_keyword(&mut self, w: &str) -> bool {
        let save = self.i;
        if self.eat_str(w)
            && self
                .peek()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        {
            return true;
        }
        self.i = save;
        false
    }

    /// A `#` that starts a comment: not `#123` (a uid).
    fn at_comment(&self) -> bool {
        self.peek() == Some('#') && !self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
    }

    /// Skips blanks, and a comment up to the end of the line. Whether
    /// anything was skipped.
    pub fn skip_ws(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
        if self.at_comment() {
            self.i = self.s.len();
        }
        self.i > start
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    pub fn expect_end(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.at_end() {
            return Ok(());
        }
        let rest: String = self.s[self.i..].iter().take(40).collect();
        Err(format!("syntax error near {rest:?}"))
    }

    /// `[A-Za-z0-9_]*`.
    pub fn ident(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            out.push(c);
            self.i += 1;
        }
        out
    }

    fn quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unexpected line break in string".into()),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c) => out.push(c),
                    None => return Err("unexpected line break in string".into()),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// A quoted string, or an unquoted word up to a blank or `,` (a value,
    /// an include path). `in_value` also stops at nothing else; names stop
    /// at list punctuation too.
    pub fn word(&mut self, in_value: bool) -> Result<String, String> {
        if self.eat('"') {
            return self.quoted();
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' || (!in_value && (c == ':' || c == ')')) {
                break;
            }
            self.i += 1;
            if c == '\\' {
                match self.bump() {
                    Some(e) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn name(&mut self) -> Result<String, String> {
        if self.eat('"') {
            let s = self.quoted()?;
            if s.is_empty() {
                return Err("empty string".into());
            }
            return Ok(s);
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            // `#` inside a name is literal; at its start it is a uid.
            if ends_name(c) {
                break;
            }
            self.i += 1;
            if c == '\\' {
                match self.bump() {
                    Some(e) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// A comma-separated list of names (users, hosts, run-as), each
    /// possibly negated; empty when none starts here.
    pub fn list(&mut self) -> Result<Vec<Member>, String> {
        self.sep_by_comma(|c| {
            c.skip_ws();
            let mut negated = false;
            while c.eat('!') {
                negated = !negated;
                c.skip_ws();
            }
            let name = c.name()?;
            match name.as_str() {
                "" if negated => Err("syntax error: '!' before nothing".into()),
                "%" | "%:" | "%#" | "%:#" => Err("empty group".into()),
                "+" => Err("empty netgroup".into()),
                _ => Ok(Member { negated, name }),
            }
        })
        .map(|v| v.into_iter().filter(|m| !m.name.is_empty()).collect())
    }

    /// Items parsed by `f`, separated by commas (blanks around them).
    pub fn sep_by_comma<T>(
        &mut self,
        mut f: impl FnMut(&mut Cursor) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = vec![f(self)?];
        loop {
            let save = self.i;
            self.skip_ws();
            if !self.eat(',') {
                self.i = save;
                return Ok(out);
            }
            out.push(f(self)?);
        }
    }

    /// A regular expression word: `^` up to a `$` that ends the word.
    fn regex(&mut self) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.bump() {
            out.push(c);
            if c == '\\' {
                if let Some(e) = self.bump() {
                    out.push(e);
                }
                continue;
            }
            if c == '$'
                && self
                    .peek()
                    .is_none_or(|n| n.is_whitespace() || n == ',' || n == ':')
            {
                return Ok(out);
            }
        }
        Err("unterminated regular expression".into())
    }

    /// A command's first word: a path, a regex, `ALL`, an alias,
    /// `sudoedit`, `list`.
    pub fn command_word(&mut self) -> Result<String, String> {
        if self.peek() == Some('^') {
            return self.regex();
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' || c == ':' {
                break;
            }
            self.i += 1;
            if c == '\\' {
                match self.bump() {
                    Some(e) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// A command's arguments: up to an unescaped `,` or `:`, a comment or
    /// the end; escapes resolved, each regex argument checked.
    pub fn args(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let blanks = self.skip_ws();
            match self.peek() {
                None | Some(',') | Some(':') => break,
                Some('^') if blanks || out.is_empty() => {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    let r = self.regex()?;
                    out.push_str(&r);
                    continue;
                }
                _ => {}
            }
            if blanks && !out.is_empty() {
                out.push(' ');
            }
            while let Some(c) = self.peek() {
                if c.is_whitespace() || c == ',' || c == ':' {
                    break;
                }
                self.i += 1;
                if c == '\\' {
                    match self.bump() {
                        Some(e) => out.push(e),
                        None => break,
                    }
                } else {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}
