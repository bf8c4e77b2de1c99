//! The errors of parsing, validating and importing specs. Each one names the file, the line
//! and column, and the field path, so an editor can jump to it and a person can fix it without
//! guessing; they are collected into [`SpecErrors`] so one run reports every problem it can.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem in a spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecError {
    /// The file as the caller named it (not made absolute, so messages stay short).
    pub file: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    /// 1-based, in characters; 0 when unknown (compose warnings and errors know only lines).
    pub column: usize,
    /// Dotted path of the field, e.g. `services.web.replicas`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl SpecError {
    /// An error about the whole file (it cannot be read, it is not TOML at all).
    pub fn file(file: &Path, message: impl Into<String>) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one file, in document order; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    pub fn one(error: SpecError) -> SpecErrors {
        SpecErrors(vec![error])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, SpecError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a SpecError;
    type IntoIter = std::slice::Iter<'a, SpecError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_position_and_field_only_when_known() {
        let mut e = SpecError::file(Path::new("zenith.toml"), "cannot read it");
        assert_eq!(e.to_string(), "zenith.toml: cannot read it");
        e.line = 12;
        e.column = 11;
        e.field = "services.web.replicas".into();
        e.message = "expected an integer, found a string".into();
        assert_eq!(
            e.to_string(),
            "zenith.toml:12:11: services.web.replicas: expected an integer, found a string"
        );
        let all = SpecErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
