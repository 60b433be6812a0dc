//! The words of the wire vocabulary as types: section statuses here,
//! finding severities (`crate::severity`) and section kinds
//! (`crate::section`). On the wire and in
//! `--json` they stay the strings they always were; inside, a typo is a
//! compile error and a bad word from outside is one clear error.

use thiserror::Error;

/// A word that is not in its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {given:?}: use {known}")]
pub struct UnknownWord {
    /// What kind of word: "severity", "section", "section status".
    pub what: &'static str,
    pub given: String,
    /// The known words, comma separated.
    pub known: String,
}

/// Declares a word enum from one list: the variants, `ALL` in declaration
/// order (which the derived `Ord` follows), `as_str`, `FromStr` (exactly
/// the wire word), `Display` and serde as the word.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $vis:vis enum $ty:ident ($what:literal) {
        $($(#[$doc:meta])* $v:ident = $word:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $ty {
            $($(#[$doc])* $v,)*
        }

        impl $ty {
            /// Every word, in declaration order.
            pub const ALL: &[$ty] = &[$($ty::$v,)*];

            /// The words of [`Self::ALL`], in the same order.
            pub const WORDS: &[&str] = &[$($word,)*];

            /// The word on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$v => $word,)*
                }
            }

            /// Every word, comma separated, for messages.
            pub fn words() -> String {
                Self::WORDS.join(", ")
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::vocab::UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|w| w.as_str() == s)
                    .ok_or_else(|| $crate::vocab::UnknownWord {
                        what: $what,
                        given: s.to_string(),
                        known: Self::words(),
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// What became of a section's collection (`Section.status`).
    pub enum CollectionStatus("section status") {
        Ok = "ok",
        /// The host does not have the thing (no Docker, no RAID tool).
        Unsupported = "unsupported",
        /// It has it, but collecting failed.
        Error = "error",
    }
}

impl CollectionStatus {
    /// A stored or received section's status; None for a word this build
    /// does not know.
    pub fn of(section: &crate::proto::Section) -> Option<CollectionStatus> {
        section.status.parse().ok()
    }

    /// Whether the section collected fine (status `ok`).
    pub fn is_ok(section: &crate::proto::Section) -> bool {
        section.status == CollectionStatus::Ok.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_on_the_wire() {
        let words: Vec<&str> = CollectionStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words, ["ok", "unsupported", "error"]);
        let e = "failed".parse::<CollectionStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown section status \"failed\": use ok, unsupported, error"
        );
    }
}
