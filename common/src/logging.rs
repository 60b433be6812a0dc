//! Tracing setup shared by the three binaries: human output by default,
//! `--log-format json` for log shippers, `RUST_LOG` to filter.

use tracing_subscriber::EnvFilter;

/// Binaries take it as a string flag and call [`LogFormat::parse`], so this
/// crate stays free of clap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}: use human or json")),
        }
    }
}

/// Logs go to stderr so stdout stays clean for `--json` output.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling entry points twice) is harmless.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
