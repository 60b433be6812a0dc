//! The section registry: every section kind declared once, and what each
//! side needs to know about it as an exhaustive `match` on [`SectionKind`],
//! so a new kind does not compile until every table says what it does with
//! it (ARCHITECTURE.md, "Adding a section").
//!
//! On the wire a section is still named by its string (`Section.name`, the
//! `--json` output), exactly as before: [`SectionKind::name`] is that string.

use crate::proto::Section;
use crate::proto::section::Body;
use crate::vocab::{UnknownWord, vocabulary};

vocabulary! {
    /// A section kind. The declaration order is the report order.
    pub enum SectionKind("section") {
        /// OS, kernel, identity facts.
        Host = "host",
        Processes = "processes",
        SshKeys = "ssh_keys",
        LogConfig = "log_config",
        Raid = "raid",
        Packages = "packages",
        Containers = "containers",
        /// Local users and groups, shadow's account state (no hashes).
        Accounts = "accounts",
        /// Who may run what as whom through sudo.
        Sudoers = "sudoers",
        /// Listening TCP and bound UDP sockets with their processes.
        Listening = "listening",
        /// Pending package updates from apt's cached indexes; reboot needed.
        Updates = "updates",
    }
}

impl SectionKind {
    /// The kind of a section body: the proto's `Section.body` oneof, one
    /// arm per field, so a new oneof field needs a kind.
    pub const fn of_body(body: &Body) -> SectionKind {
        match body {
            Body::Host(_) => SectionKind::Host,
            Body::Processes(_) => SectionKind::Processes,
            Body::SshKeys(_) => SectionKind::SshKeys,
            Body::LogConfig(_) => SectionKind::LogConfig,
            Body::Raid(_) => SectionKind::Raid,
            Body::Packages(_) => SectionKind::Packages,
            Body::Containers(_) => SectionKind::Containers,
            Body::Accounts(_) => SectionKind::Accounts,
            Body::Sudoers(_) => SectionKind::Sudoers,
            Body::Listening(_) => SectionKind::Listening,
            Body::Updates(_) => SectionKind::Updates,
        }
    }

    /// The kind a stored or received section names; None for a name this
    /// build does not know (a newer agent's section).
    pub fn of(section: &Section) -> Option<SectionKind> {
        section.name.parse().ok()
    }

    /// Whether the stable form clears anything in this kind (see
    /// `stable::stable_body`); `host show` notes the age of such values.
    pub const fn has_volatile_values(self) -> bool {
        match self {
            SectionKind::Host
            | SectionKind::Processes
            | SectionKind::LogConfig
            | SectionKind::Raid
            | SectionKind::Containers
            | SectionKind::Listening
            | SectionKind::Updates => true,
            SectionKind::SshKeys
            | SectionKind::Packages
            | SectionKind::Accounts
            | SectionKind::Sudoers => false,
        }
    }

    /// Whether a baseline speaks for this kind: what a host was set up
    /// with. Processes at bake time are the builder's, not the service's;
    /// the host facts and RAID state are the machine's own; what listens at
    /// bake time is the builder's too.
    pub const fn in_baseline(self) -> bool {
        match self {
            SectionKind::SshKeys
            | SectionKind::Packages
            | SectionKind::LogConfig
            | SectionKind::Containers
            | SectionKind::Accounts
            | SectionKind::Sudoers => true,
            SectionKind::Host
            | SectionKind::Processes
            | SectionKind::Raid
            | SectionKind::Listening
            | SectionKind::Updates => false,
        }
    }

    /// Position in [`SectionKind::ALL`] (a bit in a bitmask).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name on the wire and in `--json` (`ssh_keys`).
    pub const fn name(self) -> &'static str {
        self.as_str()
    }

    /// Checks requested section names (an RPC's or a flag's filter): the
    /// first unknown one is the error.
    pub fn check_names(names: &[String]) -> Result<(), UnknownWord> {
        names
            .iter()
            .try_for_each(|n| n.parse::<SectionKind>().map(drop))
    }
}

#[cfg(test)]
mod tests;
