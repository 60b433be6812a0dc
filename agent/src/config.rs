//! The agent's config file (`--config`, e.g. /etc/driftwatch/agent.toml).
//! Every key is optional; command-line flags win.
//!
//! ```toml
//! collector = "https://collector.example:7443"
//! # or several collectors of one fleet, tried in turn when one is down:
//! # collectors = ["https://a.example:7443", "https://b.example:7443"]
//! ca = "/etc/driftwatch/ca.pem"
//! cert = "/var/lib/driftwatch/agent.pem"
//! key = "/var/lib/driftwatch/agent-key.pem"
//! state_dir = "/var/lib/driftwatch"
//! interval = "60s"
//! spool_max_bytes = 67108864
//! sections = ["host", "processes"]   # default: all
//! enroll_token_file = "/etc/driftwatch/enroll-token"  # instead of cert/key
//! metrics_listen = "127.0.0.1:9465"   # plain HTTP GET /metrics; off when absent
//! [labels]
//! group = "web"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub collector: Option<String>,
    /// Several collectors of one fleet (after `collector` when both are set).
    pub collectors: Option<Vec<String>>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub interval: Option<String>,
    pub spool_max_bytes: Option<u64>,
    /// How often unchanged sections still travel in full, e.g. "15m".
    pub full_refresh: Option<String>,
    pub sections: Option<Vec<String>>,
    /// Enrollment token (or a file holding it): used when the state dir
    /// holds no identity yet, or the machine facts changed.
    pub enroll_token: Option<String>,
    pub enroll_token_file: Option<PathBuf>,
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_typos_fail() {
        let c: FileConfig = driftwatch_common::config::parse_toml(
            "collector = \"https://c:7443\"\ninterval = \"10s\"\n[labels]\ngroup = \"web\"\n",
        )
        .unwrap();
        assert_eq!(c.labels.get("group").map(String::as_str), Some("web"));
        let c: FileConfig = driftwatch_common::config::parse_toml(
            "collectors = [\"https://a:7443\", \"https://b:7443\"]\n",
        )
        .unwrap();
        assert_eq!(c.collectors.map(|v| v.len()), Some(2));
        let e =
            driftwatch_common::config::parse_toml::<FileConfig>("colector = \"x\"").unwrap_err();
        assert!(e.contains("colector"), "{e}");
    }
}
