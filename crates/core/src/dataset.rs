use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::{Error, Manifest, PartInfo, Result, schema_from_json};

/// A completed dataset: its directory and manifest. Reading streams batches part by part.
#[derive(Debug, Clone)]
pub struct Dataset {
    dir: PathBuf,
    manifest: Manifest,
    schema: SchemaRef,
    /// Where parts come from when they are not on local disk yet (a dataset in object
    /// storage, opened through its staging copy).
    source: Option<Arc<dyn PartSource>>,
}

/// Brings a part of a dataset to its local path when it is first read: a task that reads
/// one part of a stored dataset fetches that part alone.
pub trait PartSource: Send + Sync + std::fmt::Debug {
    /// Make `path` hold `part` (a no-op when it already does).
    fn fetch(&self, path: &Path, part: &PartInfo) -> Result<()>;
}

impl Dataset {
    /// Open the dataset in `dir`; fails with a clear message when it has no manifest
    /// (its stage never completed) or a part listed in the manifest is missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::read(&dir)?;
        let schema = schema_from_json(&manifest.schema)?;
        for p in &manifest.parts {
            let path = dir.join(&p.file);
            if !path.is_file() {
                return Err(Error::Manifest {
                    path: dir.join(crate::MANIFEST_FILE),
                    message: format!("part `{}` is listed but missing", p.file),
                });
            }
        }
        Ok(Dataset {
            dir,
            manifest,
            schema,
            source: None,
        })
    }

    /// A dataset at `dir` described by `manifest` whose parts `source` fetches when they
    /// are first read (see [`PartSource`]).
    pub fn open_fetching(
        dir: impl AsRef<Path>,
        manifest: Manifest,
        source: Arc<dyn PartSource>,
    ) -> Result<Dataset> {
        let schema = schema_from_json(&manifest.schema)?;
        Ok(Dataset {
            dir: dir.as_ref().to_path_buf(),
            manifest,
            schema,
            source: Some(source),
        })
    }

    /// The local path of part `part`, fetched first when the dataset has a source.
    pub fn local_part(&self, part: usize) -> Result<PathBuf> {
        let path = self.part_path(part);
        if let Some(s) = &self.source {
            s.fetch(&path, &self.manifest.parts[part])?;
        }
        Ok(path)
    }

    /// Every part on local disk (fetched where needed), in order: for readers that take
    /// the files themselves (DataFusion).
    pub fn local_parts(&self) -> Result<Vec<PathBuf>> {
        (0..self.num_parts()).map(|i| self.local_part(i)).collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    pub fn num_parts(&self) -> usize {
        self.manifest.parts.len()
    }
    pub fn rows(&self) -> u64 {
        self.manifest.rows
    }
    pub fn part_path(&self, part: usize) -> PathBuf {
        self.dir.join(&self.manifest.parts[part].file)
    }
    pub fn part_paths(&self) -> Vec<PathBuf> {
        (0..self.num_parts()).map(|i| self.part_path(i)).collect()
    }

    /// Stream the record batches of one part, at most `batch_size` rows each.
    pub fn read_part(&self, part: usize, batch_size: usize) -> Result<PartReader> {
        PartReader::open(&self.local_part(part)?, batch_size)
    }

    /// Stream the record batches of one part with only the named columns (those the part
    /// has), at most `batch_size` rows each: a scan that needs ids does not read the text.
    pub fn read_part_columns(
        &self,
        part: usize,
        batch_size: usize,
        columns: &[&str],
    ) -> Result<PartReader> {
        PartReader::open_columns(&self.local_part(part)?, batch_size, Some(columns))
    }

    /// Stream every batch of every part, in part order.
    pub fn batches(&self, batch_size: usize) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        (0..self.num_parts()).flat_map(move |i| match self.read_part(i, batch_size) {
            Ok(r) => Box::new(r) as Box<dyn Iterator<Item = Result<RecordBatch>>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }
}

/// Batches of one Parquet file; errors name the file.
pub struct PartReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
}

impl PartReader {
    pub fn open(path: &Path, batch_size: usize) -> Result<PartReader> {
        PartReader::open_columns(path, batch_size, None)
    }

    /// [`open`](Self::open), reading only `columns` when given.
    pub fn open_columns(
        path: &Path,
        batch_size: usize,
        columns: Option<&[&str]>,
    ) -> Result<PartReader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
        if let Some(cols) = columns {
            let mask = parquet::arrow::ProjectionMask::columns(
                builder.parquet_schema(),
                cols.iter().copied(),
            );
            builder = builder.with_projection(mask);
        }
        let inner = builder
            .with_batch_size(batch_size.max(1))
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        Ok(PartReader {
            path: path.to_path_buf(),
            inner,
        })
    }
    pub fn schema(&self) -> SchemaRef {
        arrow::record_batch::RecordBatchReader::schema(&self.inner)
    }
}

impl Iterator for PartReader {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|r| r.map_err(|e| Error::arrow(self.path.display().to_string(), e)))
    }
}
