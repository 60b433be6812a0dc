//! Config files are data: TOML parsed with unknown fields refused, so a typo
//! is an error at start-up rather than a silently ignored setting.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

/// Config files larger than this are refused: they are a few lines long.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is larger than 1 MiB")]
    TooLarge { path: PathBuf },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// Parses `KEY=VALUE` labels given on command lines.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} must look like KEY=VALUE"))?;
    let k = k.trim();
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
    {
        return Err(format!(
            "label key {k:?} must be letters, digits, '_', '-', '.', '/'"
        ));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        interval: String,
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = parse_toml::<Demo>("intervall = \"5s\"").unwrap_err();
        assert!(err.contains("intervall"), "{err}");
        assert!(parse_toml::<Demo>("interval = \"5s\"").is_ok());
    }

    #[test]
    fn labels_parse() {
        assert_eq!(
            parse_label("group=web").unwrap(),
            ("group".into(), "web".into())
        );
        assert!(parse_label("group").is_err());
        assert!(parse_label("=x").is_err());
    }
}
