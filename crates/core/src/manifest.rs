use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Counters, Error, Result, SchemaJson, hash_hex, write_atomic};

/// The file name of a dataset's manifest.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// What a dataset is: written last, after every part is in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `primer-dataset/1`.
    pub format: String,
    /// The stage that wrote the dataset.
    pub stage: StageInfo,
    /// Hash of the stage's settings, its inputs' manifests and the program version.
    pub fingerprint: String,
    pub program_version: String,
    /// What the fingerprint was made of, so `primer plan` can say why a stage reruns.
    pub provenance: Provenance,
    pub schema: SchemaJson,
    pub rows: u64,
    pub bytes: u64,
    pub parts: Vec<PartInfo>,
    /// `rows_in`, `rows_out`, `dropped.<reason>`, … summed over tasks.
    pub counters: Counters,
    /// The first warnings the stage reported (bad lines, skipped records), with file and line.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Facts about the stage's output a reader should know (`modifies_text`, export paths, …).
    #[serde(default)]
    pub notes: serde_json::Map<String, serde_json::Value>,
    pub tasks: u64,
    /// Tasks kept from an earlier, interrupted run of the same stage.
    pub tasks_reused: u64,
    /// Wall-clock seconds of the run that completed the dataset.
    pub seconds: f64,
    /// Unix time when the manifest was written.
    pub created_unix: u64,
}

/// The parts of a stage's fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Hash of the stage's kind and settings.
    pub settings: String,
    /// For each input stage id, the [`Manifest::content_id`] it had.
    pub inputs: std::collections::BTreeMap<String, String>,
    /// Hash of what the stage depends on outside the pipeline (input files' sizes, times).
    pub external: String,
    pub program_version: String,
}

impl Provenance {
    /// The fingerprint: one hash of all the parts.
    pub fn fingerprint(&self) -> String {
        hash_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub id: String,
    pub kind: String,
}

/// One Parquet part file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// File name relative to the dataset directory.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
}

impl Manifest {
    pub const FORMAT: &'static str = "primer-dataset/1";

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Manifest {
                    path: path.clone(),
                    message: "no manifest: not a primer dataset, or its stage has not completed"
                        .into(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if m.format != Self::FORMAT {
            return Err(Error::Manifest {
                path,
                message: format!(
                    "format `{}`, this primer reads `{}`",
                    m.format,
                    Self::FORMAT
                ),
            });
        }
        Ok(m)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        text.push('\n');
        write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
    }

    /// What a downstream stage's fingerprint depends on: this dataset's fingerprint and
    /// the identity of its content (parts, rows, bytes), but not timings.
    pub fn content_id(&self) -> String {
        let mut s = String::new();
        s.push_str(&self.fingerprint);
        for p in &self.parts {
            s.push_str(&format!("|{}:{}:{}", p.file, p.rows, p.bytes));
        }
        s.push_str(&serde_json::to_string(&self.schema).unwrap_or_default());
        hash_hex(s.as_bytes())
    }
}
