//! Prometheus metrics on `prometheus-client`, the Prometheus project's Rust
//! client, rendered in the text format 0.0.4 (what every Prometheus
//! scrapes; `metrics::http` serves it).
//!
//! The crate's own types hold everything the services update. What this
//! module adds is what both daemons share: the latency buckets, and
//! [`GaugeFn`], a gauge family computed at every scrape (hosts by state read
//! from storage, spool depth read from disk), so such a value cannot drift
//! from the truth. One is one line:
//! `registry.register_collector(GaugeFn::boxed("x_hosts", "Hosts", &["state"], move || vec![(vec!["fresh".into()], 3.0)]));`
//!
//! Help texts are given without a final period: the crate appends one to
//! registered metrics, and [`GaugeFn`] does the same.

pub mod http;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Label values of one series, in the order of the family's label names.
pub type LabelValues = Vec<String>;
/// What a scrape-time gauge returns: one value per label set.
pub type Samples = Vec<(LabelValues, f64)>;

/// Latency buckets in seconds, from 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Gauge families whose values `f` computes at every scrape, from one read
/// (`f` returns one `Samples` per family, in order; fewer when it failed,
/// and those families show no series). `f` may block: the HTTP server
/// renders on the blocking pool.
pub struct GaugeFn {
    families: Vec<(String, String, Vec<&'static str>)>,
    f: Box<dyn Fn() -> Vec<Samples> + Send + Sync>,
}

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.families.iter().map(|x| x.0.as_str()).collect();
        f.debug_struct("GaugeFn")
            .field("families", &names)
            .finish_non_exhaustive()
    }
}

impl GaugeFn {
    /// One family, boxed for `Registry::register_collector`.
    pub fn boxed(
        name: &str,
        help: &str,
        labels: &[&'static str],
        f: impl Fn() -> Samples + Send + Sync + 'static,
    ) -> Box<Self> {
        Self::many(&[(name, help, labels)], move || vec![f()])
    }

    /// Several families computed together (`(name, help, labels)` each).
    pub fn many(
        families: &[(&str, &str, &[&'static str])],
        f: impl Fn() -> Vec<Samples> + Send + Sync + 'static,
    ) -> Box<Self> {
        Box::new(GaugeFn {
            families: families
                .iter()
                .map(|(n, h, l)| (n.to_string(), format!("{h}."), l.to_vec()))
                .collect(),
            f: Box::new(f),
        })
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut computed = (self.f)().into_iter();
        for (name, help, label_names) in &self.families {
            let mut samples = computed.next().unwrap_or_default();
            // Sorted, so a scrape reads the same from one time to the next.
            samples.sort_by(|a, b| a.0.cmp(&b.0));
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (values, v) in &samples {
                debug_assert_eq!(values.len(), label_names.len(), "{name}");
                let labels: Vec<(&str, &str)> = label_names
                    .iter()
                    .copied()
                    .zip(values.iter().map(String::as_str))
                    .collect();
                ConstGauge::new(*v).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The text exposition (0.0.4) of every metric in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a collector's Err would be a bug.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn renders_the_text_format_with_scrape_time_gauges() {
        let mut r = Registry::default();
        let c = Family::<[(&'static str, String); 1], Counter>::default();
        r.register("x_reports", "Reports\nSecond line", c.clone());
        c.get_or_create(&[("reason", "bad \"x\"\\".into())]).inc();
        c.get_or_create(&[("reason", "ok".into())]).inc_by(2);
        let h = Histogram::new([0.1, 1.0]);
        r.register("x_seconds", "Latency", h.clone());
        h.observe(0.05);
        h.observe(0.5);
        h.observe(7.0);
        r.register_collector(GaugeFn::boxed("x_hosts", "Hosts", &["state"], || {
            vec![(vec!["stale".into()], 1.0), (vec!["fresh".into()], 2.0)]
        }));
        let text = render(&r);
        for line in [
            "# HELP x_reports_total Reports\\nSecond line.",
            "# TYPE x_reports_total counter",
            "x_reports_total{reason=\"bad \\\"x\\\"\\\\\"} 1",
            "x_reports_total{reason=\"ok\"} 2",
            "# TYPE x_seconds histogram",
            "x_seconds_bucket{le=\"0.1\"} 1",
            "x_seconds_bucket{le=\"1\"} 2",
            "x_seconds_bucket{le=\"+Inf\"} 3",
            "x_seconds_sum 7.55",
            "x_seconds_count 3",
            "# HELP x_hosts Hosts.",
            "# TYPE x_hosts gauge",
            "x_hosts{state=\"fresh\"} 2.0",
            "x_hosts{state=\"stale\"} 1.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        let fresh = text.find("state=\"fresh\"").unwrap();
        assert!(fresh < text.find("state=\"stale\"").unwrap(), "sorted");
        assert!(!text.contains("# EOF"), "0.0.4, not OpenMetrics:\n{text}");
    }
}
