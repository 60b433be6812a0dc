//! The `listening` section: TCP sockets in LISTEN and bound UDP sockets
//! from `/proc/net/{tcp,tcp6,udp,udp6}`, each with the processes holding
//! it, found by reading the links of `/proc/PID/fd` (`socket:[INODE]`).
//!
//! Everything is read under the root (`<root>/proc`), so an agent in a
//! container given the host's procfs at `/host/proc` with `--root /host`
//! describes the host, and tests give it a fake tree. The tables describe
//! the network namespace of whoever mounted that procfs; the fd walk finds
//! owners only among the processes that procfs shows.
//!
//! Links are read, never followed: a `/proc/PID/fd/N` link points at the
//! open file itself (a pipe, a device, a file on any mount), and its target
//! text is all we need.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use driftwatch_common::caps;
use driftwatch_common::proto::{
    ListeningProblem, ListeningSection, ListeningSocket, SocketOwner, section::Body,
};
use driftwatch_common::section::SectionKind;

use super::{Collector, Context, SectionError, passwd};
use crate::hostfs::{FsError, HostFs, MAX_CONFIG_BYTES};
use crate::parse::proc_net::{self, Table};

/// A socket table line is ~150 bytes; 64 MiB is some 400,000 sockets
/// (established connections included, which must be read to be skipped).
const MAX_TABLE_BYTES: u64 = 64 << 20;
/// Open descriptors looked at per collection, all processes together: a
/// host with a million open files costs the agent this much and says so.
pub const MAX_FDS: usize = 2_000_000;
/// The Uid line is within the first ~400 bytes of status.
const STATUS_READ_BYTES: u64 = 1024;

pub struct ListeningCollector {
    max_fds: usize,
    max_processes: usize,
}

impl Default for ListeningCollector {
    fn default() -> Self {
        ListeningCollector {
            max_fds: MAX_FDS,
            max_processes: caps::PROCESSES,
        }
    }
}

impl Collector for ListeningCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Listening
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let mut s = ListeningSection::default();
        let mut tables_read = 0;
        for table in Table::ALL {
            let path = table.path();
            let text = match ctx.fs.read_file(path, MAX_TABLE_BYTES) {
                Ok(t) => t,
                // No IPv6 in this kernel: no tcp6/udp6.
                Err(FsError::NotFound { .. }) => continue,
                Err(e) => {
                    problem(&mut s, path, 0, e.to_string());
                    continue;
                }
            };
            tables_read += 1;
            let mut body = text.text.as_str();
            if text.truncated {
                problem(
                    &mut s,
                    path,
                    0,
                    format!("larger than {MAX_TABLE_BYTES} bytes: sockets past it are not listed"),
                );
                body = body.rfind('\n').map_or("", |i| &body[..i]);
            }
            let (socks, bad) = proc_net::parse(body, table);
            for (line, why) in bad {
                problem(&mut s, path, line, why);
            }
            s.sockets.extend(socks.into_iter().map(|n| ListeningSocket {
                protocol: table.protocol().into(),
                family: table.family().into(),
                address: n.address.to_string(),
                port: n.port.into(),
                scope: proc_net::scope(&n.address).into(),
                uid: n.uid,
                inode: n.inode,
                owners: Vec::new(),
            }));
        }
        if tables_read == 0 {
            return Err(SectionError::Unsupported(format!(
                "no socket tables under {}/proc/net (is procfs mounted there?)",
                ctx.fs.root().display().to_string().trim_end_matches('/')
            )));
        }
        self.find_owners(&ctx.fs, &mut s);
        s.unowned = s.sockets.iter().filter(|x| x.owners.is_empty()).count() as u64;
        s.sockets.sort_by(|a, b| {
            (&a.protocol, a.port, &a.address, &a.family, a.inode).cmp(&(
                &b.protocol,
                b.port,
                &b.address,
                &b.family,
                b.inode,
            ))
        });
        Ok(Body::Listening(s))
    }
}

fn problem(s: &mut ListeningSection, source: &str, line: u32, message: String) {
    s.problems.push(ListeningProblem {
        source: source.into(),
        line,
        message,
    });
}

impl ListeningCollector {
    /// Walks `<root>/proc/*/fd` once, filling the owners of every socket.
    fn find_owners(&self, fs_: &HostFs, s: &mut ListeningSection) {
        let mut by_inode: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, x) in s.sockets.iter().enumerate() {
            by_inode.entry(x.inode).or_default().push(i);
        }
        if by_inode.is_empty() {
            return;
        }
        let proc_dir = fs_.lexical("/proc");
        // A link in place of <root>/proc would take the walk out of the
        // tree (to the agent's own /proc, say): refused, not followed.
        if fs::symlink_metadata(&proc_dir).is_ok_and(|m| m.file_type().is_symlink()) {
            problem(
                s,
                "/proc",
                0,
                "is a symbolic link; not followed: no socket has an owner".into(),
            );
            return;
        }
        let Ok(rd) = fs::read_dir(&proc_dir) else {
            problem(s, "/proc", 0, "unreadable: no socket has an owner".into());
            return;
        };
        let users: HashMap<u32, String> = fs_
            .read_file("/etc/passwd", MAX_CONFIG_BYTES)
            .map(|t| passwd::parse(&t.text).0)
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.uid, a.name))
            .collect();
        let mut pids: Vec<u32> = rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        if pids.len() > self.max_processes {
            let msg = format!(
                "{} processes beyond the bound of {}: their sockets' owners are not looked for",
                pids.len() - self.max_processes,
                self.max_processes
            );
            problem(s, "/proc", 0, msg);
            pids.truncate(self.max_processes);
        }
        let mut fds_seen = 0usize;
        let mut unreadable = 0usize;
        let mut path = PathBuf::new();
        for pid in pids {
            if fds_seen >= self.max_fds {
                let msg = format!(
                    "stopped at {} open descriptors: owners of the remaining processes' sockets are not looked for",
                    self.max_fds
                );
                problem(s, "/proc", 0, msg);
                break;
            }
            path.clone_from(&proc_dir);
            path.push(pid.to_string());
            path.push("fd");
            let Ok(fds) = fs::read_dir(&path) else {
                // Exited meanwhile, or hidden from us (not root, hidepid).
                unreadable += 1;
                continue;
            };
            let mut owner: Option<SocketOwner> = None;
            for fd in fds.flatten() {
                fds_seen += 1;
                if fds_seen > self.max_fds {
                    break;
                }
                // readlink(2): the link itself, never what it points at.
                let Ok(target) = fs::read_link(fd.path()) else {
                    continue;
                };
                let Some(inode) = proc_net::socket_inode(target.as_os_str().as_bytes()) else {
                    continue;
                };
                let Some(idx) = by_inode.get(&inode) else {
                    continue;
                };
                let o = owner.get_or_insert_with(|| read_owner(&proc_dir, pid, &users));
                for &i in idx {
                    if !s.sockets[i].owners.iter().any(|x| x.pid == pid) {
                        s.sockets[i].owners.push(o.clone());
                    }
                }
            }
        }
        if unreadable > 0 && s.sockets.iter().any(|x| x.owners.is_empty()) {
            let msg = format!(
                "{unreadable} process fd directories could not be read (exited, or not ours to read)"
            );
            problem(s, "/proc", 0, msg);
        }
        for x in &mut s.sockets {
            x.owners.sort_by_key(|o| o.pid);
        }
    }
}

/// exe, real uid and comm of a process; what cannot be read stays empty.
fn read_owner(proc_dir: &std::path::Path, pid: u32, users: &HashMap<u32, String>) -> SocketOwner {
    let dir = proc_dir.join(pid.to_string());
    let exe = fs::read_link(dir.join("exe"))
        .map(|p| {
            let b = p.as_os_str().as_bytes();
            String::from_utf8_lossy(b.strip_suffix(b" (deleted)").unwrap_or(b)).into_owned()
        })
        .unwrap_or_default();
    let uid = read_small(&dir.join("status"))
        .and_then(|t| proc_net::status_uid(&t))
        .unwrap_or(u32::MAX);
    let name = read_small(&dir.join("comm"))
        .map(|t| t.trim_end().to_string())
        .unwrap_or_default();
    SocketOwner {
        pid,
        exe,
        uid,
        user: users.get(&uid).cloned().unwrap_or_else(|| match uid {
            u32::MAX => String::new(),
            u => u.to_string(),
        }),
        name,
    }
}

/// A small procfs file, bounded. Opened with O_NOFOLLOW: under a fake or
/// foreign root these names must be files, not links elsewhere.
fn read_small(p: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
        .ok()?;
    let mut buf = Vec::new();
    f.take(STATUS_READ_BYTES).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
#[path = "listening_tests.rs"]
mod tests;
