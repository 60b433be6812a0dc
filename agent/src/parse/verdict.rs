//! The one health vocabulary shared by the RAID parsers (mdstat, storcli,
//! MegaCli), so that "worse wins" means the same everywhere.

/// Worst last, so `max` picks the worse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verdict {
    #[default]
    Healthy,
    Warning,
    Rebuilding,
    Degraded,
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Warning => "warning",
            Verdict::Rebuilding => "rebuilding",
            Verdict::Degraded => "degraded",
            Verdict::Failed => "failed",
        }
    }

    /// The inverse of `as_str`; unknown words read as `Warning` so that a
    /// verdict we cannot interpret is never taken for healthy.
    pub fn from_word(s: &str) -> Verdict {
        match s {
            "healthy" => Verdict::Healthy,
            "rebuilding" => Verdict::Rebuilding,
            "degraded" => Verdict::Degraded,
            "failed" => Verdict::Failed,
            _ => Verdict::Warning,
        }
    }
}

/// A verdict with the reasons that led to it; reasons may also carry notes
/// that did not change the verdict (a scheduled check, read-only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

impl Assessment {
    /// Raises the verdict to `v` if worse, and records why.
    pub fn raise(&mut self, v: Verdict, reason: impl Into<String>) {
        self.verdict = self.verdict.max(v);
        self.reasons.push(reason.into());
    }

    /// Records a note that does not change the verdict.
    pub fn note(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_wins() {
        let mut a = Assessment::default();
        a.raise(Verdict::Rebuilding, "resync");
        a.raise(Verdict::Warning, "failed device attached");
        assert_eq!(a.verdict, Verdict::Rebuilding);
        a.raise(Verdict::Failed, "inactive");
        assert_eq!(a.verdict.as_str(), "failed");
        assert_eq!(a.reasons.len(), 3);
        for v in [
            Verdict::Healthy,
            Verdict::Warning,
            Verdict::Rebuilding,
            Verdict::Degraded,
            Verdict::Failed,
        ] {
            assert_eq!(Verdict::from_word(v.as_str()), v);
        }
        assert_eq!(Verdict::from_word("???"), Verdict::Warning);
    }
}
