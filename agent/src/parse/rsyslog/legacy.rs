//! Legacy (sysklogd-style) actions: `@host`, `@@(o)host:port;Template`,
//! `:omrelp:host:port`, `-/var/log/file`, `?DynFile`.

use driftwatch_common::proto::LogForward;

pub enum Action {
    Forward(LogForward),
    File { path: String, no_sync: bool },
}

pub fn action(a: &str) -> Result<Option<Action>, String> {
    let (a, template) = match a.split_once(';') {
        Some((x, t)) => (x.trim(), t.trim()),
        None => (a, ""),
    };
    if let Some(rest) = a.strip_prefix("@@") {
        return forward(rest, "tcp", template).map(Some);
    }
    if let Some(rest) = a.strip_prefix('@') {
        return forward(rest, "udp", template).map(Some);
    }
    if let Some(rest) = a.strip_prefix(":omrelp:") {
        return forward(rest, "relp", template).map(Some);
    }
    let (no_sync, path) = match a.strip_prefix('-') {
        Some(p) => (true, p),
        None => (false, a),
    };
    if path.starts_with('/') {
        return Ok(Some(Action::File {
            path: path.to_string(),
            no_sync,
        }));
    }
    if let Some(t) = path.strip_prefix('?') {
        return Ok(Some(Action::File {
            path: format!("dynafile:{t}"),
            no_sync,
        }));
    }
    // Pipes, programs, databases, users, discard: not files, not remote.
    Ok(None)
}

fn forward(rest: &str, protocol: &str, template: &str) -> Result<Action, String> {
    let (opts, hostport) = match rest.strip_prefix('(') {
        Some(r) => {
            let end = r
                .find(')')
                .ok_or_else(|| format!("unclosed `(` in `{rest}`"))?;
            (format!("({})", &r[..end]), &r[end + 1..])
        }
        None => (String::new(), rest),
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        // [IPv6]:port
        let end = r
            .find(']')
            .ok_or_else(|| format!("unclosed `[` in `{hostport}`"))?;
        (&r[..end], r[end + 1..].strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(format!("forwarding action `{rest}` has no host"));
    }
    let port = match port {
        None | Some("") => 0,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= 65535 => n,
            _ => return Err(format!("bad port `{p}` in `{rest}`")),
        },
    };
    let mut options = opts;
    if !template.is_empty() {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!("template={template}"));
    }
    Ok(Action::Forward(LogForward {
        daemon: "rsyslog".into(),
        target: host.to_string(),
        port,
        protocol: protocol.to_string(),
        options,
        ..LogForward::default()
    }))
}
