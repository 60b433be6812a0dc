//! Open agent `Commands` streams, by host: how the collector pushes work to
//! connected agents and how a revocation closes a host's streams at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use driftwatch_common::proto::Command;
use tokio::sync::mpsc;
use tonic::Status;

pub type Outbound = mpsc::Sender<Result<Command, Status>>;

#[derive(Default)]
pub struct Streams {
    next_id: AtomicU64,
    open: Mutex<HashMap<String, Vec<(u64, Outbound)>>>,
}

impl Streams {
    pub fn register(&self, host: &str, tx: Outbound) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .expect("not poisoned")
            .entry(host.to_string())
            .or_default()
            .push((id, tx));
        id
    }

    pub fn unregister(&self, host: &str, id: u64) {
        let mut open = self.open.lock().expect("not poisoned");
        if let Some(v) = open.get_mut(host) {
            v.retain(|(i, _)| *i != id);
            if v.is_empty() {
                open.remove(host);
            }
        }
    }

    pub fn is_connected(&self, host: &str) -> bool {
        self.open
            .lock()
            .expect("not poisoned")
            .get(host)
            .is_some_and(|v| v.iter().any(|(_, tx)| !tx.is_closed()))
    }

    /// Pushes a command down one open stream of `host`; false when the host
    /// has none (it gets pending commands when it connects) or it is full.
    pub fn push(&self, host: &str, cmd: Command) -> bool {
        let open = self.open.lock().expect("not poisoned");
        try_push(&open, host, &cmd)
    }

    /// Pushes `cmd` to each of `hosts` that has an open stream, under one
    /// lock; returns the hosts it reached (those without a stream, or
    /// whose stream is full, get pending commands when they connect).
    pub fn push_many<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a str>,
        cmd: &Command,
    ) -> Vec<String> {
        let open = self.open.lock().expect("not poisoned");
        hosts
            .into_iter()
            .filter(|h| try_push(&open, h, cmd))
            .map(str::to_string)
            .collect()
    }

    /// How many hosts have at least one open stream.
    pub fn connected_hosts(&self) -> usize {
        self.open
            .lock()
            .expect("not poisoned")
            .values()
            .filter(|v| v.iter().any(|(_, tx)| !tx.is_closed()))
            .count()
    }

    /// Ends every open stream of `host` with `status`; returns how many.
    pub fn close(&self, host: &str, status: Status) -> u32 {
        let senders = self
            .open
            .lock()
            .expect("not poisoned")
            .remove(host)
            .unwrap_or_default();
        let mut n = 0;
        for (_, tx) in senders {
            // try_send: a full buffer must not block a revocation; dropping
            // the sender ends the stream either way.
            if tx.try_send(Err(status.clone())).is_ok() || !tx.is_closed() {
                n += 1;
            }
        }
        n
    }
}

/// Down the newest open stream of `host`, without waiting.
fn try_push(open: &HashMap<String, Vec<(u64, Outbound)>>, host: &str, cmd: &Command) -> bool {
    open.get(host)
        .and_then(|v| v.iter().rev().find(|(_, tx)| !tx.is_closed()))
        .is_some_and(|(_, tx)| tx.try_send(Ok(cmd.clone())).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_ends_only_that_hosts_streams() {
        let s = Streams::default();
        let (a, mut ra) = mpsc::channel(4);
        let (b, mut rb) = mpsc::channel(4);
        let ida = s.register("a", a);
        s.register("b", b);
        assert!(s.is_connected("a"));
        assert_eq!(s.close("a", Status::permission_denied("revoked")), 1);
        assert_eq!(
            ra.recv().await.unwrap().unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert!(ra.recv().await.is_none(), "stream ended");
        assert!(!s.is_connected("a") && s.is_connected("b"));
        s.unregister("a", ida);
        assert!(rb.try_recv().is_err(), "b untouched");
    }

    #[tokio::test]
    async fn push_many_reaches_only_hosts_with_an_open_stream() {
        let s = Streams::default();
        let (a, mut ra) = mpsc::channel(4);
        let (c, rc) = mpsc::channel(4);
        s.register("a", a);
        s.register("c", c);
        drop(rc); // c's stream went away without unregistering yet
        let cmd = Command {
            id: "sw-1".into(),
            ..Default::default()
        };
        let sent = s.push_many(["a", "b", "c"], &cmd);
        assert_eq!(sent, ["a"]);
        assert_eq!(ra.recv().await.unwrap().unwrap().id, "sw-1");
    }
}
