//! What a receiver is sent: the driftwatch event as JSON (the default), or
//! a Slack incoming-webhook body. The idempotency key travels in the
//! `Idempotency-Key` header either way, and in the JSON event as a field;
//! Slack's body is Slack's schema, so it carries the key only in the header.

use driftwatch_common::proto::NotifyEvent;
use serde_json::json;

use super::receiver::Format;

pub fn render(format: Format, e: &NotifyEvent) -> Vec<u8> {
    let v = match format {
        Format::Json => json!({
            "source": "driftwatch",
            "idempotency_key": e.idempotency_key,
            "event": e.event,
            "queued_ms": e.queued_ms,
            "finding": e.finding,
        }),
        Format::Slack => json!({ "text": slack_text(e) }),
    };
    serde_json::to_vec(&v).expect("a JSON value serializes")
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup; what hosts report
/// (hostnames, items) must not become links or mentions.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_text(e: &NotifyEvent) -> String {
    let Some(f) = &e.finding else {
        return "driftwatch: test notification".into();
    };
    if e.event == "test" {
        return format!("driftwatch: test notification ({})", escape(&f.message));
    }
    let what = if e.event == "resolved" {
        "resolved"
    } else {
        "opened"
    };
    let host = if f.hostname.is_empty() {
        &f.host_id
    } else {
        &f.hostname
    };
    let mut line = format!(
        "driftwatch: {what} [{}] {} on {} ({})",
        escape(&f.severity),
        escape(&f.kind),
        escape(host),
        escape(&f.host_id)
    );
    for part in [&f.section, &f.item, &f.message] {
        if !part.is_empty() {
            line.push_str(" — ");
            line.push_str(&escape(part));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_common::proto::Finding;

    #[test]
    fn json_carries_the_key_and_the_finding_and_slack_escapes_markup() {
        let e = NotifyEvent {
            receiver: "r".into(),
            idempotency_key: "k1".into(),
            event: "opened".into(),
            finding: Some(Finding {
                id: "f".into(),
                kind: "policy".into(),
                severity: "high".into(),
                host_id: "web-1-abc".into(),
                hostname: "<!channel>".into(),
                message: "container uses :latest".into(),
                ..Default::default()
            }),
            queued_ms: 5,
        };
        let v: serde_json::Value = serde_json::from_slice(&render(Format::Json, &e)).unwrap();
        assert_eq!(v["idempotency_key"], "k1");
        assert_eq!(v["event"], "opened");
        assert_eq!(v["finding"]["severity"], "high");
        let s: serde_json::Value = serde_json::from_slice(&render(Format::Slack, &e)).unwrap();
        let text = s["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(text.contains("opened [high] policy"), "{text}");
    }
}
