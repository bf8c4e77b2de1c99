//! zenith's declarative app model. A `zenith.toml` (or an imported docker-compose file) is
//! parsed into config types, validated with errors that name the file, line and field, and
//! turned into the validated [`AppSpec`] that the rest of zenith runs. It knows nothing of how
//! things run.
//!
//! ```no_run
//! let spec = zenith_spec::load(std::path::Path::new("zenith.toml"))?;
//! for service in &spec.services {
//!     println!("{}: {} replicas", service.name, service.replicas);
//! }
//! # Ok::<(), zenith_spec::SpecErrors>(())
//! ```

pub mod compose;
pub mod config;
pub mod cron;
mod error;
pub mod formula;
mod locate;
pub mod model;
pub mod overrides;
mod parse;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use model::*;
pub use parse::{ParseOptions, RETENTION_FILE, load, load_with_retention, parse, parse_with};
