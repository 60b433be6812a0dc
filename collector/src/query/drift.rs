//! `driftwatch drift`: which stored findings an answer holds, in which
//! order. The handler evaluates first (fresh answers), then asks here.

use driftwatch_common::proto::{Finding, HostSummary};
use driftwatch_common::severity::{Severity, severity_rank};

use crate::error::ServiceError;

/// What a drift request asks for, checked.
#[derive(Debug, Clone, Default)]
pub struct DriftFilter {
    /// Only this host's findings (a resolved id).
    pub host_id: Option<String>,
    /// Only hosts whose `group_label` label has this value ("" = any).
    pub group: String,
    /// The label that names a host's group (`drift.group_label`).
    pub group_label: String,
    /// Findings at least this severe (a rank in SEVERITIES).
    pub min_rank: usize,
    /// Resolved findings too.
    pub all: bool,
}

/// `--min-severity`: empty is every severity.
pub fn min_rank(min_severity: &str) -> Result<usize, ServiceError> {
    if min_severity.is_empty() {
        return Ok(0);
    }
    min_severity
        .parse::<Severity>()
        .map(|s| s as usize)
        .map_err(|e| ServiceError::InvalidArgument(e.to_string()))
}

/// The findings the filter keeps: open before resolved, then most severe
/// first, then by hostname, section and item.
pub fn select(findings: Vec<Finding>, hosts: &[HostSummary], f: &DriftFilter) -> Vec<Finding> {
    let in_group = |hid: &str| {
        f.group.is_empty()
            || hosts.iter().any(|h| {
                h.host_id == hid
                    && h.labels
                        .iter()
                        .any(|l| l.key == f.group_label && l.value == f.group)
            })
    };
    let mut out: Vec<Finding> = findings
        .into_iter()
        .filter(|x| f.all || x.resolved_ms == 0)
        .filter(|x| f.host_id.as_ref().is_none_or(|h| &x.host_id == h))
        .filter(|x| in_group(&x.host_id))
        .filter(|x| severity_rank(&x.severity).unwrap_or(0) >= f.min_rank)
        .collect();
    out.sort_by(|a, b| {
        (a.resolved_ms != 0)
            .cmp(&(b.resolved_ms != 0))
            .then(severity_rank(&b.severity).cmp(&severity_rank(&a.severity)))
            .then(a.hostname.cmp(&b.hostname))
            .then(a.section.cmp(&b.section))
            .then(a.item.cmp(&b.item))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::Label;

    fn host(id: &str, group: &str) -> HostSummary {
        HostSummary {
            host_id: id.into(),
            hostname: id.into(),
            labels: vec![Label {
                key: "group".into(),
                value: group.into(),
            }],
            ..Default::default()
        }
    }

    fn finding(host: &str, severity: &str, item: &str, resolved_ms: i64) -> Finding {
        Finding {
            host_id: host.into(),
            hostname: host.into(),
            severity: severity.into(),
            section: "processes".into(),
            item: item.into(),
            resolved_ms,
            ..Default::default()
        }
    }

    fn world() -> (Vec<HostSummary>, Vec<Finding>) {
        let hosts = vec![
            host("web-1", "web"),
            host("web-2", "web"),
            host("db-1", "db"),
        ];
        let findings = vec![
            finding("db-1", "critical", "a", 0),
            finding("web-2", "low", "b", 0),
            finding("web-1", "high", "c", 0),
            finding("web-1", "critical", "d", 5),
            finding("gone", "critical", "e", 0),
        ];
        (hosts, findings)
    }

    fn items(v: &[Finding]) -> Vec<&str> {
        v.iter().map(|f| f.item.as_str()).collect()
    }

    fn filter() -> DriftFilter {
        DriftFilter {
            group_label: "group".into(),
            ..Default::default()
        }
    }

    #[test]
    fn open_findings_most_severe_first_by_hostname() {
        let (hosts, findings) = world();
        let got = select(findings, &hosts, &filter());
        assert_eq!(items(&got), ["a", "e", "c", "b"]);
    }

    #[test]
    fn the_group_filter_keeps_only_hosts_labelled_with_it() {
        let (hosts, findings) = world();
        let f = DriftFilter {
            group: "web".into(),
            ..filter()
        };
        assert_eq!(items(&select(findings.clone(), &hosts, &f)), ["c", "b"]);
        // A host no longer in the host list belongs to no group.
        let f = DriftFilter {
            group: "db".into(),
            ..filter()
        };
        assert_eq!(items(&select(findings.clone(), &hosts, &f)), ["a"]);
        // Another label key with the same value is not the group.
        let f = DriftFilter {
            group: "web".into(),
            group_label: "team".into(),
            ..filter()
        };
        assert!(select(findings, &hosts, &f).is_empty());
    }

    #[test]
    fn all_adds_resolved_last_and_severity_and_host_narrow() {
        let (hosts, findings) = world();
        let f = DriftFilter {
            all: true,
            host_id: Some("web-1".into()),
            ..filter()
        };
        assert_eq!(items(&select(findings.clone(), &hosts, &f)), ["c", "d"]);
        let f = DriftFilter {
            min_rank: min_rank("high").unwrap(),
            ..filter()
        };
        assert_eq!(items(&select(findings, &hosts, &f)), ["a", "e", "c"]);
    }

    #[test]
    fn an_unknown_severity_is_refused_naming_the_known_ones() {
        assert_eq!(min_rank("").unwrap(), 0);
        let e = min_rank("severe").unwrap_err().to_string();
        assert!(e.contains("info, low, medium, high, critical"), "{e}");
    }
}
