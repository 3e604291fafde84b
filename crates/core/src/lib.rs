//! The ground every primer stage stands on.
//!
//! A **dataset** is a directory of Parquet part files plus `_manifest.json`
//! ([`Manifest`]): the schema, the rows and bytes of every part, the fingerprint
//! of the stage that wrote it and that stage's counters. [`Dataset`] reads one
//! back as a stream of Arrow `RecordBatch`es, part by part. [`StageDir`] is the
//! writing side: it runs a stage's work as numbered tasks, writes each task's
//! parts under temporary names, renames them when complete and records the task
//! as done, so a killed run resumes without redoing finished tasks; the manifest
//! is written last. The [`Stage`] trait is what every stage kind implements, and
//! [`documents_schema`] is the contract for document datasets.

mod alloc;
mod counters;
mod dataset;
mod error;
mod manifest;
mod schema;
mod stage;
mod stage_dir;
pub mod testing;

pub use alloc::tune_allocator;
pub use counters::Counters;
pub use dataset::{Dataset, PartReader, PartSource};
pub use error::{Error, Result};
pub use manifest::{MANIFEST_FILE, Manifest, PartInfo, Provenance, StageInfo};
pub use schema::{
    DOCUMENTS_COLUMNS, FieldJson, SchemaJson, documents_fields, documents_schema, schema_from_json,
    schema_to_json,
};
pub use stage::{
    BuildContext, InputSchema, Stage, TaskContext, fetch_input, file_stamp, location_name,
};
pub use stage_dir::{
    CACHE_DIR, StageDir, StatusFn, TaskOutput, TaskRecord, WriteOptions, task_file_name,
};

/// The version of primer, recorded in every manifest and folded into every fingerprint.
pub const PROGRAM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A stable 128-bit hash as 32 hex digits (xxh3-128), used for fingerprints and ids.
pub fn hash_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// `n` with a comma between groups of three digits (`1,234,567`), for messages and reports.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Write `bytes` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The temporary name a file is written under before it is renamed into place.
pub fn tmp_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// `path` joined to `base` (unless absolute), with `.` and `..` removed lexically so
/// messages show plain paths. An object-storage location (`s3://bucket/key`) becomes the
/// path of its local staging copy ([`primer_store::staging_path`]).
pub fn resolve_path(base: &std::path::Path, path: &str) -> std::path::PathBuf {
    use std::path::Component;
    if primer_store::is_remote(path)
        && let Ok(loc) = primer_store::Location::parse(path)
    {
        return primer_store::staging_path(&loc);
    }
    let joined = base.join(path);
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
