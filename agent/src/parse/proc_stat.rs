//! `/proc/PID/stat`: the one line the kernel's `do_task_stat` prints per
//! process, as far as the `processes` section needs it.
//!
//! The line is `pid (comm) state ppid pgrp session tty tpgid flags minflt
//! cminflt majflt cmajflt utime stime cutime cstime priority nice threads
//! itrealvalue starttime vsize rss ...` (proc(5)). `comm` is whatever the
//! process named itself and may hold spaces, parentheses and any byte but
//! NUL, so it ends at the LAST `)` of the line; every field after it is
//! separated by one space. Fields after `rss` are not read, so a line cut
//! after `rss` still parses.

use thiserror::Error;

/// `PF_KTHREAD` in `flags`: the task is a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// What the `processes` section takes from one stat line. `comm` borrows
/// the input: the collector compares it with what it cached and copies it
/// only for a process it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat<'a> {
    pub pid: u32,
    /// The name between the parentheses, raw bytes (not necessarily UTF-8).
    pub comm: &'a [u8],
    /// The state letter (`R`, `S`, `D`, `Z`, ...).
    pub state: u8,
    pub ppid: u32,
    pub flags: u32,
    /// User and system time, clock ticks (`sysconf(_SC_CLK_TCK)`).
    pub utime: u64,
    pub stime: u64,
    /// Start, clock ticks after boot.
    pub starttime: u64,
    /// Resident set, pages.
    pub rss_pages: u64,
}

impl ProcStat<'_> {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// Why a stat line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProcStatError {
    #[error("empty stat line")]
    Empty,
    #[error("stat line does not start with a pid")]
    BadPid,
    #[error("stat line has no `(comm)`")]
    NoComm,
    #[error("stat line ends before `{0}`")]
    Missing(&'static str),
    #[error("stat field `{0}` is not a number")]
    BadNumber(&'static str),
}

/// Fields after the `)` that closes `comm`, 0-based: state is 0.
const PPID: usize = 1;
const FLAGS: usize = 6;
const UTIME: usize = 11;
const STIME: usize = 12;
const STARTTIME: usize = 19;
const RSS: usize = 21;

/// Parses one `/proc/PID/stat` text. Never panics.
pub fn parse(text: &[u8]) -> Result<ProcStat<'_>, ProcStatError> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return Err(ProcStatError::Empty);
    }
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or(ProcStatError::NoComm)?;
    let close = text
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&c| c > open)
        .ok_or(ProcStatError::NoComm)?;
    let pid = text[..open]
        .strip_suffix(b" ")
        .and_then(number::<u32>)
        .ok_or(ProcStatError::BadPid)?;
    let comm = &text[open + 1..close];
    let rest = text[close + 1..]
        .strip_prefix(b" ")
        .ok_or(ProcStatError::Missing("state"))?;

    let mut fields = [&[][..]; RSS + 1];
    let mut n = 0;
    for f in rest.split(|&b| b == b' ').take(RSS + 1) {
        fields[n] = f;
        n += 1;
    }
    let field = |i: usize, name: &'static str| -> Result<&[u8], ProcStatError> {
        if i < n {
            Ok(fields[i])
        } else {
            Err(ProcStatError::Missing(name))
        }
    };
    let state = match field(0, "state")? {
        [c] => *c,
        _ => return Err(ProcStatError::BadNumber("state")),
    };
    let num = |i: usize, name: &'static str| -> Result<u64, ProcStatError> {
        number::<u64>(field(i, name)?).ok_or(ProcStatError::BadNumber(name))
    };
    Ok(ProcStat {
        pid,
        comm,
        state,
        ppid: number::<u32>(field(PPID, "ppid")?).ok_or(ProcStatError::BadNumber("ppid"))?,
        flags: number::<u32>(field(FLAGS, "flags")?).ok_or(ProcStatError::BadNumber("flags"))?,
        utime: num(UTIME, "utime")?,
        stime: num(STIME, "stime")?,
        starttime: num(STARTTIME, "starttime")?,
        rss_pages: num(RSS, "rss")?,
    })
}

/// ASCII digits only: no sign, no spaces, no empty field.
fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The state string sysinfo's `ProcessStatus` displayed, which the
/// section has always carried.
pub fn state_name(state: u8) -> &'static str {
    match state {
        b'R' => "Runnable",
        b'S' => "Sleeping",
        b'D' => "UninterruptibleDiskSleep",
        b'Z' => "Zombie",
        b'T' => "Stopped",
        b't' => "Tracing",
        b'X' | b'x' => "Dead",
        b'K' => "Wakekill",
        b'W' => "Waking",
        b'P' => "Parked",
        b'I' => "Idle",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line (bash on a 6.x kernel), with `comm` replaced.
    fn line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 4100 4242 4242 34816 4300 4194560 2716 11843 0 3 7 5 \
             40 17 20 0 1 0 12345678 8998912 1234 18446744073709551615 1 1 0 0 0 0 \
             65536 3686404 1266761467 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn reads_the_fields_the_section_needs() {
        let text = line("bash");
        let s = parse(text.as_bytes()).unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 4242,
                comm: b"bash",
                state: b'S',
                ppid: 4100,
                flags: 4194560,
                utime: 7,
                stime: 5,
                starttime: 12345678,
                rss_pages: 1234,
            }
        );
        assert_eq!(s.cpu_ticks(), 12);
        assert!(!s.is_kernel_thread());
    }

    #[test]
    fn comm_ends_at_the_last_paren() {
        for comm in [
            "a) b (c",
            "",
            "with spaces ",
            ")",
            "((",
            "x) S 1 2 3 (y",
            "ü)",
        ] {
            let text = line(comm);
            let s = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{comm:?}: {e}"));
            assert_eq!(s.comm, comm.as_bytes(), "{comm:?}");
            assert_eq!(
                (s.pid, s.state, s.ppid, s.rss_pages),
                (4242, b'S', 4100, 1234)
            );
        }
    }

    #[test]
    fn comm_need_not_be_utf8() {
        let mut text = b"7 (a\xff\xfeb) R 1 ".to_vec();
        text.extend_from_slice(b"0 0 0 0 2097216 0 0 0 0 1 2 0 0 20 0 1 0 99 0 0\n");
        let s = parse(&text).unwrap();
        assert_eq!(s.comm, b"a\xff\xfeb");
        assert_eq!(s.starttime, 99);
    }

    #[test]
    fn kernel_threads_are_flagged() {
        let text = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 1 0 0 \
            18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let s = parse(text).unwrap();
        assert!(s.is_kernel_thread());
        assert_eq!((s.ppid, s.rss_pages, s.stime), (0, 0, 3));
        // tty_nr -1 (field 7) is not read, so it does not matter that it is signed.
    }

    #[test]
    fn a_line_cut_after_rss_parses() {
        let text = line("bash");
        let cut = text.find(" 18446744073709551615").unwrap();
        assert_eq!(parse(&text.as_bytes()[..cut]).unwrap().rss_pages, 1234);
    }

    #[test]
    fn truncated_and_malformed_lines_are_errors() {
        let full = line("x) y");
        let bytes = full.as_bytes();
        let rss_end = full.find(" 18446744073709551615").unwrap();
        // Every cut before the end of rss is an error, never a panic or a
        // wrong value; a cut inside rss would read a smaller number, so
        // the bench and the collector read whole lines.
        for cut in 0..rss_end - 4 {
            assert!(
                parse(&bytes[..cut]).is_err(),
                "cut at {cut}: {:?}",
                &full[..cut]
            );
        }
        assert_eq!(parse(b""), Err(ProcStatError::Empty));
        assert_eq!(parse(b"\n"), Err(ProcStatError::Empty));
        assert_eq!(parse(b"12 bash S 1"), Err(ProcStatError::NoComm));
        assert_eq!(parse(b"12 )bash( S 1"), Err(ProcStatError::NoComm));
        assert_eq!(parse(b"x (bash) S 1"), Err(ProcStatError::BadPid));
        assert_eq!(parse(b"(bash) S 1"), Err(ProcStatError::BadPid));
        assert_eq!(parse(b"12 (bash)"), Err(ProcStatError::Missing("state")));
        assert_eq!(parse(b"12 (bash) S"), Err(ProcStatError::Missing("ppid")));
        assert_eq!(
            parse(b"12 (bash) SS 1"),
            Err(ProcStatError::BadNumber("state"))
        );
        assert_eq!(
            parse(b"12 (bash) S -1"),
            Err(ProcStatError::BadNumber("ppid"))
        );
        let bad_rss = full.replace(" 1234 ", " 12a4 ");
        assert_eq!(
            parse(bad_rss.as_bytes()),
            Err(ProcStatError::BadNumber("rss"))
        );
    }

    #[test]
    fn state_names_are_sysinfos() {
        assert_eq!(state_name(b'R'), "Runnable");
        assert_eq!(state_name(b'I'), "Idle");
        assert_eq!(state_name(b'x'), "Dead");
        assert_eq!(state_name(b'?'), "Unknown");
    }

    #[test]
    fn every_live_stat_file_parses() {
        let mut n = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            // Gone between readdir and read: nothing to check.
            let Ok(text) = std::fs::read(e.path().join("stat")) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let s = parse(&text).unwrap_or_else(|err| {
                panic!(
                    "/proc/{pid}/stat: {err}: {}",
                    String::from_utf8_lossy(&text)
                )
            });
            assert_eq!(s.pid, pid);
            assert_ne!(state_name(s.state), "Unknown", "{pid}");
            n += 1;
        }
        assert!(n > 1, "read {n} stat files");
    }
}
