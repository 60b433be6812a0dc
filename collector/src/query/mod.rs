//! What the Admin queries answer, as plain functions over the store and
//! the host list: the gRPC handlers authorize, call one of these on a
//! blocking thread and wrap the answer; tests call them directly.

pub mod diff;
pub mod drift;

use driftwatch_common::proto::HostSummary;

use crate::error::ServiceError;

/// Finds a host by id, or by hostname when exactly one host has it.
pub fn resolve_host(hosts: &[HostSummary], wanted: &str) -> Result<HostSummary, ServiceError> {
    if let Some(h) = hosts.iter().find(|h| h.host_id == wanted) {
        return Ok(h.clone());
    }
    let by_name: Vec<&HostSummary> = hosts.iter().filter(|h| h.hostname == wanted).collect();
    match by_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ServiceError::NotFound(format!(
            "no host with id or hostname {wanted:?}: `driftwatch hosts` lists them"
        ))),
        many => Err(ServiceError::InvalidArgument(format!(
            "hostname {wanted:?} names {} hosts ({}): use a host id",
            many.len(),
            many.iter()
                .map(|h| h.host_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn h(id: &str, name: &str) -> HostSummary {
        HostSummary {
            host_id: id.into(),
            hostname: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_by_id_then_unique_hostname() {
        let hosts = vec![h("a1", "web"), h("b2", "db"), h("c3", "db")];
        assert_eq!(resolve_host(&hosts, "a1").unwrap().host_id, "a1");
        assert_eq!(resolve_host(&hosts, "web").unwrap().host_id, "a1");
        let e = resolve_host(&hosts, "db").unwrap_err().to_string();
        assert!(e.contains("b2") && e.contains("c3"), "{e}");
        assert!(
            resolve_host(&hosts, "nope")
                .unwrap_err()
                .to_string()
                .contains("driftwatch hosts")
        );
    }
}
