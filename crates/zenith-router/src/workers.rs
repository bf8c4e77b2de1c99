//! The threads that serve client connections: a few single-threaded tokio runtimes per core,
//! shared by every router of the process, each connection staying on the thread it was
//! given (HAProxy's `nbthread` and Pingora's no-steal runtime work the same way).
//!
//! Why not the caller's multi-thread runtime: a proxied request is two short wake-ups of
//! one task, and a work-stealing scheduler spends more on it than the proxying itself.
//! Workers wake each other to steal, tasks and their buffers move between cores, and idle
//! workers spin before they sleep. Measured on two cores, a request cost 50 µs of CPU on a
//! two-worker runtime and 37 µs on one thread; independent single-threaded workers come
//! close to the second figure and still use every core. Backend connections are pooled per worker for the same reason:
//! a connection is always driven by the thread whose event loop watches its socket.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

/// Workers per core. The router shares its host with the replicas it fronts, so the kernel
/// preempts its threads often; a preempted worker stalls every connection it owns until it
/// runs again. Two workers per core halve what one preemption stalls. Measured on two cores
/// shared with the load generator and two backends: p99 latency fell from about 5.5 ms with
/// one worker per core to about 4 ms with two, and throughput rose about 15 %; three per core
/// measured the same, four slightly worse.
const WORKERS_PER_CORE: usize = 2;
/// Idle workers cost little, but a very large host needs no more event loops than this.
const MAX_WORKERS: usize = 64;

thread_local! {
    /// The index of the worker running on this thread, if it is one.
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

struct Worker {
    handle: Handle,
    /// Connections given to this worker and not finished yet.
    open: AtomicUsize,
}

/// The process's connection workers.
pub(crate) struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

/// Counts a connection on its worker until dropped.
struct Assigned(&'static Worker);

impl Drop for Assigned {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// The workers, started on first use; `None` if no thread or runtime could be started
    /// (then connections are served on the caller's runtime, as correct and slower).
    pub(crate) fn get() -> Option<&'static Workers> {
        static WORKERS: OnceLock<Option<Workers>> = OnceLock::new();
        WORKERS
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let count = (cores * WORKERS_PER_CORE).min(MAX_WORKERS);
                match start(count) {
                    Ok(workers) => Some(workers),
                    Err(error) => {
                        tracing::warn!(%error, "cannot start router worker threads; serving on the caller's runtime");
                        None
                    }
                }
            })
            .as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    /// Runs `serve` on the worker with the fewest open connections (ties rotate). Sockets
    /// are registered with a runtime when first polled, so `serve` must create its own from
    /// a `std` socket.
    pub(crate) fn spawn(&'static self, serve: impl Future<Output = ()> + Send + 'static) {
        let n = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let worker = (0..n)
            .map(|i| &self.workers[(start + i) % n])
            .min_by_key(|w| w.open.load(Ordering::Relaxed))
            .expect("at least one worker");
        worker.open.fetch_add(1, Ordering::Relaxed);
        let assigned = Assigned(worker);
        worker.handle.spawn(async move {
            let _assigned = assigned;
            serve.await;
        });
    }
}

fn start(count: usize) -> std::io::Result<Workers> {
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name(format!("zenith-router-{index}"))
            .spawn(move || {
                INDEX.set(Some(index));
                runtime.block_on(std::future::pending::<()>());
            })?;
        workers.push(Worker {
            handle,
            open: AtomicUsize::new(0),
        });
    }
    Ok(Workers {
        workers,
        next: AtomicUsize::new(0),
    })
}

/// Which worker runs the current thread: 0 on any other thread.
pub(crate) fn current() -> usize {
    INDEX.get().unwrap_or(0)
}
