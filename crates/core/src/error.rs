use std::path::{Path, PathBuf};

/// Errors of dataset I/O and stages, split by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input or settings are wrong; the message says what to change.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow refused data (a bug in primer or in a stage).
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A manifest is missing or malformed.
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// A stage failed; wraps the error with the stage id.
    #[error("stage `{stage}`: {source}")]
    Stage {
        stage: String,
        #[source]
        source: Box<Error>,
    },
    /// An external service (an LLM API, a web server) refuses or fails in a way no retry
    /// fixes; the message names the service and what to check.
    #[error("{0}")]
    External(String),
    /// The run stopped at a limit the user set (an LLM budget); what was done is kept and
    /// a rerun continues from it.
    #[error("{0}")]
    Stopped(String),
    /// The run was cancelled (Ctrl-C or a failed sibling task).
    #[error("cancelled")]
    Cancelled,
    /// Something primer itself got wrong.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<primer_store::Error> for Error {
    fn from(e: primer_store::Error) -> Self {
        match e {
            primer_store::Error::Io { path, source } => Error::Io { path, source },
            primer_store::Error::Input(m) => Error::Input(m),
            e @ primer_store::Error::Store { .. } => Error::External(e.to_string()),
        }
    }
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn parquet(path: impl AsRef<Path>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Error::Arrow {
            context: context.into(),
            source,
        }
    }
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }
    /// Whether the user can fix this by changing input or settings.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Input(_) | Error::Manifest { .. } | Error::Stopped(_) => true,
            Error::Stage { source, .. } => source.is_user_error(),
            _ => false,
        }
    }
}
