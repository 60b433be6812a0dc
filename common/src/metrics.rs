//! Prometheus metrics, written by hand: a registry of counters, gauges,
//! histograms and gauges computed at scrape time, rendered in the text
//! exposition format (version 0.0.4). `metrics::http` serves it.
//!
//! Why no crate: we need four metric kinds and one text format; the whole
//! thing is smaller than the glue a client library would need, and it adds
//! nothing to the build.
//!
//! A gauge computed at scrape time is one line:
//! `registry.gauge_fn("x_hosts", "Hosts.", &["state"], move || vec![(vec!["fresh".into()], 3.0)]);`

pub mod http;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};

/// Label values of one series, in the order of the family's label names.
pub type LabelValues = Vec<String>;
/// What a scrape-time gauge returns: one value per label set.
pub type Samples = Vec<(LabelValues, f64)>;

/// Latency buckets in seconds, from 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

trait Family: Send + Sync {
    fn render(&self, out: &mut String);
}

/// All metrics of one process, rendered in registration order.
#[derive(Default)]
pub struct Registry {
    families: RwLock<Vec<Arc<dyn Family>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }

    fn add<F: Family + 'static>(&self, f: Arc<F>) -> Arc<F> {
        self.families.write().expect("not poisoned").push(f.clone());
        f
    }

    /// A counter; `name` should end in `_total`.
    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Arc<Counter> {
        self.add(Arc::new(Counter(Series::new(
            name, help, labels, "counter",
        ))))
    }

    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Arc<Gauge> {
        self.add(Arc::new(Gauge(Series::new(name, help, labels, "gauge"))))
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Arc<Histogram> {
        self.add(Arc::new(Histogram {
            head: Head::new(name, help, labels, "histogram"),
            buckets: buckets.to_vec(),
            series: Mutex::default(),
        }))
    }

    /// A gauge whose values are computed by `f` at every scrape (e.g. hosts
    /// by state, read from storage). `f` may block: the HTTP server renders
    /// on the blocking pool.
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        f: impl Fn() -> Samples + Send + Sync + 'static,
    ) {
        self.add(Arc::new(GaugeFn {
            head: Head::new(name, help, labels, "gauge"),
            f: Box::new(f),
        }));
    }

    /// The text exposition of every registered metric.
    pub fn render(&self) -> String {
        let families = self.families.read().expect("not poisoned").clone();
        let mut out = String::new();
        for f in families {
            f.render(&mut out);
        }
        out
    }
}

struct Head {
    name: String,
    help: String,
    labels: Vec<String>,
    kind: &'static str,
}

impl Head {
    fn new(name: &str, help: &str, labels: &[&str], kind: &'static str) -> Self {
        assert!(valid_name(name), "invalid metric name {name:?}");
        for l in labels {
            assert!(valid_name(l) && !l.contains(':'), "invalid label {l:?}");
        }
        Head {
            name: name.into(),
            help: help.into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            kind,
        }
    }

    fn header(&self, out: &mut String) {
        let help = self.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {} {help}", self.name);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
    }

    fn check(&self, values: &[&str]) {
        assert_eq!(
            values.len(),
            self.labels.len(),
            "metric {} takes labels {:?}",
            self.name,
            self.labels
        );
    }

    /// `name{a="x",b="y"} value`, with `extra` as a last label (histogram le).
    fn line(&self, out: &mut String, suffix: &str, values: &[String], extra: Option<&str>, v: f64) {
        out.push_str(&self.name);
        out.push_str(suffix);
        let mut pairs: Vec<(&str, String)> = self
            .labels
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(|v| escape_value(v)))
            .collect();
        if let Some(le) = extra {
            pairs.push(("le", le.to_string()));
        }
        if !pairs.is_empty() {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{v}\"");
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&format_value(v));
        out.push('\n');
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Go-style float text as Prometheus expects: `+Inf`, `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Label set → value, for counters and gauges.
struct Series {
    head: Head,
    values: Mutex<BTreeMap<LabelValues, f64>>,
}

impl Series {
    fn new(name: &str, help: &str, labels: &[&str], kind: &'static str) -> Self {
        Series {
            head: Head::new(name, help, labels, kind),
            values: Mutex::default(),
        }
    }

    fn update(&self, labels: &[&str], f: impl FnOnce(&mut f64)) {
        self.head.check(labels);
        let key = labels.iter().map(|s| s.to_string()).collect();
        f(self
            .values
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_insert(0.0));
    }

    fn get(&self, labels: &[&str]) -> f64 {
        let key: LabelValues = labels.iter().map(|s| s.to_string()).collect();
        self.values
            .lock()
            .expect("not poisoned")
            .get(&key)
            .copied()
            .unwrap_or(0.0)
    }

    fn render(&self, out: &mut String) {
        self.head.header(out);
        for (k, v) in self.values.lock().expect("not poisoned").iter() {
            self.head.line(out, "", k, None, *v);
        }
    }
}

pub struct Counter(Series);

impl Counter {
    pub fn inc(&self, labels: &[&str]) {
        self.inc_by(labels, 1.0);
    }

    pub fn inc_by(&self, labels: &[&str], n: f64) {
        debug_assert!(n >= 0.0, "a counter only goes up");
        self.0.update(labels, |v| *v += n.max(0.0));
    }

    /// Makes the series appear (at 0) before its first increment, so a
    /// rate() over it starts from the beginning.
    pub fn touch(&self, labels: &[&str]) {
        self.0.update(labels, |_| {});
    }

    pub fn get(&self, labels: &[&str]) -> f64 {
        self.0.get(labels)
    }
}

impl Family for Counter {
    fn render(&self, out: &mut String) {
        self.0.render(out);
    }
}

pub struct Gauge(Series);

impl Gauge {
    pub fn set(&self, labels: &[&str], v: f64) {
        self.0.update(labels, |x| *x = v);
    }

    pub fn get(&self, labels: &[&str]) -> f64 {
        self.0.get(labels)
    }
}

impl Family for Gauge {
    fn render(&self, out: &mut String) {
        self.0.render(out);
    }
}

#[derive(Default, Clone)]
struct HistogramValues {
    /// Per bucket (not cumulative): observations ≤ its bound and > the previous.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

pub struct Histogram {
    head: Head,
    buckets: Vec<f64>,
    series: Mutex<BTreeMap<LabelValues, HistogramValues>>,
}

impl Histogram {
    pub fn observe(&self, labels: &[&str], v: f64) {
        self.head.check(labels);
        let key = labels.iter().map(|s| s.to_string()).collect();
        let mut series = self.series.lock().expect("not poisoned");
        let h = series.entry(key).or_insert_with(|| HistogramValues {
            counts: vec![0; self.buckets.len()],
            ..Default::default()
        });
        if let Some(i) = self.buckets.iter().position(|b| v <= *b) {
            h.counts[i] += 1;
        }
        h.sum += v;
        h.count += 1;
    }

    pub fn count(&self, labels: &[&str]) -> u64 {
        let key: LabelValues = labels.iter().map(|s| s.to_string()).collect();
        self.series
            .lock()
            .expect("not poisoned")
            .get(&key)
            .map_or(0, |h| h.count)
    }
}

impl Family for Histogram {
    fn render(&self, out: &mut String) {
        self.head.header(out);
        for (k, h) in self.series.lock().expect("not poisoned").iter() {
            let mut cumulative = 0;
            for (b, c) in self.buckets.iter().zip(&h.counts) {
                cumulative += c;
                self.head.line(
                    out,
                    "_bucket",
                    k,
                    Some(&format_value(*b)),
                    cumulative as f64,
                );
            }
            self.head
                .line(out, "_bucket", k, Some("+Inf"), h.count as f64);
            self.head.line(out, "_sum", k, None, h.sum);
            self.head.line(out, "_count", k, None, h.count as f64);
        }
    }
}

struct GaugeFn {
    head: Head,
    f: Box<dyn Fn() -> Samples + Send + Sync>,
}

impl Family for GaugeFn {
    fn render(&self, out: &mut String) {
        self.head.header(out);
        let mut samples = (self.f)();
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in samples {
            debug_assert_eq!(k.len(), self.head.labels.len());
            self.head.line(out, "", &k, None, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let r = Registry::new();
        let c = r.counter("x_reports_total", "Reports.\nSecond line", &["reason"]);
        c.inc(&["bad \"x\"\\"]);
        c.inc_by(&["ok"], 2.0);
        let h = r.histogram("x_seconds", "Latency.", &[], &[0.1, 1.0]);
        h.observe(&[], 0.05);
        h.observe(&[], 0.5);
        h.observe(&[], 7.0);
        r.gauge_fn("x_hosts", "Hosts.", &["state"], || {
            vec![(vec!["stale".into()], 1.0), (vec!["fresh".into()], 2.0)]
        });
        let text = r.render();
        let want = "\
# HELP x_reports_total Reports.\\nSecond line
# TYPE x_reports_total counter
x_reports_total{reason=\"bad \\\"x\\\"\\\\\"} 1
x_reports_total{reason=\"ok\"} 2
# HELP x_seconds Latency.
# TYPE x_seconds histogram
x_seconds_bucket{le=\"0.1\"} 1
x_seconds_bucket{le=\"1\"} 2
x_seconds_bucket{le=\"+Inf\"} 3
x_seconds_sum 7.55
x_seconds_count 3
# HELP x_hosts Hosts.
# TYPE x_hosts gauge
x_hosts{state=\"fresh\"} 2
x_hosts{state=\"stale\"} 1
";
        assert_eq!(text, want);
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    #[allow(clippy::panic)]
    fn wrong_label_count_is_a_bug_caught_at_once() {
        let r = Registry::new();
        let c = r.counter("y_total", "Y.", &["a"]);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.inc(&[])));
        assert!(caught.is_err());
    }
}
