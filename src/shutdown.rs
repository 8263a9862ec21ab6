//! One root cancellation token for the process, and the triggers that fire it:
//! SIGTERM, SIGINT/ctrl-c, and (wired by `serve`) stdin EOF. Every long-lived task
//! ends when this token is cancelled: it selects on it or on a child of it.

use tokio_util::sync::CancellationToken;

/// Cancel `root` on the first termination signal. The task watching for it
/// ends with the tree, whatever cancelled it.
pub fn on_signals(root: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            _ = root.cancelled() => {}
            _ = wait_for_signal() => {
                tracing::info!("termination signal received");
                root.cancel();
            }
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
