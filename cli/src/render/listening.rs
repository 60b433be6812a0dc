//! The `listening` table: one row per socket, those open to every
//! interface marked `!` (what an operator checks first).

use driftwatch_common::proto::ListeningSection;

use super::table::{Table, clip};

pub fn render(s: &ListeningSection) -> String {
    let all = s.sockets.iter().filter(|x| x.scope == "all").count() as u64;
    let mut out = format!(
        "{} ({all} on all interfaces, {} without a process seen)\n",
        super::count(s.sockets.len() as u64, "listening socket"),
        s.unowned
    );
    let mut t = Table::new([
        "", "PROTO", "ADDRESS", "PORT", "SCOPE", "USER", "PID", "PROCESS",
    ]);
    for x in &s.sockets {
        let (users, pids, exes) = if x.owners.is_empty() {
            (String::new(), String::new(), "?".to_string())
        } else {
            let mut users: Vec<&str> = x.owners.iter().map(|o| o.user.as_str()).collect();
            users.dedup();
            let mut exes: Vec<&str> = x
                .owners
                .iter()
                .map(|o| {
                    if o.exe.is_empty() {
                        o.name.as_str()
                    } else {
                        o.exe.as_str()
                    }
                })
                .collect();
            exes.sort();
            exes.dedup();
            let pids: Vec<String> = x.owners.iter().map(|o| o.pid.to_string()).collect();
            (users.join(","), pids.join(","), exes.join(","))
        };
        t.row([
            if x.scope == "all" { "!" } else { "" }.to_string(),
            x.protocol.clone(),
            clip(&x.address, 40),
            x.port.to_string(),
            x.scope.clone(),
            clip(&users, 24),
            clip(&pids, 24),
            clip(&exes, 60),
        ]);
    }
    if !t.is_empty() {
        out.push_str(&t.render());
    }
    for p in &s.problems {
        let at = if p.line > 0 {
            format!("{}:{}", p.source, p.line)
        } else {
            p.source.clone()
        };
        out.push_str(&format!("! {at}: {}\n", p.message));
    }
    out
}

#[cfg(test)]
mod tests {
    use driftwatch_common::proto::{ListeningProblem, ListeningSocket, SocketOwner};

    use super::*;

    #[test]
    fn rows_mark_all_interfaces_and_name_owners() {
        let owner = |pid, exe: &str, user: &str| SocketOwner {
            pid,
            exe: exe.into(),
            user: user.into(),
            ..Default::default()
        };
        let s = ListeningSection {
            sockets: vec![
                ListeningSocket {
                    protocol: "tcp".into(),
                    address: "0.0.0.0".into(),
                    port: 443,
                    scope: "all".into(),
                    owners: vec![
                        owner(700, "/usr/sbin/nginx", "www-data"),
                        owner(701, "/usr/sbin/nginx", "www-data"),
                    ],
                    ..Default::default()
                },
                ListeningSocket {
                    protocol: "udp".into(),
                    address: "127.0.0.53".into(),
                    port: 53,
                    scope: "loopback".into(),
                    ..Default::default()
                },
            ],
            problems: vec![ListeningProblem {
                source: "/proc/net/tcp".into(),
                line: 4,
                message: "bad".into(),
            }],
            unowned: 1,
        };
        assert_eq!(
            render(&s),
            "2 listening sockets (1 on all interfaces, 1 without a process seen)\n\
             \u{20}  PROTO  ADDRESS     PORT  SCOPE     USER      PID      PROCESS\n\
             !  tcp    0.0.0.0     443   all       www-data  700,701  /usr/sbin/nginx\n\
             \u{20}  udp    127.0.0.53  53    loopback                     ?\n\
             ! /proc/net/tcp:4: bad\n"
        );
    }
}
