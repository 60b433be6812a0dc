//! The open-file limit. Every agent connection is a descriptor, and the
//! soft limit a shell or a container hands a daemon is often 1,024 while
//! the hard limit is far higher: a server that never raises it refuses
//! connections with "too many open files" long before its own cap.

use std::io;

/// Soft and hard `RLIMIT_NOFILE` after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard one. Never above it, so no
/// privilege is needed and an operator's explicit hard limit (systemd's
/// `LimitNOFILE=`, `ulimit -Hn`) stays the ceiling.
#[allow(unsafe_code)]
pub fn raise_to_hard() -> io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            lim = raised;
        }
    }
    Ok(NofileLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft_now() -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let soft = line.split_whitespace().nth(3).unwrap();
        soft.parse().unwrap_or(u64::MAX)
    }

    #[test]
    fn soft_limit_ends_at_the_hard_one() {
        let got = raise_to_hard().unwrap();
        assert_eq!(got.soft, got.hard);
        // The kernel's own account agrees ("unlimited" reads as MAX).
        assert_eq!(soft_now(), got.soft);
        // A second call changes nothing.
        assert_eq!(raise_to_hard().unwrap(), got);
    }
}
