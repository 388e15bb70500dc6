//! Graceful stop, shared by the three modes. Kubernetes sends SIGTERM and waits the pod's
//! grace period (30 s by default) before SIGKILL; in that window a mode finishes the page
//! or batch it is on, commits it with its cursor or watermark, and exits 0, so a rolling
//! update never throws work away.
//!
//! A second Ctrl-C exits at once (every write is transactional, so that is as safe as a
//! kill). Work loops poll [`Shutdown::requested`] between units of work (a page, a batch, a
//! round); waits that can last long (sleeping between rounds, backing off from GitHub)
//! race [`Shutdown::wait`] instead, so a stop is never held up by a timer.

use std::sync::Arc;

use tokio::sync::watch;

/// A stop request every task of a mode can see. Cloning is cheap; all clones see the
/// same request.
#[derive(Debug, Clone)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
    /// Held so the channel stays open: a closed channel must not read as a stop.
    sender: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// Starts listening for SIGTERM and Ctrl-C (SIGINT). Call it before the first unit of
    /// work so a signal that arrives early is not lost.
    pub fn on_signals() -> Self {
        let shutdown = Shutdown::never();
        let sender = shutdown.sender.clone();
        #[cfg(unix)]
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::spawn(async move {
            let ctrl_c = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            #[cfg(unix)]
            let signal = async move {
                match term {
                    Some(mut term) => {
                        tokio::select! {
                            _ = term.recv() => "SIGTERM",
                            _ = ctrl_c => "SIGINT",
                        }
                    }
                    None => {
                        ctrl_c.await;
                        "SIGINT"
                    }
                }
            };
            #[cfg(not(unix))]
            let signal = async move {
                ctrl_c.await;
                "Ctrl-C"
            };
            let name = signal.await;
            tracing::info!(
                signal = name,
                "stop requested; finishing the current page or batch (Ctrl-C again to stop at once)"
            );
            let _ = sender.send(true);
            // A second Ctrl-C means "now": every write is transactional, so exiting mid-page
            // loses nothing a restart will not fetch again.
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("second signal; exiting without finishing");
                std::process::exit(130);
            }
        });
        shutdown
    }

    /// A request that never comes, for library callers (benchmarks, tests) that stop by
    /// finishing.
    pub fn never() -> Self {
        let (sender, requested) = watch::channel(false);
        Shutdown {
            requested,
            sender: Arc::new(sender),
        }
    }

    /// True once a stop was requested.
    pub fn requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves when a stop is requested (at once if it already was).
    pub async fn wait(&self) {
        let mut requested = self.requested.clone();
        if requested.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `duration`, or less if a stop is requested; true when it slept through.
    pub async fn sleep(&self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.wait() => false,
        }
    }
}
