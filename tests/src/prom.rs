//! A strict parser for the Prometheus text exposition format (0.0.4), for
//! tests: anything a scraper could reject, or that breaks a rule of the
//! format (a sample before its TYPE, a family split in two, a duplicate
//! series, a counter without `_total`, non-cumulative buckets, a +Inf
//! bucket that is not the count), fails with the offending line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Label pairs, sorted by name.
pub type Labels = Vec<(String, String)>;

/// One series: name and sorted labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: Labels,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: BTreeMap<Series, f64>,
}

impl Exposition {
    /// The value of `name{labels}`; labels given as `[("k","v")]`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.sort();
        self.samples
            .get(&Series {
                name: name.into(),
                labels: l,
            })
            .copied()
    }

    /// Like `get`, failing the test with the exposition when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?} in {:#?}", self.samples.keys()))
    }
}

fn valid_name(n: &str, colon: bool) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || (colon && f == ':'))
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || (colon && x == ':'))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            s.parse().map_err(|_| format!("bad value {s:?}"))
        }
        _ => Err(format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` → pairs; returns the rest of the line after `}`.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to (histogram suffixes stripped when the
/// base is a declared histogram).
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|t| t == "histogram")
        {
            return base;
        }
    }
    name
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut e = Exposition::default();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let fail = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix("# ") {
            let mut parts = c.splitn(3, ' ');
            let (kw, name, rest) = (parts.next(), parts.next(), parts.next());
            match (kw, name) {
                (Some("HELP"), Some(name)) | (Some("TYPE"), Some(name)) => {
                    if !valid_name(name, true) {
                        return Err(fail("bad metric name".into()));
                    }
                    if current.as_deref() != Some(name) {
                        if done.contains(name) {
                            return Err(fail("family appears twice".into()));
                        }
                        if let Some(c) = current.take() {
                            done.insert(c);
                        }
                        current = Some(name.to_string());
                    }
                    if kw == Some("TYPE") {
                        let t = rest.unwrap_or("");
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                            return Err(fail(format!("bad type {t:?}")));
                        }
                        if t == "counter" && !name.ends_with("_total") {
                            return Err(fail("counter name without _total".into()));
                        }
                        if e.types.insert(name.to_string(), t.to_string()).is_some() {
                            return Err(fail("second TYPE".into()));
                        }
                    }
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return Err(fail("bad metric name".into()));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).map_err(fail)?
        } else {
            (vec![], &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space before value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(fail)?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(fail("bad timestamp".into()));
        }
        if fields.next().is_some() {
            return Err(fail("trailing fields".into()));
        }
        let family = family_of(name, &e.types);
        if current.as_deref() != Some(family) {
            return Err(fail(format!(
                "sample outside its family's block ({family})"
            )));
        }
        if !e.types.contains_key(family) {
            return Err(fail("sample before its TYPE".into()));
        }
        let mut seen = HashSet::new();
        if !labels.iter().all(|(k, _)| seen.insert(k.clone())) {
            return Err(fail("label repeated".into()));
        }
        labels.sort();
        let s = Series {
            name: name.to_string(),
            labels,
        };
        if e.samples.insert(s, value).is_some() {
            return Err(fail("duplicate series".into()));
        }
    }
    check_histograms(&e)?;
    Ok(e)
}

fn check_histograms(e: &Exposition) -> Result<(), String> {
    for (name, _) in e.types.iter().filter(|(_, t)| *t == "histogram") {
        // group buckets by their labels without `le`
        let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for (s, v) in &e.samples {
            if s.name != format!("{name}_bucket") {
                continue;
            }
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .ok_or(format!("{name}: bucket without le"))?;
            let bound = parse_value(&le.1)?;
            let rest: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            groups.entry(rest).or_default().push((bound, *v));
        }
        for (labels, mut buckets) in groups {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !buckets.windows(2).all(|w| w[0].1 <= w[1].1) {
                return Err(format!("{name}{labels:?}: buckets not cumulative"));
            }
            let inf = buckets.last().filter(|b| b.0 == f64::INFINITY);
            let count = e.samples.get(&Series {
                name: format!("{name}_count"),
                labels: labels.clone(),
            });
            match (inf, count) {
                (Some(i), Some(c)) if i.1 == *c => {}
                _ => {
                    return Err(format!(
                        "{name}{labels:?}: +Inf bucket missing or not the count"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `GET path` over plain HTTP/1.1; returns (status code, content type, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    // Header names are case-insensitive (hyper writes them in lower case).
    let ctype = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Ok((code, ctype, body.to_string()))
}

/// Scrapes and parses, failing the test on an invalid exposition.
pub fn scrape(addr: &str) -> Exposition {
    let (code, ctype, body) = http_get(addr, "/metrics").expect("scrape /metrics");
    assert_eq!(code, 200, "{body}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    parse(&body).unwrap_or_else(|e| panic!("invalid exposition: {e}\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_rejects_broken_expositions() {
        let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\n\"} 3\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
        let e = parse(ok).unwrap();
        assert_eq!(e.value("a_total", &[("x", "q\"\n")]), 3.0);
        for bad in [
            "a_total 1\n",                                              // no TYPE
            "# TYPE a counter\na 1\n",                                  // counter without _total
            "# TYPE a gauge\na 1\na 2\n",                               // duplicate
            "# TYPE a gauge\na{x=\"1} 1\n",                             // unterminated
            "# TYPE a gauge\na one\n",                                  // bad value
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",          // split family
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", // +Inf != count
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
            "# TYPE a gauge\na 1", // no final newline
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }
}
