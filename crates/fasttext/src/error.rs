//! Why a model file could not be loaded. Every variant names the file.

use std::path::PathBuf;

/// A model file that cannot be used. All of these are the file's fault (or the caller's
/// choice of file), none is retryable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read fastText model {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with fastText's magic number.
    #[error(
        "{} is not a fastText model (it does not start with fastText's magic number 793712314)",
        file.display()
    )]
    NotFastText { file: PathBuf },
    /// A fastText model of a format version newer than fastText 0.9 writes.
    #[error(
        "{} is fastText format version {version}; fastText 0.9 (and this reader) reads versions up to 12",
        file.display()
    )]
    Version { file: PathBuf, version: i32 },
    /// The file ends before the model does.
    #[error(
        "{} is truncated: {what} at byte {offset} needs {needed} more bytes, the file has {available}",
        file.display()
    )]
    Truncated {
        file: PathBuf,
        what: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// The file is a fastText model whose contents contradict each other.
    #[error("{} is not a valid fastText model: {reason}", file.display())]
    Invalid { file: PathBuf, reason: String },
    /// A valid fastText model that does not predict labels (word vectors), or uses
    /// something this reader does not know.
    #[error("{} cannot be used for prediction: {reason}", file.display())]
    Unsupported { file: PathBuf, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
