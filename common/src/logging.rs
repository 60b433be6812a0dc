//! Tracing setup shared by the three binaries: human output by default,
//! `--log-format json` for log shippers, `RUST_LOG` to filter.
//!
//! `RUST_LOG` takes `level` and `target=level` directives, comma-separated
//! (tracing-subscriber's `Targets`). Not `EnvFilter`: its span and field
//! filters need a regex engine, ~0.5 MB of code resident in every agent for
//! a feature nobody filters an agent's logs with.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

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
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let (filter, bad_env) = match from_env.as_deref().map(str::parse::<Targets>) {
        Some(Ok(t)) => (t, None),
        Some(Err(e)) => (default_targets(default_level), Some(e)),
        None => (default_targets(default_level), None),
    };
    // Colour only on a terminal: journald, files and pipes get plain text
    // (escape codes there are noise that breaks grep and log parsers).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests calling entry points twice) is harmless.
    let _ = match format {
        LogFormat::Human => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    };
    if let Some(e) = bad_env {
        tracing::warn!(
            "ignoring RUST_LOG ({e}): use directives like `info` or `info,driftwatch_agent=debug`"
        );
    }
}

fn default_targets(level: &str) -> Targets {
    level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_directives_parse_as_before() {
        let t: Targets = "info,driftwatch_collector=debug".parse().unwrap();
        assert!(t.would_enable("driftwatch_collector::service", &Level::DEBUG));
        assert!(!t.would_enable("h2::codec", &Level::DEBUG));
        assert!(t.would_enable("h2::codec", &Level::INFO));
        assert!(default_targets("warn").would_enable("x", &Level::WARN));
        assert!(!default_targets("warn").would_enable("x", &Level::INFO));
    }
}
