//! Key selectors: which keys a `keys find` or a sweep is about. One
//! definition of "this line holds a selected key", shared by the
//! collector's index and the agent's sweep so they never disagree.

use crate::proto::KeySelector;

/// Every fingerprint the selector names (single and repeated fields).
pub fn fingerprints(sel: &KeySelector) -> impl Iterator<Item = &str> {
    std::iter::once(sel.fingerprint.as_str())
        .chain(sel.fingerprints.iter().map(String::as_str))
        .filter(|f| !f.is_empty())
}

/// Every comment the selector names.
pub fn comments(sel: &KeySelector) -> impl Iterator<Item = &str> {
    std::iter::once(sel.comment.as_str())
        .chain(sel.comments.iter().map(String::as_str))
        .filter(|c| !c.is_empty())
}

/// A selector that names nothing matches nothing (and is refused).
pub fn is_empty(sel: &KeySelector) -> bool {
    fingerprints(sel).next().is_none() && comments(sel).next().is_none()
}

/// Does a line with this fingerprint and comment hold a selected key? An
/// empty fingerprint or comment never matches (it is no identity).
pub fn matches(sel: &KeySelector, fingerprint: &str, comment: &str) -> bool {
    (!fingerprint.is_empty() && fingerprints(sel).any(|f| f == fingerprint))
        || (!comment.is_empty() && comments(sel).any(|c| c == comment))
}

/// For messages: "SHA256:…", or "3 keys (SHA256:…, comment \"bo\", …)".
pub fn describe(sel: &KeySelector) -> String {
    let mut parts: Vec<String> = fingerprints(sel).map(str::to_string).collect();
    parts.extend(comments(sel).map(|c| format!("comment {c:?}")));
    match parts.len() {
        0 => "no key".into(),
        1 => parts.remove(0),
        n => format!("{n} keys ({})", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_matches_any_member_and_never_the_empty_identity() {
        let sel = KeySelector {
            fingerprint: "SHA256:a".into(),
            fingerprints: vec!["SHA256:b".into(), "".into()],
            comments: vec!["bo@x".into()],
            ..Default::default()
        };
        assert!(matches(&sel, "SHA256:a", ""));
        assert!(matches(&sel, "SHA256:b", "other"));
        assert!(matches(&sel, "SHA256:z", "bo@x"));
        assert!(!matches(&sel, "SHA256:z", "bo"));
        assert!(!matches(&sel, "", ""));
        assert!(!matches(&KeySelector::default(), "", ""));
        assert!(is_empty(&KeySelector::default()));
        assert_eq!(
            describe(&sel),
            "3 keys (SHA256:a, SHA256:b, comment \"bo@x\")"
        );
    }
}
