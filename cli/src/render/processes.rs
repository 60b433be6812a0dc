use driftwatch_common::proto::ProcessesSection;

use super::table::{Table, clip, human_bytes};
use super::{Options, SortBy};

pub fn render(p: &ProcessesSection, opts: &Options) -> String {
    let mut procs: Vec<_> = p.processes.iter().collect();
    match opts.sort {
        SortBy::Pid => procs.sort_by_key(|p| p.pid),
        SortBy::Mem => procs.sort_by_key(|p| std::cmp::Reverse(p.rss_bytes)),
        SortBy::Cpu => procs.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent)),
    }
    let shown = if opts.limit > 0 {
        opts.limit.min(procs.len())
    } else {
        procs.len()
    };
    let mut t = Table::new(["PID", "USER", "RSS", "CPU%", "CPU TIME", "COMMAND"]);
    for p in &procs[..shown] {
        let cmd = if p.cmdline.is_empty() {
            format!("[{}]", p.name)
        } else {
            p.cmdline.join(" ")
        };
        t.row([
            p.pid.to_string(),
            p.user.clone(),
            human_bytes(p.rss_bytes),
            format!("{:.1}", p.cpu_percent),
            format!("{:.1}s", p.cpu_time_ms as f64 / 1000.0),
            clip(&cmd, 100),
        ]);
    }
    let mut out = format!(
        "{}\n",
        super::count_of(p.processes.len() as u64, "process", "processes")
    );
    out.push_str(&t.render());
    if shown < procs.len() {
        out.push_str(&format!(
            "… {} more (use --limit 0 for all)\n",
            procs.len() - shown
        ));
    }
    out
}
