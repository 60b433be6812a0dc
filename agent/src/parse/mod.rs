//! Pure parsers: text in, typed values out. No IO, no clock. Each is tested
//! on the real-world samples in `tests/fixtures/`.

pub mod accounts;
pub mod apt;
pub mod authorized_keys;
pub mod colon_file;
pub mod dpkg;
pub mod journald;
pub mod logrotate;
pub mod mdstat;
pub mod megacli;
pub mod megaraid;
pub mod proc_net;
pub mod proc_stat;
pub mod rpm;
pub mod rsyslog;
pub mod sshd_config;
pub mod storcli;
pub mod sudoers;
pub mod syslog_ng;
pub mod verdict;

pub mod docker_inspect;
#[cfg(test)]
mod logconfig_fuzz;
