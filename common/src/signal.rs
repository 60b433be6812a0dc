//! The one shutdown signal both daemons wait on.

use tracing::{info, warn};

/// Resolves on SIGTERM or SIGINT. If the handlers cannot be installed the
/// daemon keeps running (it can still be killed) rather than refusing to
/// start.
pub async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "cannot install signal handlers; graceful shutdown disabled");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => info!(signal = "SIGTERM", "signal received"),
        _ = int.recv() => info!(signal = "SIGINT", "signal received"),
    }
}
