//! Getting data into and out of primer.
//!
//! [`ReadConfig`] / [`Read`]: the `read` stage turns JSONL (plain, `.gz`, `.zst`), Parquet
//! and plain text files matched by globs into a document dataset, one task per file. Bad
//! lines (invalid UTF-8, broken JSON, a missing or non-string text field) are reported with
//! `file:line`, skipped and counted; good lines flow on.
//!
//! [`WriteConfig`] / [`Write`]: the `write` stage exports a dataset as JSONL (plain, gzip,
//! zstd) or Parquet files into a directory, one file per input part, each written under a
//! temporary name and renamed when complete.

mod read;
mod write;

pub use read::{Read, ReadConfig, ReadFormat};
pub use write::{Compression, Write, WriteConfig, WriteFormat};

/// Open a file for reading, decompressing `.gz` and `.zst` by extension.
pub fn open_maybe_compressed(
    path: &std::path::Path,
) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
    let file = std::fs::File::open(path)?;
    let name = path.to_string_lossy();
    const BUF: usize = 1 << 20;
    Ok(if name.ends_with(".gz") {
        Box::new(std::io::BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        Box::new(std::io::BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(file)?,
        ))
    } else {
        Box::new(std::io::BufReader::with_capacity(BUF, file))
    })
}
