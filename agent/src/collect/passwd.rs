//! `/etc/passwd`: the users the host knows, for uid → name and for homes.

/// One account line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// The password field read as a state, never kept: None when it is
    /// `x` (the state is in shadow), else what the field itself says
    /// ("empty": no password at all; see `parse::accounts`).
    pub passwd_state: Option<&'static str>,
}

/// Parses passwd text. Malformed lines are returned with their 1-based line
/// number and a reason, never dropped silently.
pub fn parse(text: &str) -> (Vec<Account>, Vec<(usize, String)>) {
    let mut accounts = Vec::new();
    let (records, mut errors) = crate::parse::colon_file::records(text, 7);
    for (line_no, f) in records {
        let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) else {
            errors.push((
                line_no,
                format!("uid {:?} or gid {:?} is not a number", f[2], f[3]),
            ));
            continue;
        };
        accounts.push(Account {
            name: f[0].to_string(),
            uid,
            gid,
            home: f[5].to_string(),
            shell: f[6].to_string(),
            passwd_state: (f[1] != "x").then(|| crate::parse::accounts::password_state(f[1])),
        });
    }
    // Field-count problems came first: report them all in line order.
    errors.sort_by_key(|p| p.0);
    (accounts, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accounts_and_reports_bad_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\r\n# c\n\nbad:line\nsvc:x:999:998::/srv/svc:/usr/sbin/nologin\n+::::::\nx:x:a:0::/:/bin/sh\n";
        let (acc, errs) = parse(text);
        assert_eq!(acc.len(), 2);
        assert_eq!(acc[0].shell, "/bin/bash");
        assert_eq!(acc[1].home, "/srv/svc");
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4, 7]);
    }
}
