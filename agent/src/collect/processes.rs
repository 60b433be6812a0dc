//! The `processes` section, from sysinfo (/proc). It always reads the live
//! process table of the PID namespace the agent runs in; `--root` only
//! changes which /etc/passwd names the users (run the agent with the host's
//! PID namespace in a container).

use std::collections::HashMap;

use driftwatch_common::proto::{Process, ProcessesSection, section::Body};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, ThreadKind, UpdateKind};

use super::{Collector, Context, SectionError, passwd};

/// Command lines longer than this are cut: a few programs carry megabytes
/// of arguments and the report must stay small.
const MAX_CMDLINE_BYTES: usize = 4096;

/// Keeps the process table across ticks so CPU percentages mean "since the
/// last collection".
#[derive(Default)]
pub struct ProcessCollector {
    system: Option<System>,
}

impl Collector for ProcessCollector {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn collect(&mut self, ctx: &Context) -> Result<Body, SectionError> {
        if self.system.is_none() {
            let s = System::new().map_err(|e| {
                SectionError::Unsupported(format!("process table unavailable: {e}"))
            })?;
            self.system = Some(s);
        }
        let sys = self.system.as_mut().expect("set above");
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            // Without tasks: sysinfo would otherwise list every thread as a
            // process of its own (read from /proc/PID/task/*) only for us to
            // drop them below; on 600 processes that was most of the cost.
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_memory()
                .with_cpu()
                .with_user(UpdateKind::OnlyIfNotSet)
                .with_exe(UpdateKind::OnlyIfNotSet)
                .with_cmd(UpdateKind::OnlyIfNotSet),
        );
        let users = ctx
            .fs
            .read_file("/etc/passwd", crate::hostfs::MAX_CONFIG_BYTES)
            .map(|t| passwd::parse(&t.text).0)
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.uid, a.name))
            .collect::<HashMap<_, _>>();
        let mut processes: Vec<Process> = sys
            .processes()
            .values()
            // sysinfo lists threads too when they are tasks of a process.
            .filter(|p| p.thread_kind() != Some(ThreadKind::Userland))
            .map(|p| {
                let uid = p.user_id().map(|u| **u).unwrap_or(u32::MAX);
                Process {
                    pid: p.pid().as_u32(),
                    ppid: p.parent().map(|p| p.as_u32()).unwrap_or(0),
                    user: users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()),
                    uid,
                    name: p.name().to_string_lossy().into_owned(),
                    exe: p
                        .exe()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    cmdline: bounded_cmdline(p.cmd().iter().map(|a| a.to_string_lossy())),
                    rss_bytes: p.memory(),
                    cpu_percent: p.cpu_usage(),
                    cpu_time_ms: p.accumulated_cpu_time(),
                    start_time: p.start_time(),
                    state: p.status().to_string(),
                    kernel_thread: p.thread_kind() == Some(ThreadKind::Kernel),
                    count: 0,
                }
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        Ok(Body::Processes(ProcessesSection { processes }))
    }
}

fn bounded_cmdline<'a>(args: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Vec<String> {
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
            break;
        }
        total += a.len();
        out.push(a.into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostfs::HostFs;

    fn proc_pids() -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    #[test]
    fn matches_proc_and_finds_this_test_process() {
        let mut c = ProcessCollector::default();
        let ctx = Context {
            fs: HostFs::default(),
        };
        let Body::Processes(s) = c.collect(&ctx).unwrap() else {
            panic!("wrong body")
        };
        let from_proc = proc_pids().len() as f64;
        let got = s.processes.len() as f64;
        assert!(
            (got - from_proc).abs() <= from_proc * 0.1,
            "sysinfo {got} vs /proc {from_proc}"
        );

        let me = std::process::id();
        let p = s
            .processes
            .iter()
            .find(|p| p.pid == me)
            .expect("own process listed");
        let exe = std::fs::read_link(format!("/proc/{me}/exe")).unwrap();
        assert_eq!(p.exe, exe.to_string_lossy());
        assert!(p.rss_bytes > 0);
        // uid from /proc/self/status agrees and is named from /etc/passwd.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid: u32 = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap();
        assert_eq!(p.uid, uid);
        if uid == 0 {
            assert_eq!(p.user, "root");
        }
        assert!(s.processes.windows(2).all(|w| w[0].pid < w[1].pid));
    }

    #[test]
    fn cmdlines_are_bounded_on_char_boundaries() {
        let long = "é".repeat(5000);
        let out = bounded_cmdline(["ls".into(), long.as_str().into(), "x".into()].into_iter());
        assert_eq!(out.len(), 2);
        assert!(out.iter().map(|s| s.len()).sum::<usize>() <= MAX_CMDLINE_BYTES + 4);
    }
}
