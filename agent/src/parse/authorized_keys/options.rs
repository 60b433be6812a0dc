//! The options field of an authorized_keys line, with sshd's grammar:
//! comma-separated `name` or `name="value"`, where a value may hold commas
//! and spaces and `\"` stands for a quote. The field ends at the first
//! whitespace outside quotes.

use driftwatch_common::proto::KeyOption;

/// Options sshd knows. Anything else makes sshd reject the whole line.
const FLAGS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-touch-required",
    "no-user-rc",
    "no-x11-forwarding",
    "port-forwarding",
    "pty",
    "restrict",
    "touch-required",
    "user-rc",
    "verify-required",
    "x11-forwarding",
];
const WITH_VALUE: &[&str] = &[
    "command",
    "environment",
    "expiry-time",
    "from",
    "permitlisten",
    "permitopen",
    "principals",
    "tunnel",
];

/// Parses the options at the start of `s`. Returns them and the byte index
/// where the options field ends (at the whitespace before the key type).
pub fn parse(s: &str) -> Result<(Vec<KeyOption>, usize), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        let start = i;
        while i < b.len() && !matches!(b[i], b'=' | b',' | b' ' | b'\t') {
            if b[i] == b'"' {
                return Err(format!(
                    "unexpected quote in option name at column {}",
                    i + 1
                ));
            }
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("empty option at column {}", i + 1));
        }
        let mut opt = KeyOption {
            name,
            value: String::new(),
            has_value: false,
        };
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i >= b.len() || b[i] != b'"' {
                return Err(format!(
                    "option {:?}: value must be in double quotes",
                    opt.name
                ));
            }
            i += 1;
            let (value, next) = dequote(s, i)
                .ok_or_else(|| format!("option {:?}: unterminated quoted value", opt.name))?;
            opt.value = value;
            opt.has_value = true;
            i = next;
        }
        out.push(opt);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b' ' | b'\t') => return Ok((out, i)),
            None => return Err("options but no key after them".into()),
            Some(_) => {
                return Err(format!(
                    "unexpected character after option {:?} at column {}",
                    out.last().map(|o| o.name.as_str()).unwrap_or(""),
                    i + 1
                ));
            }
        }
    }
}

/// Reads a quoted value starting just after the opening quote; returns it
/// and the index after the closing quote. Only `\"` is an escape, as in
/// sshd: other backslashes stay literal.
fn dequote(s: &str, mut i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 2;
            }
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// What sshd would object to in options that otherwise parse.
pub fn problems(opts: &[KeyOption]) -> Vec<String> {
    let mut out = Vec::new();
    for o in opts {
        let flag = FLAGS.contains(&o.name.as_str());
        let valued = WITH_VALUE.contains(&o.name.as_str());
        if !flag && !valued {
            out.push(format!(
                "unknown option {:?}: sshd ignores this whole line",
                o.name
            ));
        } else if flag && o.has_value {
            out.push(format!("option {:?} takes no value", o.name));
        } else if valued && !o.has_value {
            out.push(format!("option {:?} needs a value", o.name));
        }
    }
    out
}

/// True when `word` (up to the first `=` or `,`) is an option name sshd
/// knows: used to tell an options field from an unknown key type.
pub fn starts_with_known_option(word: &str) -> bool {
    let name = word
        .split(['=', ','])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    FLAGS.contains(&name.as_str()) || WITH_VALUE.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(s: &str) -> (Vec<(String, String)>, String) {
        let (opts, end) = parse(s).unwrap();
        (
            opts.into_iter().map(|o| (o.name, o.value)).collect(),
            s[end..].to_string(),
        )
    }

    fn nv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn quoted_commas_spaces_and_escaped_quotes() {
        let (o, rest) = names_values(
            r#"from="10.0.0.1,*.example.com",command="echo \"a, b\" c\\d",No-Pty ssh-ed25519 AAAA"#,
        );
        assert_eq!(
            o,
            nv(&[
                ("from", "10.0.0.1,*.example.com"),
                ("command", r#"echo "a, b" c\\d"#),
                ("no-pty", ""),
            ])
        );
        assert_eq!(rest, " ssh-ed25519 AAAA");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s: &str| parse(s).unwrap_err();
        assert!(e(r#"command="never ends ssh-rsa AAAA"#).contains("unterminated"));
        assert!(e("from=10.0.0.1 ssh-rsa AAAA").contains("double quotes"));
        assert!(e("restrict,,pty ssh-rsa").contains("empty option"));
        assert!(e(r#"command="x"y ssh-rsa"#).contains("unexpected character"));
        assert!(e("restrict").contains("no key"));
    }

    #[test]
    fn unknown_and_misused_options_are_problems() {
        let (o, _) = parse(r#"restrict,bogus,pty="x",from ssh-rsa"#).unwrap();
        let p = problems(&o);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("unknown option \"bogus\""));
        assert!(p[1].contains("takes no value"));
        assert!(p[2].contains("needs a value"));
        assert!(starts_with_known_option("Restrict,pty"));
        assert!(!starts_with_known_option("name@example.com"));
    }
}
