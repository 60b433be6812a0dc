//! How a list command prints: a table for people, JSON (the proto's field
//! names) or CSV for scripts and spreadsheets. `--json` stays the global
//! shorthand for `--format json`, since operators' scripts pass it.

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;

use crate::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl Format {
    /// The format `--json` and `--format` name together; naming two
    /// different ones is bad usage rather than one silently winning.
    pub fn resolve(json: bool, format: Option<Format>) -> Result<Format> {
        match (json, format) {
            (false, f) => Ok(f.unwrap_or(Format::Table)),
            (true, None | Some(Format::Json)) => Ok(Format::Json),
            (true, Some(f)) => Err(Usage(format!(
                "--json and --format {} ask for two different outputs: pass one of them",
                f.to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default()
            ))
            .into()),
        }
    }
}

/// A CSV document (RFC 4180: comma-separated, fields with commas, quotes or
/// line breaks quoted) written row by row.
pub struct Csv<'a> {
    w: csv::Writer<&'a mut dyn Write>,
}

impl<'a> Csv<'a> {
    pub fn new(out: &'a mut dyn Write, header: &[&str]) -> Result<Csv<'a>> {
        let mut w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out);
        w.write_record(header)?;
        Ok(Csv { w })
    }

    pub fn row<I, S>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.w
            .write_record(fields.into_iter().map(|f| inert(f.as_ref()).into_owned()))?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.w.flush()?;
        Ok(())
    }
}

/// Hosts write hostnames, key comments and process names, and a spreadsheet
/// runs a cell that starts with `=`, `+`, `-` or `@` as a formula
/// (`=HYPERLINK(...)` leaks data when clicked). Such a cell gets a leading
/// `'`, the spreadsheet convention for "text"; nothing the CLI itself writes
/// starts that way (times, counts and words never do).
fn inert(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(rows: &[&[&str]]) -> String {
        let mut buf = Vec::new();
        let mut c = Csv::new(&mut buf, &["a", "b"]).unwrap();
        for r in rows {
            c.row(r.iter()).unwrap();
        }
        c.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_they_need_it_and_read_back_the_same() {
        let rows: &[&[&str]] = &[
            &["plain", "with, comma"],
            &["say \"hi\"", "two\nlines"],
            &["", "ünïcode"],
        ];
        let text = csv_of(rows);
        assert_eq!(
            text,
            "a,b\nplain,\"with, comma\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n,ünïcode\n"
        );
        // The csv reader is the oracle: every field comes back as written.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<Vec<String>> = r
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let want: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_host_supplied_formula_stays_text() {
        let text = csv_of(&[&["=HYPERLINK(\"x\")", "@SUM(A1)"], &["-1+2", "ok=1"]]);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<String> = r
            .records()
            .flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(cells, ["'=HYPERLINK(\"x\")", "'@SUM(A1)", "'-1+2", "ok=1"]);
    }

    #[test]
    fn json_and_format_together_must_agree() {
        assert_eq!(Format::resolve(false, None).unwrap(), Format::Table);
        assert_eq!(Format::resolve(true, None).unwrap(), Format::Json);
        assert_eq!(
            Format::resolve(true, Some(Format::Json)).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::resolve(false, Some(Format::Csv)).unwrap(),
            Format::Csv
        );
        let e = Format::resolve(true, Some(Format::Csv)).unwrap_err();
        assert!(e.downcast_ref::<Usage>().is_some(), "{e}");
        assert!(e.to_string().contains("--format csv"), "{e}");
    }
}
