use driftwatch_common::proto::HostSection;

use super::table::human_bytes;

pub fn render(h: &HostSection) -> String {
    let mut rows = vec![
        ("hostname", h.hostname.clone()),
        ("os", h.os_pretty_name.clone()),
        ("kernel", h.kernel.clone()),
        ("arch", h.arch.clone()),
        ("machine-id", h.machine_id.clone()),
        ("product uuid", h.product_uuid.clone()),
        ("cloud instance", h.cloud_instance_id.clone()),
    ];
    if h.cpu_count > 0 {
        rows.push(("cpus", h.cpu_count.to_string()));
        rows.push(("memory", human_bytes(h.memory_total_bytes)));
    }
    if h.uptime_s > 0 {
        rows.push((
            "uptime",
            humantime::format_duration(std::time::Duration::from_secs(h.uptime_s)).to_string(),
        ));
    }
    rows.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k:<15} {v}\n"))
        .collect()
}
