//! How long operations report progress: the engine calls this trait, the binary draws it
//! (or ignores it in scripts).

/// Progress of a long operation. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A new phase begins; `total` is its size in bytes (or items) when known.
    fn start(&self, _phase: &str, _total: Option<u64>) {}
    /// `n` more bytes (or items) done in the current phase.
    fn inc(&self, _n: u64) {}
    /// A file or item is being worked on.
    fn item(&self, _name: &str) {}
    /// A problem that does not stop the operation (an unreadable file, a damaged blob).
    fn warn(&self, _msg: &str) {}
    /// The current phase is done.
    fn finish(&self) {}
}

/// Progress that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
