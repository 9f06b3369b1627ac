//! The runtime the load stage's store calls run on (an object store's, a Delta table log's): the
//! load stage is synchronous, called from blocking tasks and from the run's async code alike, and
//! a store's connections stay on the runtime that opened them.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::LoadError;

/// The runtime every store call runs on, for the whole process: never dropped, so dropping an
/// output never shuts a runtime down inside another one.
pub(super) fn runtime() -> Result<&'static tokio::runtime::Runtime, LoadError> {
    // Built inside `get_or_init`, so that two first callers never build two (the loser's would
    // be dropped, which panics on a runtime thread).
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("load-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| LoadError::Folder {
            path: PathBuf::from("store runtime"),
            source: std::io::Error::other(message.clone()),
        })
}

/// Runs `fut` on the store's runtime and blocks until it is done. Callable from anywhere: a
/// blocking task, a plain thread or async code (which it blocks, as file I/O would).
pub(super) fn wait<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, LoadError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| LoadError::Folder {
        path: PathBuf::from("store runtime"),
        source: std::io::Error::other("a store call stopped"),
    })
}
