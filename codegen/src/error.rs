//! A problem in the spec, named by file, line and entry.

use std::fmt;

use crate::model::Origin;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: Option<usize>,
    /// `kind/NAME`, or empty for a problem with the file as a whole.
    pub entry: String,
    pub message: String,
}

impl SpecError {
    pub fn at(origin: &Origin, message: impl Into<String>) -> Self {
        SpecError {
            file: origin.file.clone(),
            line: origin.line,
            entry: origin.key.clone(),
            message: message.into(),
        }
    }

    pub fn file(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        SpecError {
            file: file.to_string(),
            line,
            entry: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spec/{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.entry.is_empty() {
            write!(f, ": {}", self.entry)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpecError {}
