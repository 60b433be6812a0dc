//! Finding severities, least to most severe. Shared by the collector, which
//! assigns them, and the CLI, which filters by them (`--fail-on`). On the
//! wire (`Finding.severity`) a severity is its word.

use crate::vocab::vocabulary;

vocabulary! {
    /// How serious a finding is, lowest first: `Ord` is the rank.
    pub enum Severity("severity") {
        Info = "info",
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

impl Severity {
    /// The severity a finding's word names; None for a word this build
    /// does not know (a newer collector's).
    pub fn of(word: &str) -> Option<Severity> {
        word.parse().ok()
    }
}

pub const SEVERITIES: &[&str] = Severity::WORDS;

/// A severity's place in [`SEVERITIES`]; `None` for a name that is not one.
pub fn severity_rank(s: &str) -> Option<usize> {
    Severity::of(s).map(|s| s as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_and_read_as_on_the_wire() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(*s));
            assert_eq!(severity_rank(s.as_str()), Some(*s as usize));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        let e = "HIGH".parse::<Severity>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown severity \"HIGH\": use info, low, medium, high, critical"
        );
        assert!(serde_json::from_str::<Severity>("\"urgent\"").is_err());
    }
}
