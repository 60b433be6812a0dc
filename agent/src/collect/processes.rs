//! The `processes` section, read from /proc directly. It always reads the
//! live process table of the PID namespace the agent runs in; `--root` only
//! changes which /etc/passwd names the users (run the agent with the host's
//! PID namespace in a container).
//!
//! Per collection and process this is one read of `/proc/PID/stat` (state,
//! ppid, flags, CPU times, start time, RSS) and one `fstat` of the open
//! file. What does not change while a process lives (exe, cmdline, name,
//! real uid) is read once and kept, keyed by pid and start time, so a pid
//! reused by a new process is read afresh. sysinfo, which this replaced,
//! read `status`, `stat` and `statm` for every pid on every refresh
//! (BENCHMARKS.md, "Agent: CPU of one full collection").

use driftwatch_common::section::SectionKind;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use driftwatch_common::caps;
use driftwatch_common::proto::{Process, ProcessesSection, section::Body};
use tracing::debug;

use super::{Collector, Context, SectionError, passwd};
use crate::parse::proc_stat::{self, ProcStat};

/// Command lines longer than this are cut: a few programs carry megabytes
/// of arguments and the report must stay small.
const MAX_CMDLINE_BYTES: usize = 4096;

/// How much of `/proc/PID/cmdline` is read: the cut above plus room for
/// the NULs between arguments. A command line still longer is cut where
/// the read stopped (marked `…` like any cut); only one with more than
/// 1,024 NULs (arguments, empty ones included) in its first 5 KiB is cut
/// earlier than reading it whole did.
const CMDLINE_READ_BYTES: usize = MAX_CMDLINE_BYTES + 1024;

/// A stat line is ~300 bytes; everything the section reads ends well
/// before 1 KiB even with a 64-byte kernel-thread name and every number
/// at its widest.
const STAT_READ_BYTES: usize = 1024;

/// The `Uid:` line is the 9th of `/proc/PID/status`, within its first
/// ~400 bytes (the first line holds the name, at most 64 escaped bytes).
const STATUS_READ_BYTES: usize = 1024;

/// Machine constants, read once.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// `sysconf(_SC_CLK_TCK)`: the unit of CPU and start times in stat.
    ticks_per_sec: u64,
    page_size: u64,
    /// `btime` of /proc/stat: boot, seconds since the epoch.
    boot_time: u64,
    /// Online CPUs: a process cannot use more than this many at 100%.
    cpus: u64,
}

/// What stays put while a process lives, and what the next collection
/// needs to compute CPU%.
struct Known {
    starttime: u64,
    /// `comm` as stat gave it when exe/cmdline/uid were read: `execve`
    /// renames the process, so a different comm means read them again.
    comm: Vec<u8>,
    name: String,
    exe: String,
    cmdline: Vec<String>,
    uid: u32,
    /// Owner (uid, gid) of /proc/PID/stat when `uid` was read; see
    /// [`ProcessCollector::collect`] on what a change of it means.
    owner: (u32, u32),
    cpu_ticks: u64,
    /// The collection that last saw it; older entries are dropped.
    seen: u64,
}

/// Keeps what it read about each process across ticks, so CPU
/// percentages mean "since the last collection" and exe, cmdline and uid
/// are read once per process.
pub struct ProcessCollector {
    clock: Option<Clock>,
    known: HashMap<u32, Known>,
    /// The start of the previous collection.
    last: Option<Instant>,
    generation: u64,
    /// At most this many processes are read per collection
    /// ([`caps::PROCESSES`]); the rest of /proc is only counted, so
    /// neither the section nor `known` grows past it.
    cap: usize,
    /// Processes the last collection counted beyond `cap`.
    left_out: u64,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector {
            clock: None,
            known: HashMap::new(),
            last: None,
            generation: 0,
            cap: caps::PROCESSES,
            left_out: 0,
        }
    }
}

impl Collector for ProcessCollector {
    fn kind(&self) -> SectionKind {
        SectionKind::Processes
    }

    /// A collection whose result is dropped: it fills the per-process
    /// cache (the cold reads of exe, cmdline and status) and the CPU
    /// times the next collection measures against.
    fn prime(&mut self, ctx: &Context) {
        let _ = self.collect(ctx);
    }

    fn take_truncation(&mut self) -> caps::Truncation {
        let mut t = caps::Truncation::default();
        t.add("processes", std::mem::take(&mut self.left_out), self.cap);
        t
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        let clock = match self.clock {
            Some(c) => c,
            None => *self.clock.insert(Clock::read()?),
        };
        let now = Instant::now();
        let elapsed = self.last.map(|t| now.duration_since(t).as_secs_f64());
        self.last = Some(now);
        self.generation += 1;
        let generation = self.generation;

        let dir = std::fs::read_dir("/proc")
            .map_err(|e| SectionError::Unsupported(format!("process table unavailable: {e}")))?;
        let users = ctx
            .fs
            .read_file("/etc/passwd", crate::hostfs::MAX_CONFIG_BYTES)
            .map(|t| passwd::parse(&t.text).0)
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.uid, a.name))
            .collect::<HashMap<_, _>>();

        let mut path = String::with_capacity(32);
        let mut buf = [0u8; STAT_READ_BYTES];
        let mut processes = Vec::with_capacity(self.known.len().min(self.cap) + 16);
        self.left_out = 0;
        for entry in dir {
            // Only thread-group leaders are listed in /proc; threads live
            // under /proc/PID/task and are not processes of their own.
            let Some(pid) = entry
                .ok()
                .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
            else {
                continue;
            };
            if processes.len() >= self.cap {
                // Counted, not read: what is over the cap costs a readdir
                // entry. /proc lists pids in ascending order, so the
                // processes kept are the lowest pids.
                self.left_out += 1;
                continue;
            }
            path.clear();
            let _ = write!(path, "/proc/{pid}/stat");
            let (n, owner) = match read_stat(&path, &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    // Gone since readdir (ENOENT, ESRCH) or hidden
                    // (hidepid): not in this collection.
                    if !gone(&e) {
                        debug!(pid, error = %e, "skipping process: stat unreadable");
                    }
                    continue;
                }
            };
            let stat = match proc_stat::parse(&buf[..n]) {
                Ok(s) if s.pid == pid => s,
                // Empty: it exited while we read.
                Ok(_) | Err(proc_stat::ProcStatError::Empty) => continue,
                Err(e) => {
                    debug!(pid, error = %e, "skipping process: stat malformed");
                    continue;
                }
            };
            let prev_ticks = match self.known.get_mut(&pid) {
                Some(k) if k.starttime == stat.starttime => {
                    if k.comm != stat.comm {
                        // It called execve (or renamed itself): what it
                        // runs may have changed.
                        if !k.refresh(&mut path, &stat, owner) {
                            continue;
                        }
                    } else if k.owner != owner && !stat.is_kernel_thread() {
                        // Its credentials changed; see `read_uid` below.
                        match read_uid(&mut path, pid) {
                            Some(uid) => (k.uid, k.owner) = (uid, owner),
                            None => continue,
                        }
                    }
                    Some(k.cpu_ticks)
                }
                _ => {
                    // New, or the pid was reused by another process.
                    let Some(k) = Known::read(&mut path, &stat, owner) else {
                        continue;
                    };
                    self.known.insert(pid, k);
                    None
                }
            };
            let k = self.known.get_mut(&pid).expect("inserted or found above");
            k.seen = generation;
            k.cpu_ticks = stat.cpu_ticks();
            let cpu_percent = match (prev_ticks, elapsed) {
                (Some(prev), Some(secs)) if secs > 0.0 => {
                    let used = k.cpu_ticks.saturating_sub(prev) as f64 / clock.ticks_per_sec as f64;
                    (used / secs * 100.0).min(clock.cpus as f64 * 100.0) as f32
                }
                // First sighting: no interval to measure over.
                _ => 0.0,
            };
            processes.push(Process {
                pid,
                ppid: stat.ppid,
                user: users
                    .get(&k.uid)
                    .cloned()
                    .unwrap_or_else(|| k.uid.to_string()),
                uid: k.uid,
                name: k.name.clone(),
                exe: k.exe.clone(),
                cmdline: k.cmdline.clone(),
                rss_bytes: stat.rss_pages.saturating_mul(clock.page_size),
                cpu_percent,
                cpu_time_ms: k.cpu_ticks.saturating_mul(1000) / clock.ticks_per_sec,
                start_time: clock.boot_time + stat.starttime / clock.ticks_per_sec,
                state: proc_stat::state_name(stat.state).to_string(),
                kernel_thread: stat.is_kernel_thread(),
                count: 0,
            });
        }
        // Processes that exited since the last collection.
        self.known.retain(|_, k| k.seen == generation);
        processes.sort_by_key(|p| p.pid);
        Ok(Body::Processes(ProcessesSection { processes }))
    }
}

impl Known {
    /// Reads what is kept for a process first seen with `stat`. None if
    /// it exited meanwhile.
    fn read(path: &mut String, stat: &ProcStat<'_>, owner: (u32, u32)) -> Option<Known> {
        let mut k = Known {
            starttime: stat.starttime,
            comm: Vec::new(),
            name: String::new(),
            exe: String::new(),
            cmdline: Vec::new(),
            uid: 0,
            owner,
            cpu_ticks: stat.cpu_ticks(),
            seen: 0,
        };
        k.refresh(path, stat, owner).then_some(k)
    }

    /// (Re)reads name, exe, cmdline and uid. False if the process is gone.
    fn refresh(&mut self, path: &mut String, stat: &ProcStat<'_>, owner: (u32, u32)) -> bool {
        let pid = stat.pid;
        self.comm.clear();
        self.comm.extend_from_slice(stat.comm);
        self.name = String::from_utf8_lossy(stat.comm).into_owned();
        self.owner = owner;
        if stat.is_kernel_thread() {
            // No executable, no command line, and the kernel's own
            // credentials (init_cred: uid 0).
            self.exe.clear();
            self.cmdline.clear();
            self.uid = 0;
            return true;
        }
        // uid first: the one read that tells a process that has exited.
        let Some(uid) = read_uid(path, pid) else {
            return false;
        };
        self.uid = uid;
        path.clear();
        let _ = write!(path, "/proc/{pid}/exe");
        // Unreadable (another user's process when not root): empty, as
        // sysinfo left it.
        self.exe = std::fs::read_link(&*path)
            .map(|p| {
                let b = p.as_os_str().as_encoded_bytes();
                // Linux appends this to a replaced or deleted binary.
                String::from_utf8_lossy(b.strip_suffix(b" (deleted)").unwrap_or(b)).into_owned()
            })
            .unwrap_or_default();
        path.clear();
        let _ = write!(path, "/proc/{pid}/cmdline");
        self.cmdline = read_cmdline(path);
        true
    }
}

impl Clock {
    fn read() -> Result<Clock, SectionError> {
        let stat = std::fs::read_to_string("/proc/stat")
            .map_err(|e| SectionError::Unsupported(format!("process table unavailable: {e}")))?;
        let boot_time = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            .ok_or_else(|| SectionError::Failed("no btime in /proc/stat".into()))?;
        Ok(Clock {
            ticks_per_sec: sysconf(libc::_SC_CLK_TCK).unwrap_or(100),
            page_size: sysconf(libc::_SC_PAGESIZE).unwrap_or(4096),
            boot_time,
            cpus: sysconf(libc::_SC_NPROCESSORS_ONLN).unwrap_or(1),
        })
    }
}

#[allow(unsafe_code)]
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf takes no pointer and only reads a system setting.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

/// A process that exited between readdir and the read: not an error.
fn gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// Reads /proc/PID/stat into `buf` (one read: the line fits) and returns
/// its length and the file's owner (uid, gid).
fn read_stat(path: &str, buf: &mut [u8]) -> std::io::Result<(usize, (u32, u32))> {
    let mut f = File::open(path)?;
    let mut n = 0;
    // The kernel hands out the whole line in the first read; a second
    // read (which would return 0) is saved by stopping at its newline.
    while n < buf.len() && !buf[..n].ends_with(b"\n") {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if n == buf.len() && !buf.ends_with(b"\n") {
        // Longer than any stat line; keep the whole fields.
        n = buf.iter().rposition(|&b| b == b' ').unwrap_or(0);
    }
    let m = f.metadata()?;
    Ok((n, (m.uid(), m.gid())))
}

/// The REAL uid of a process: the first field of `Uid:` in
/// /proc/PID/status. None if it could not be read (the process is gone).
///
/// Why status, once, and when again. The owner of /proc/PID (and of every
/// file in it) is the process's *effective* uid/gid while it is dumpable,
/// and root when it is not (`task_dump_owner`), so it cannot stand in for
/// the real uid: a setuid program (real = the user, effective = root) or
/// any daemon that dropped privileges (changing the euid clears
/// dumpability) would show up as root. So the uid comes from status, read
/// when a process is first seen and again when:
/// - its comm changes: `execve` renames the process, and a setuid exec or
///   a `sudo` that set the real uid before exec is caught here; and
/// - the owner of its stat file (free: `fstat` of the file just read)
///   changes: the euid moved while the process stayed dumpable, or it
///   turned dumpable/non-dumpable, which happens exactly when credentials
///   change.
///
/// Not caught, and not caught before either (sysinfo read the uid once per
/// process, `UpdateKind::OnlyIfNotSet`): a process that changes its real
/// uid in place while its owner stays the same. The common case is a root
/// daemon seen in the few milliseconds before it drops to a service user:
/// it was root (owner 0, dumpable) and is now non-dumpable (owner 0 again).
/// Reading status on every collection would catch it at the cost this
/// change removes; the kernel's process connector (PROC_EVENT_UID) would
/// catch it for free but needs CAP_NET_ADMIN and a listener.
fn read_uid(path: &mut String, pid: u32) -> Option<u32> {
    path.clear();
    let _ = write!(path, "/proc/{pid}/status");
    let mut text = Vec::with_capacity(STATUS_READ_BYTES);
    File::open(&*path)
        .ok()?
        .take(STATUS_READ_BYTES as u64)
        .read_to_end(&mut text)
        .ok()?;
    if text.is_empty() {
        return None;
    }
    // The Uid line is always within the first few hundred bytes; without
    // it the uid is unknown, as before.
    let uid = find(&text, b"\nUid:")
        .map(|at| &text[at + 5..])
        .and_then(|line| line.split(|&b| b == b'\n').next())
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|line| line.split_whitespace().next()?.parse().ok());
    Some(uid.unwrap_or(u32::MAX))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// /proc/PID/cmdline: arguments separated by NULs (empty ones dropped, as
/// sysinfo did), bounded. Unreadable or empty (a zombie): no arguments.
fn read_cmdline(path: &str) -> Vec<String> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    let mut buf = Vec::with_capacity(512);
    if f.take(CMDLINE_READ_BYTES as u64)
        .read_to_end(&mut buf)
        .is_err()
    {
        return Vec::new();
    }
    let cut = buf.len() == CMDLINE_READ_BYTES;
    bounded_cmdline(
        buf.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(String::from_utf8_lossy),
        cut,
    )
}

/// Keeps at most MAX_CMDLINE_BYTES of arguments, cutting on a char
/// boundary and marking the cut with `…`. `cut_short` says the input was
/// itself cut (its last argument is partial), so it is marked as well.
fn bounded_cmdline<'a>(
    args: impl Iterator<Item = std::borrow::Cow<'a, str>>,
    cut_short: bool,
) -> Vec<String> {
    let mut total = 0;
    let mut out = Vec::new();
    for a in args {
        if total + a.len() > MAX_CMDLINE_BYTES {
            let room = MAX_CMDLINE_BYTES.saturating_sub(total);
            let mut cut = room.min(a.len());
            while !a.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(format!("{}…", &a[..cut]));
            return out;
        }
        total += a.len();
        out.push(a.into_owned());
    }
    if cut_short && let Some(last) = out.last_mut() {
        last.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostfs::HostFs;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    fn proc_pids() -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    fn collect(c: &mut ProcessCollector) -> Vec<Process> {
        let ctx = Context {
            fs: HostFs::default(),
        };
        let Body::Processes(s) = c.collect(&ctx).unwrap() else {
            panic!("wrong body")
        };
        s.processes
    }

    fn my_uid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap()
    }

    /// Kills and reaps the child when the test ends, pass or fail.
    struct Kid(Child);
    impl Drop for Kid {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn(cmd: &str, args: &[&str]) -> Kid {
        // spawn returns once the exec happened, so /proc shows the new
        // program, not a copy of this one.
        Kid(Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap())
    }

    /// Right after exec a `sleep` is still running its start-up code, so
    /// its state is R for a moment; wait (bounded) until the kernel says S.
    fn wait_until_sleeping(pid: u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let state = stat.rsplit_once(") ").unwrap().1.chars().next();
            if state == Some('S') {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} never went to sleep: {stat}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_process_table_over_the_cap_is_read_to_the_cap_and_the_rest_counted() {
        let mut c = ProcessCollector {
            cap: 3,
            ..Default::default()
        };
        let _kids: Vec<Kid> = (0..4).map(|_| spawn("sleep", &["30"])).collect();
        let ctx = Context {
            fs: HostFs::default(),
        };
        let s = crate::collect::run_one(&mut c, &ctx);
        let on_proc = proc_pids().len() as u64;
        let Some(Body::Processes(p)) = &s.body else {
            panic!("{s:?}")
        };
        assert_eq!(p.processes.len(), 3);
        assert!(c.known.len() <= 3, "{} known", c.known.len());
        // /proc is the oracle; processes may come and go between the reads.
        assert!(
            s.items_truncated + 3 >= on_proc.saturating_sub(2)
                && s.items_truncated + 3 <= on_proc + 2,
            "{} left out of {on_proc} on /proc",
            s.items_truncated
        );
        assert_eq!(
            s.truncated,
            format!(
                "truncated: {} processes beyond the cap of 3",
                s.items_truncated
            )
        );
        // The count is per collection, not carried over.
        assert_eq!(c.take_truncation().total(), 0);
    }

    #[test]
    fn matches_proc_and_finds_this_test_process() {
        let mut c = ProcessCollector::default();
        let processes = collect(&mut c);
        let from_proc = proc_pids().len() as f64;
        let got = processes.len() as f64;
        // Counted at different moments while parallel tests start and
        // reap children: 10%, but never fewer than 10.
        assert!(
            (got - from_proc).abs() <= (from_proc * 0.1).max(10.0),
            "collected {got} vs /proc {from_proc}"
        );

        let me = std::process::id();
        let p = processes
            .iter()
            .find(|p| p.pid == me)
            .expect("own process listed");
        let exe = std::fs::read_link(format!("/proc/{me}/exe")).unwrap();
        assert_eq!(p.exe, exe.to_string_lossy());
        assert!(p.rss_bytes > 0);
        // uid from /proc/self/status agrees and is named from /etc/passwd.
        let uid = my_uid();
        assert_eq!(p.uid, uid);
        if uid == 0 {
            assert_eq!(p.user, "root");
        }
        assert!(!p.kernel_thread);
        assert!(
            ["Runnable", "Sleeping"].contains(&p.state.as_str()),
            "{}",
            p.state
        );
        // Started within the last day, after boot, in seconds since the epoch.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            p.start_time <= now + 1 && p.start_time + 86_400 > now,
            "{}",
            p.start_time
        );
        assert!(processes.windows(2).all(|w| w[0].pid < w[1].pid));
    }

    #[test]
    fn a_child_is_listed_with_its_parent_exe_cmdline_and_uid() {
        let kid = spawn("sleep", &["999", "1"]);
        let pid = kid.0.id();
        wait_until_sleeping(pid);
        let mut c = ProcessCollector::default();
        let processes = collect(&mut c);
        let p = processes
            .iter()
            .find(|p| p.pid == pid)
            .expect("child listed");
        assert_eq!(p.ppid, std::process::id());
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(p.exe, exe.to_string_lossy());
        assert!(!p.exe.is_empty());
        assert_eq!(p.cmdline, ["sleep", "999", "1"]);
        assert_eq!(p.name, "sleep");
        assert_eq!(p.uid, my_uid());
        assert!(!p.kernel_thread);
        assert_eq!(p.state, "Sleeping");
        assert_eq!(p.cpu_percent, 0.0, "first sighting");
    }

    #[test]
    fn kernel_threads_are_flagged() {
        // kthreadd is pid 2 unless we run in a PID namespace of our own.
        let Ok(stat) = std::fs::read_to_string("/proc/2/stat") else {
            return;
        };
        if !stat.starts_with("2 (kthreadd)") {
            return;
        }
        let mut c = ProcessCollector::default();
        let processes = collect(&mut c);
        let k = processes
            .iter()
            .find(|p| p.pid == 2)
            .expect("kthreadd listed");
        assert!(k.kernel_thread);
        assert_eq!(
            (k.name.as_str(), k.exe.as_str(), k.uid),
            ("kthreadd", "", 0)
        );
        assert!(k.cmdline.is_empty());
        let me = processes
            .iter()
            .find(|p| p.pid == std::process::id())
            .unwrap();
        assert!(!me.kernel_thread);
    }

    #[test]
    fn cpu_percent_of_a_busy_child_is_measured_from_the_second_collection() {
        let kid = spawn("sh", &["-c", "while :; do :; done"]);
        let pid = kid.0.id();
        let mut c = ProcessCollector::default();
        let first = collect(&mut c);
        let p = first.iter().find(|p| p.pid == pid).expect("listed");
        assert_eq!(p.cpu_percent, 0.0);
        // Enough wall time for several clock ticks of CPU even on a busy box.
        std::thread::sleep(Duration::from_millis(600));
        let second = collect(&mut c);
        let p = second.iter().find(|p| p.pid == pid).expect("listed");
        assert!(p.cpu_percent > 0.0, "{}", p.cpu_percent);
        assert!(p.cpu_percent <= 100.0 * c.clock.unwrap().cpus as f32);
        assert!(p.cpu_time_ms > 0);
    }

    #[test]
    fn after_priming_the_first_collection_measures_cpu() {
        let kid = spawn("sh", &["-c", "while :; do :; done"]);
        let pid = kid.0.id();
        let mut c = ProcessCollector::default();
        c.prime(&Context {
            fs: HostFs::default(),
        });
        assert!(c.known.contains_key(&pid), "the prime fills the cache");
        std::thread::sleep(Duration::from_millis(600));
        let first = collect(&mut c);
        let p = first.iter().find(|p| p.pid == pid).expect("listed");
        assert!(p.cpu_percent > 0.0, "{}", p.cpu_percent);
    }

    #[test]
    fn exited_processes_leave_the_cache() {
        let mut kid = spawn("sleep", &["998"]);
        let pid = kid.0.id();
        let mut c = ProcessCollector::default();
        collect(&mut c);
        assert!(c.known.contains_key(&pid));
        kid.0.kill().unwrap();
        kid.0.wait().unwrap();
        let processes = collect(&mut c);
        assert!(!c.known.contains_key(&pid));
        assert!(processes.iter().all(|p| p.pid != pid));
        assert_eq!(c.known.len(), processes.len());
    }

    #[test]
    fn a_reused_pid_or_an_exec_is_read_afresh() {
        let me = std::process::id();
        let exe = std::fs::read_link(format!("/proc/{me}/exe")).unwrap();
        let mut c = ProcessCollector::default();
        collect(&mut c);
        let fake = |c: &mut ProcessCollector| {
            let k = c.known.get_mut(&me).unwrap();
            k.exe = "/stale".into();
            k.cmdline = vec!["stale".into()];
            k.uid = 12345;
        };
        // Same pid and start time, same comm: the cache is trusted.
        fake(&mut c);
        let p = collect(&mut c).into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!(p.exe, "/stale");
        // Another start time: another process under the same pid.
        fake(&mut c);
        c.known.get_mut(&me).unwrap().starttime += 1;
        let p = collect(&mut c).into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!(p.exe, exe.to_string_lossy());
        assert_eq!(p.uid, my_uid());
        assert_eq!(p.cpu_percent, 0.0, "a new process has no interval yet");
        // Another comm: it called execve.
        fake(&mut c);
        c.known.get_mut(&me).unwrap().comm = b"before-exec".to_vec();
        let p = collect(&mut c).into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!(p.exe, exe.to_string_lossy());
        assert_ne!(p.cmdline, ["stale"]);
        // Another owner of /proc/PID: credentials changed, uid re-read only.
        fake(&mut c);
        c.known.get_mut(&me).unwrap().owner.0 ^= 1;
        let p = collect(&mut c).into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!((p.uid, p.exe.as_str()), (my_uid(), "/stale"));
    }

    #[test]
    fn cmdlines_are_bounded_on_char_boundaries() {
        let long = "é".repeat(5000);
        let out = bounded_cmdline(
            ["ls".into(), long.as_str().into(), "x".into()].into_iter(),
            false,
        );
        assert_eq!(out.len(), 2);
        assert!(out[1].ends_with('…'));
        assert!(out.iter().map(|s| s.len()).sum::<usize>() <= MAX_CMDLINE_BYTES + 4);
        // A read that stopped early marks its partial last argument.
        let out = bounded_cmdline(["ls".into(), "-l".into()].into_iter(), true);
        assert_eq!(out, ["ls", "-l…"]);
        let out = bounded_cmdline(["ls".into()].into_iter(), false);
        assert_eq!(out, ["ls"]);
    }

    #[test]
    fn own_status_uid_is_the_real_one() {
        let mut path = String::new();
        assert_eq!(read_uid(&mut path, std::process::id()), Some(my_uid()));
        assert_eq!(read_uid(&mut path, u32::MAX), None);
    }
}
