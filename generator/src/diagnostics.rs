//! Errors and warnings about the config, in the one format every step uses:
//! `FILE:LINE:COL: error: PATH: MESSAGE`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// Where a value sits in the file: the place it is written and, for aliased content, the
/// place the alias that brought it here is written. (Here, beside [`Position`], so that
/// `read` depends on `diagnostics` and not the other way round.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where the text is (inside the anchor for aliased content).
    pub defined: Position,
    /// Where it is used; differs from `defined` only through an alias or merge key.
    pub used: Position,
}

/// How bad a diagnostic is: errors stop the run, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The config cannot be rendered.
    Error,
    /// The config renders, but probably not as meant.
    Warning,
}

/// One finding about the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The config file.
    pub file: PathBuf,
    /// Where in the file, when known.
    pub span: Option<Span>,
    /// The dotted config path (`projects.istio.repositories`), empty for the whole file.
    pub path: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Diagnostic {
    /// An error at a position, with the config path given as a JSON pointer.
    pub fn error(file: &Path, span: Span, pointer: &str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_owned(),
            span: Some(span),
            path: dotted(pointer),
            message: message.into(),
        }
    }

    /// A warning at a position.
    pub fn warning(file: &Path, span: Span, pointer: &str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, span, pointer, message)
        }
    }

    /// An error about the file as a whole (cannot read it, not UTF-8).
    pub fn plain(file: &Path, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_owned(),
            span: None,
            path: String::new(),
            message: message.into(),
        }
    }

    /// True for errors, which stop the run.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if let Some(span) = self.span {
            write!(f, ":{}:{}", span.defined.line, span.defined.column)?;
        }
        write!(f, ": {kind}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(span) = self.span
            && span.used != span.defined
        {
            write!(
                f,
                " (reached through the alias or merge key at line {}, column {})",
                span.used.line, span.used.column
            )?;
        }
        Ok(())
    }
}

/// Turns a JSON pointer into the dotted path users read (`/projects/istio` -> `projects.istio`).
pub fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Sorts diagnostics by position so a run reads top to bottom, errors before warnings at a tie.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| d.span.map(|s| (s.defined.line, s.defined.column));
        key(a)
            .cmp(&key(b))
            .then(a.severity.cmp(&b.severity))
            .then(a.message.cmp(&b.message))
    });
}
