//! Pure parsers: text in, typed values out. No IO, no clock. Each is tested
//! on the real-world samples in `../shared/fixtures`.

pub mod journald;
pub mod logrotate;
pub mod rsyslog;
pub mod syslog_ng;

#[cfg(test)]
mod logconfig_fuzz;
