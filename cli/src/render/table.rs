//! Plain aligned text tables for people; `--json` is for scripts.

use std::borrow::Cow;

use super::escape::escape_cell;

/// A table with a header row; columns are padded to their widest cell
/// (counted in characters, so UTF-8 names align). Cells are escaped as they
/// are added ([`escape_cell`]): they hold what hosts reported, and a control
/// character must neither reach the terminal nor break the alignment.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(cell).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(cell).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', width[i] - c.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn cell<S: Into<String>>(s: S) -> String {
    let s = s.into();
    match escape_cell(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(escaped) => escaped,
    }
}

/// Bytes as a short human size (KiB, MiB, GiB).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Cuts a cell to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(["NAME", "STATE"]);
        t.row(["a", "ok"]);
        t.row(["ünïcode", "degraded"]);
        assert_eq!(
            t.render(),
            "NAME     STATE\na        ok\nünïcode  degraded\n"
        );
    }

    #[test]
    fn a_hostile_cell_is_escaped_and_still_aligned() {
        let mut t = Table::new(["NAME", "STATE"]);
        t.row(["\u{1b}[2Jx", "ok"]);
        t.row(["abcdefgh", "ok"]);
        assert_eq!(t.render(), "NAME      STATE\n\\e[2Jx    ok\nabcdefgh  ok\n");
    }

    #[test]
    fn sizes_and_clips() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
