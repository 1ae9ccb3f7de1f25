//! Graceful shutdown: one signal (SIGTERM or SIGINT) that every part of the process can wait on.
//!
//! The controllers stop taking new work when it fires and finish what is in flight; the process
//! gives them a bounded time, then releases the leader lease and exits. A second signal while
//! draining is not needed: the bound ends the wait.

use tokio::sync::watch;

/// The process-wide shutdown request.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A shutdown that nothing has requested yet.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }

    /// Requests shutdown (idempotent).
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown is requested. The future is `Send + Sync + 'static`, as
    /// kube-runtime's `graceful_shutdown_on` wants.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // The sender lives as long as any `Shutdown`; if all are gone, nobody can ask.
            if rx.wait_for(|requested| *requested).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Requests shutdown on the first SIGTERM or SIGINT (in the background).
    pub fn on_signals(&self) -> std::io::Result<()> {
        #[cfg(unix)]
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let which = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            };
            #[cfg(not(unix))]
            let which = match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => return,
            };
            tracing::info!(
                signal = which,
                "shutdown requested: no new reconciles; finishing those in flight"
            );
            shutdown.request();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requested_resolves_for_every_waiter() {
        let shutdown = Shutdown::new();
        let early = shutdown.requested();
        assert!(!shutdown.is_requested());
        shutdown.request();
        early.await;
        shutdown.requested().await;
        assert!(shutdown.is_requested());
    }
}
