//! [`Secret`]: a string that must never reach a log line, an error message or a debug dump.
//!
//! API token secrets pass through code that logs generously (`tracing` fields, `{:?}` in error
//! chains, `dbg`-style test output). Wrapping them in a type whose `Debug` and `Display` both
//! print `**REDACTED**` makes leaking one an explicit act: the only way to the text is
//! [`Secret::expose`], which is easy to search for in review.

use std::fmt;

/// What `Debug` and `Display` print in place of a secret.
pub const REDACTED: &str = "**REDACTED**";

/// A secret string, such as the `zt_…` text of an API token.
///
/// ```
/// use zenith_server::secret::Secret;
///
/// let secret = Secret::new("zt_0123");
/// assert_eq!(format!("{secret} {secret:?}"), "**REDACTED** **REDACTED**");
/// assert_eq!(secret.expose(), "zt_0123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`; from here on it prints as `**REDACTED**`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text itself. Call this only where the secret is meant to go: the one-time
    /// display to the user who created it, the token file, or an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "zt_deadbeef";

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new(TEXT);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{secret:#?}"), REDACTED);
    }

    #[test]
    fn redaction_holds_inside_other_types() {
        // The usual leak is not `{secret}` but a struct or tuple that derives Debug.
        #[derive(Debug)]
        #[allow(dead_code)] // only read through Debug
        struct Request {
            token: Secret,
        }
        let dump = format!(
            "{:?}",
            Request {
                token: Secret::new(TEXT)
            }
        );
        assert!(!dump.contains(TEXT), "{dump}");
        assert!(dump.contains(REDACTED), "{dump}");
        let pair = format!("{:?}", (Secret::from(TEXT.to_owned()), 1));
        assert!(!pair.contains(TEXT), "{pair}");
    }

    #[test]
    fn expose_returns_the_text() {
        assert_eq!(Secret::new(TEXT).expose(), TEXT);
    }
}
