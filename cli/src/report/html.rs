//! The fleet report as one self-contained HTML page: inline CSS, one small
//! inline script, no URL to anywhere (the page is mailed around and opened
//! offline; a fetched font or script would also tell a third party who
//! reads it). Pure: the report in, the page out.
//!
//! Every string in it that hosts wrote (hostnames, key comments, array
//! names, finding messages quoting them) goes through [`esc`]: control
//! characters become visible escapes as in the terminal, then `& < > " '`
//! become entities, so nothing a host says is markup or script.

use std::collections::HashMap;
use std::fmt::Write as _;

use driftwatch_common::proto::Finding;
use driftwatch_common::time::format_ms;

use super::model::{Cell, FleetReport, HOST_WIDE, HostRow, RaidHost, SharedKey};
use crate::render::escape::escape_cell;

/// Rows of the shared-keys table, and hostnames per key, before "and N
/// more": the page is for reading, `keys find` has the whole list.
const MAX_SHARED_KEYS: usize = 100;
const MAX_KEY_HOSTS: usize = 20;

/// Text for HTML content and attribute values (always double-quoted).
pub fn esc(s: &str) -> String {
    let visible = escape_cell(s);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The element id of a host's detail: `#host-ID` links to it.
fn detail_id(host_id: &str) -> String {
    format!("host-{host_id}")
}

const STYLE: &str = r#"
:root { --critical:#7f1d1d; --high:#dc2626; --medium:#f97316; --low:#facc15; --info:#93c5fd;
  --ok:#bbf7d0; --none:#f3f4f6; --error:#9ca3af; --fg:#111827; --muted:#6b7280; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 1.5em; }
h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin: 1.6em 0 .5em; }
.meta, small, .muted { color: var(--muted); }
table { border-collapse: collapse; margin: .3em 0; }
th, td { padding: .25em .6em; text-align: left; vertical-align: top; border-bottom: 1px solid #e5e7eb; }
thead th { font-weight: 600; border-bottom: 2px solid #d1d5db; white-space: nowrap; }
.counts { display: flex; gap: .6em; flex-wrap: wrap; padding: 0; list-style: none; }
.counts li { padding: .4em .9em; border-radius: .4em; }
.counts li:not([class]) { background: var(--none); }
.counts b { font-size: 1.4em; margin-left: .3em; }
.grid td.cell { text-align: center; min-width: 6.5em; font-variant-numeric: tabular-nums; }
.grid tr.group th { background: #e5e7eb; font-size: 1.05em; }
.sev-critical { background: var(--critical); color: #fff; } .sev-high { background: var(--high); color: #fff; }
.sev-medium { background: var(--medium); } .sev-low { background: var(--low); } .sev-info { background: var(--info); }
.st-ok { background: var(--ok); } .st-none { background: var(--none); color: var(--muted); }
.st-error { background: repeating-linear-gradient(45deg, var(--none), var(--none) 4px, var(--error) 4px, var(--error) 6px); }
.v-healthy { background: var(--ok); } .v-warning { background: var(--low); } .v-rebuilding { background: var(--info); }
.v-degraded { background: var(--high); color: #fff; } .v-failed { background: var(--critical); color: #fff; }
.v-unknown { background: var(--error); }
.legend span { display: inline-block; padding: .1em .6em; margin-right: .3em; border-radius: .3em; }
td.msg { max-width: 60em; } code { font-size: .95em; word-break: break-all; }
details.host { border: 1px solid #e5e7eb; border-radius: .4em; margin: .3em 0; padding: .3em .8em; }
details.host[open] { background: #fafafa; } details.host summary { cursor: pointer; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; } dt { color: var(--muted); }
a { color: #1d4ed8; }
"#;

/// Opens the detail a `#host-…` link (or the page's address) names, so a
/// click on a host in the grid shows its detail; without script the link
/// still jumps there and the detail opens by its own click.
const SCRIPT: &str = r#"
(function () {
  function openFromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var d = id && document.getElementById(id);
    if (d && d.tagName === "DETAILS") { d.open = true; d.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openFromHash);
  openFromHash();
})();
"#;

pub fn render(r: &FleetReport) -> String {
    let open = r.findings.len();
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>driftwatch fleet report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>driftwatch fleet report</h1>\n<p class=\"meta\">generated {} · {} · {}</p></header>\n",
        esc(&format_ms(r.generated_ms)),
        plural(r.hosts, "host"),
        plural(open as u64, "open finding"),
    );
    summary(&mut h, r);
    grid(&mut h, r);
    findings(&mut h, &r.findings);
    shared_keys(&mut h, &r.shared_keys);
    raid(&mut h, &r.raid);
    details(&mut h, r);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn summary(h: &mut String, r: &FleetReport) {
    h.push_str("<section id=\"summary\">\n<ul class=\"counts\">\n");
    let _ = writeln!(
        h,
        "<li>hosts<b data-count=\"hosts\">{}</b></li>\n<li>open findings<b data-count=\"open-findings\">{}</b></li>",
        r.hosts,
        r.findings.len()
    );
    for s in r.by_severity.iter().rev() {
        let w = esc(&s.severity);
        let _ = writeln!(
            h,
            "<li class=\"sev-{w}\">{w}<b data-count=\"severity-{w}\">{}</b></li>",
            s.open
        );
    }
    h.push_str("</ul>\n</section>\n");
}

fn grid(h: &mut String, r: &FleetReport) {
    h.push_str(
        "<section id=\"grid\">\n<h2>Hosts by group</h2>\n<p class=\"legend\">cells: open findings, coloured by the worst \
         <span class=\"sev-critical\">critical</span><span class=\"sev-high\">high</span>\
         <span class=\"sev-medium\">medium</span><span class=\"sev-low\">low</span>\
         <span class=\"sev-info\">info</span><span class=\"st-ok\">ok: none open</span>\
         <span class=\"st-error\">section failed</span><span class=\"st-none\">not reported</span> \
         · click a host for its detail</p>\n<table class=\"grid\">\n<thead><tr><th>host</th><th>state</th>",
    );
    for c in &r.columns {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead>\n");
    let span = r.columns.len() + 2;
    for g in &r.groups {
        let name = if g.name.is_empty() {
            "(no group)".to_string()
        } else {
            format!("group={}", g.name)
        };
        let _ = writeln!(
            h,
            "<tbody data-group=\"{}\"><tr class=\"group\"><th colspan=\"{span}\">{} <small>{}</small></th></tr>",
            esc(&g.name),
            esc(&name),
            plural(g.hosts.len() as u64, "host")
        );
        for host in &g.hosts {
            grid_row(h, r, host);
        }
        h.push_str("</tbody>\n");
    }
    h.push_str("</table>\n</section>\n");
}

fn grid_row(h: &mut String, r: &FleetReport, host: &HostRow) {
    let id = esc(&host.host_id);
    let _ = write!(
        h,
        "<tr class=\"host\" data-host=\"{id}\"><th><a href=\"#{}\">{}</a><br><small>{id}</small></th><td>{}</td>",
        esc(&detail_id(&host.host_id)),
        esc(&host.hostname),
        esc(&host.state),
    );
    for (col, cell) in r.columns.iter().zip(&host.cells) {
        let (class, text) = cell_look(col, cell);
        let _ = write!(
            h,
            "<td class=\"cell {class}\" data-section=\"{}\" data-open=\"{}\" title=\"{}: {}\">{}</td>",
            esc(col),
            cell.open,
            esc(col),
            esc(&cell_title(cell)),
            text
        );
    }
    h.push_str("</tr>\n");
}

/// (CSS class, cell text) — both ours, never a host's.
fn cell_look(col: &str, c: &Cell) -> (&'static str, String) {
    if c.open > 0 {
        let class = match c.worst.as_str() {
            "critical" => "sev-critical",
            "high" => "sev-high",
            "medium" => "sev-medium",
            "low" => "sev-low",
            _ => "sev-info",
        };
        return (class, c.open.to_string());
    }
    match c.status.as_str() {
        "ok" => ("st-ok", "✓".into()),
        "" if col == HOST_WIDE => ("st-ok", "✓".into()),
        "" => ("st-none", "–".into()),
        "error" => ("st-error", "error".into()),
        // unsupported, or a word a newer agent uses: shown, not judged.
        _ => ("st-none", "n/a".into()),
    }
}

fn cell_title(c: &Cell) -> String {
    let status = if c.status.is_empty() {
        String::new()
    } else {
        format!("section {}; ", c.status)
    };
    if c.open == 0 {
        format!("{status}no open finding")
    } else {
        format!("{status}{} open, worst {}", c.open, c.worst)
    }
}

fn finding_rows(h: &mut String, findings: &[&Finding], with_host: bool) {
    h.push_str("<table>\n<thead><tr><th>severity</th>");
    if with_host {
        h.push_str("<th>host</th>");
    }
    h.push_str(
        "<th>kind</th><th>section</th><th>since</th><th>finding</th></tr></thead>\n<tbody>\n",
    );
    for f in findings {
        let sev = esc(&f.severity);
        let _ = write!(
            h,
            "<tr class=\"finding\" data-severity=\"{sev}\" data-host=\"{}\"><td class=\"sev-{sev}\">{sev}</td>",
            esc(&f.host_id)
        );
        if with_host {
            let _ = write!(
                h,
                "<td><a href=\"#{}\">{}</a><br><small>{}</small></td>",
                esc(&detail_id(&f.host_id)),
                esc(&f.hostname),
                esc(&f.host_id)
            );
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td class=\"msg\">{}</td></tr>",
            esc(&f.kind),
            esc(&f.section),
            esc(&format_ms(f.first_seen_ms)),
            esc(&f.message)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn findings(h: &mut String, findings: &[Finding]) {
    let _ = writeln!(
        h,
        "<section id=\"findings\">\n<h2>Open findings ({})</h2>",
        findings.len()
    );
    if findings.is_empty() {
        h.push_str("<p>none</p>\n");
    } else {
        finding_rows(h, &findings.iter().collect::<Vec<_>>(), true);
    }
    h.push_str("</section>\n");
}

fn shared_keys(h: &mut String, keys: &[SharedKey]) {
    let _ = writeln!(
        h,
        "<section id=\"keys\">\n<h2>Keys on many hosts ({})</h2>",
        keys.len()
    );
    if keys.is_empty() {
        h.push_str("<p>no key is on more than one host</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table>\n<thead><tr><th>hosts</th><th>key</th><th>comments</th><th>users</th><th>on</th></tr></thead>\n<tbody>\n",
    );
    for k in keys.iter().take(MAX_SHARED_KEYS) {
        let mut on: Vec<String> = k
            .hosts
            .iter()
            .take(MAX_KEY_HOSTS)
            .map(|(id, name)| format!("<a href=\"#{}\">{}</a>", esc(&detail_id(id)), esc(name)))
            .collect();
        if k.hosts.len() > MAX_KEY_HOSTS {
            on.push(format!("and {} more", k.hosts.len() - MAX_KEY_HOSTS));
        }
        let _ = writeln!(
            h,
            "<tr class=\"shared-key\" data-hosts=\"{}\"><td>{}</td><td>{} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            k.hosts.len(),
            k.hosts.len(),
            esc(&k.label),
            esc(&k.fingerprint),
            esc(&k.comments.join(", ")),
            esc(&k.users.join(", ")),
            on.join(", ")
        );
    }
    h.push_str("</tbody>\n</table>\n");
    if keys.len() > MAX_SHARED_KEYS {
        let _ = writeln!(
            h,
            "<p class=\"muted\">and {} more; <code>driftwatch keys find --fingerprint …</code> lists every line</p>",
            keys.len() - MAX_SHARED_KEYS
        );
    }
    h.push_str("</section>\n");
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "healthy" => "v-healthy",
        "warning" => "v-warning",
        "rebuilding" => "v-rebuilding",
        "degraded" => "v-degraded",
        "failed" => "v-failed",
        _ => "v-unknown",
    }
}

fn raid_units(h: &mut String, r: &RaidHost) {
    if r.units.is_empty() && r.problems.is_empty() {
        h.push_str("<span class=\"muted\">no arrays or controllers</span>");
    }
    for u in &r.units {
        let _ = write!(
            h,
            "<div><span class=\"{}\">{}</span> <b>{}</b> {}{}</div>",
            verdict_class(&u.verdict),
            esc(&u.verdict),
            esc(&u.name),
            esc(&u.state),
            if u.reasons.is_empty() {
                String::new()
            } else {
                format!(" — {}", esc(&u.reasons.join("; ")))
            }
        );
    }
    for p in &r.problems {
        let _ = write!(h, "<div class=\"muted\">could not read {}</div>", esc(p));
    }
}

fn raid(h: &mut String, hosts: &[RaidHost]) {
    let _ = writeln!(
        h,
        "<section id=\"raid\">\n<h2>RAID ({})</h2>",
        plural(hosts.len() as u64, "host")
    );
    if hosts.is_empty() {
        h.push_str("<p>no host reports RAID</p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr><th>host</th><th>verdict</th><th>arrays and controllers</th></tr></thead>\n<tbody>\n");
    for r in hosts {
        let _ = write!(
            h,
            "<tr class=\"raid\" data-verdict=\"{}\"><td><a href=\"#{}\">{}</a></td><td class=\"{}\">{}</td><td>",
            esc(&r.verdict),
            esc(&detail_id(&r.host_id)),
            esc(&r.hostname),
            verdict_class(&r.verdict),
            esc(&r.verdict),
        );
        raid_units(h, r);
        h.push_str("</td></tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn details(h: &mut String, r: &FleetReport) {
    let mut by_host: HashMap<&str, Vec<&Finding>> = HashMap::new();
    for f in &r.findings {
        by_host.entry(f.host_id.as_str()).or_default().push(f);
    }
    let raid: HashMap<&str, &RaidHost> = r.raid.iter().map(|x| (x.host_id.as_str(), x)).collect();
    h.push_str("<section id=\"hosts\">\n<h2>Host detail</h2>\n");
    for host in r.groups.iter().flat_map(|g| &g.hosts) {
        let _ = writeln!(
            h,
            "<details class=\"host\" id=\"{}\"><summary><b>{}</b> <small>{}</small> · {}</summary>",
            esc(&detail_id(&host.host_id)),
            esc(&host.hostname),
            esc(&host.host_id),
            plural(host.open_findings, "open finding")
        );
        let labels = host
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sections = r
            .columns
            .iter()
            .zip(&host.cells)
            .filter(|(_, c)| !c.status.is_empty())
            .map(|(n, c)| format!("{n}: {}", c.status))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            h,
            "<dl><dt>os</dt><dd>{}</dd><dt>state</dt><dd>{}</dd><dt>last seen</dt><dd>{}</dd>\
             <dt>labels</dt><dd>{}</dd><dt>sections</dt><dd>{}</dd><dt>key lines</dt><dd>{}</dd></dl>",
            esc(&host.os),
            esc(&host.state),
            esc(&format_ms(host.last_seen_ms)),
            esc(&labels),
            esc(&sections),
            host.keys
        );
        if let Some(f) = by_host.get(host.host_id.as_str()) {
            finding_rows(h, f, false);
        }
        if let Some(x) = raid.get(host.host_id.as_str()) {
            h.push_str("<h3>RAID</h3>");
            raid_units(h, x);
        }
        h.push_str("</details>\n");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{finding, host, with_key, with_md};
    use super::super::model::{HostData, build};
    use super::*;

    const HOSTILE: &str =
        "<script>document.title='pwned'</script><img src=x onerror=alert(1)>\"'&\u{1b}[2J\u{202e}";

    fn hostile_report() -> String {
        let mut h = with_md(
            with_key(host("evil-1", HOSTILE, HOSTILE), "SHA256:k", HOSTILE),
            "degraded",
        );
        h.summary.os = HOSTILE.into();
        let h2 = with_key(host("evil-2", "ok", "g"), "SHA256:k", "x");
        let mut f = finding("evil-1", "ssh_keys", "high");
        f.message = HOSTILE.into();
        f.hostname = HOSTILE.into();
        render(&build(vec![h, h2], vec![f], 1_700_000_000_000))
    }

    #[test]
    fn host_supplied_text_is_never_markup() {
        let page = hostile_report();
        // Exactly one script element: ours.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert_eq!(page.matches("</script>").count(), 1);
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("onerror=alert(1)>"));
        assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
        // Terminal escapes and bidi overrides are shown, not obeyed.
        assert!(!page.contains('\u{1b}') && !page.contains('\u{202e}'));
        assert!(page.contains("\\e[2J\\u{202e}"));
    }

    #[test]
    fn the_page_names_no_url_at_all() {
        let page = hostile_report();
        for needle in ["http:", "https:", "//", "@import", "url(", "<link"] {
            // "//" appears in no comment or attribute of ours either.
            assert!(!page.contains(needle), "{needle} in\n{page}");
        }
        // No element loads anything: host text cannot open a tag (its `<`
        // is an entity), so every tag is ours.
        // Attribute values are quoted and their `"` is an entity, so the
        // even pieces of a tag split at `"` are its names.
        for tag in page.split('<').skip(1).map(|t| &t[..t.find('>').unwrap()]) {
            let names: String = tag.split('"').step_by(2).collect();
            for attr in [" src=", " action=", " style=", " on"] {
                assert!(!names.contains(attr), "{attr} in <{tag}>");
            }
        }
        // Every link is to a place in the page itself.
        for href in page.split("href=\"").skip(1) {
            assert!(href.starts_with('#'), "{}", &href[..40.min(href.len())]);
        }
    }

    #[test]
    fn counts_are_in_the_page_as_the_model_has_them() {
        let r = build(
            vec![
                host("w1", "web-1", "web"),
                host("w2", "web-2", "web"),
                host("d1", "db-1", "db"),
            ],
            vec![
                finding("w1", "packages", "high"),
                finding("w1", "packages", "low"),
                finding("d1", "", "medium"),
            ],
            0,
        );
        let page = render(&r);
        assert!(page.contains("data-count=\"hosts\">3<"));
        assert!(page.contains("data-count=\"open-findings\">3<"));
        assert!(page.contains("data-count=\"severity-high\">1<"));
        assert!(page.contains("data-count=\"severity-critical\">0<"));
        assert_eq!(
            page.matches("<tr class=\"finding\"").count(),
            3 + 3,
            "list + details"
        );
        assert!(page.contains("class=\"cell sev-high\" data-section=\"packages\" data-open=\"2\""));
        assert!(
            page.contains("class=\"cell sev-medium\" data-section=\"host-wide\" data-open=\"1\"")
        );
        // A group per label, db first; every host has a detail.
        let db = page.find("data-group=\"db\"").unwrap();
        assert!(db < page.find("data-group=\"web\"").unwrap());
        for id in ["w1", "w2", "d1"] {
            assert!(page.contains(&format!("<details class=\"host\" id=\"host-{id}\"")));
            assert!(page.contains(&format!("href=\"#host-{id}\"")));
        }
    }

    #[test]
    fn an_empty_fleet_still_renders_a_whole_page() {
        let page = render(&build(Vec::<HostData>::new(), vec![], 0));
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(page.contains("no key is on more than one host"));
        assert!(page.contains("no host reports RAID"));
    }
}
