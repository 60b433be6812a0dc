//! Where the database password comes from, in this order: the file given
//! with `--store-password-file`, `PGPASSWORD`, then the password file libpq
//! reads (`PGPASSFILE`, else `~/.pgpass`). Never the URL (url.rs refuses
//! it). Files holding it must not be readable by group or others; like
//! libpq, a loose pgpass file is ignored with a warning, while a loose
//! `--store-password-file`, which the operator named, is an error.
//! The environment is passed in, so the lookups are testable as values.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::connect::ConnectError;
use super::url::{Host, StoreUrl};

/// Reads the password for `url`; None when no source has one (the server
/// may not ask: trust or peer authentication).
pub fn resolve(
    url: &StoreUrl,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ConnectError> {
    if let Some(path) = file {
        return read_password_file(path).map(Some);
    }
    if let Some(p) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Ok(Some(p));
    }
    let passfile = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
    let Some(passfile) = passfile else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(&passfile) else {
        return Ok(None);
    };
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %passfile.display(),
            "password file is readable by group or others and is ignored: chmod 600 it"
        );
        return Ok(None);
    }
    let text = std::fs::read_to_string(&passfile).map_err(|source| ConnectError::PasswordFile {
        path: passfile.display().to_string(),
        source,
    })?;
    // libpq matches a socket connection as host "localhost".
    let host = match &url.host {
        Host::Tcp(h) => h.as_str(),
        Host::Unix(_) => "localhost",
    };
    Ok(pgpass_lookup(
        &text,
        host,
        &url.port.to_string(),
        &url.dbname,
        &url.user,
    ))
}

/// The whole file, less one trailing newline; an empty password or a
/// file others can read is refused.
pub fn read_password_file(path: &Path) -> Result<String, ConnectError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ConnectError::PasswordFile {
        path: shown.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConnectError::PasswordFileMode { path: shown, mode });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConnectError::PasswordFile {
        path: shown.clone(),
        source,
    })?;
    let p = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if p.is_empty() {
        return Err(ConnectError::PasswordFile {
            path: shown,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok(p.to_string())
}

/// The password of the first line of a pgpass file
/// (`host:port:database:user:password`, `*` matching anything, `\:` and
/// `\\` escaped, `#` lines comments) that matches.
pub fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_escaped(line);
        let [h, p, d, u, pw] = fields.as_slice() else {
            continue;
        };
        let m = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if m(h, host) && m(p, port) && m(d, db) && m(u, user) {
            return Some(pw.clone());
        }
    }
    None
}

fn split_escaped(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("never empty").push(n);
                }
            }
            // The password is the rest of the line, colons and all.
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    other:5432:*:dw:nope\n\
                    db.example:5432:fleet:dw:a\\:b\\\\c:d\n\
                    *:*:*:dw:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db.example", "5432", "fleet", "dw").as_deref(),
            Some("a:b\\c:d")
        );
        assert_eq!(
            pgpass_lookup(text, "db.example", "6432", "fleet", "dw").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup(text, "x", "1", "y", "root"), None);
        assert_eq!(pgpass_lookup("short:line\n", "short", "1", "x", "y"), None);
    }

    #[test]
    fn sources_in_order_and_loose_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = super::super::url::parse("postgres://dw@%2Ftmp%2Fs/fleet").unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(&pgpass, "localhost:5432:fleet:dw:from-pgpass\n").unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let vars: HashMap<&str, String> = [
            ("PGPASSFILE", pgpass.display().to_string()),
            ("HOME", "/nonexistent".into()),
        ]
        .into();
        let env = |k: &str| vars.get(k).cloned();
        assert_eq!(
            resolve(&url, Some(&file), &env).unwrap().as_deref(),
            Some("from-file")
        );
        assert_eq!(
            resolve(&url, None, &env).unwrap().as_deref(),
            Some("from-pgpass"),
            "a socket connection matches pgpass host localhost"
        );
        let with_pgpassword = |k: &str| {
            if k == "PGPASSWORD" {
                Some("from-env".to_string())
            } else {
                env(k)
            }
        };
        assert_eq!(
            resolve(&url, None, &with_pgpassword).unwrap().as_deref(),
            Some("from-env")
        );
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            resolve(&url, None, &env).unwrap(),
            None,
            "a loose pgpass is ignored"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = resolve(&url, Some(&file), &env).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("pw"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&file, "\n").unwrap();
        assert!(
            resolve(&url, Some(&file), &env)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let e = resolve(&url, Some(&dir.path().join("missing")), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
