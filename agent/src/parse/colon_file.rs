//! The line layer shared by passwd, group and shadow: one record per line,
//! `:`-separated, blank lines and `#` comments skipped, NIS compat lines
//! (`+`, `-`) skipped because they carry no local entry. The problem text
//! names only the field count, never the line's content: a shadow line's
//! content may be a hash.

/// A malformed line: 1-based number and why.
pub type LineProblem = (usize, String);

/// Each record's 1-based line number and its `fields` fields; a line with
/// another field count goes to the problems instead.
pub fn records(text: &str, fields: usize) -> (Vec<(usize, Vec<&str>)>, Vec<LineProblem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != fields {
            problems.push((
                i + 1,
                format!("expected {fields} ':'-separated fields, found {}", f.len()),
            ));
            continue;
        }
        out.push((i + 1, f));
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_blanks_and_nis_and_counts_fields() {
        let text = "# c\n\na:b:c\r\n+nis\n-nis\nshort:x\nx:y:z\n";
        let (recs, problems) = records(text, 3);
        assert_eq!(
            recs,
            vec![(3, vec!["a", "b", "c"]), (7, vec!["x", "y", "z"])]
        );
        assert_eq!(
            problems,
            vec![(6, "expected 3 ':'-separated fields, found 2".to_string())]
        );
    }
}
