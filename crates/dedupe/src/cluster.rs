//! The out-of-core clustering both dedupe stages share, in three phases (see
//! [`Stage::phases`](primer_core::Stage::phases)):
//!
//! 1. **keys**, one task per input part: every document's keys (MinHash band hashes, or
//!    one hash of the normalised text) are sorted and spilled to `keys-PPPPP.bin` in the
//!    stage's scratch directory, with a fixed-size record per document (`docs-PPPPP.bin`:
//!    its rank for the keep rule) and its id (`ids-PPPPP.bin`).
//! 2. **cluster**, one task: a k-way merge of all parts' sorted key files; documents with
//!    an equal key are joined in a union-find (optionally only when the exact Jaccard
//!    similarity of their shingle sets reaches a threshold); each cluster keeps its best
//!    document by the keep rule (ties: input order). Memory: 20 bytes per document
//!    (union-find parent, rank, cluster size, kept member) plus one read buffer per part.
//!    Writes `assign-PPPPP.bin` (per row: the kept document and the cluster size) and
//!    `repids.bin` (the ids of kept documents of clusters of two or more).
//! 3. **output**, one task per input part: the part's rows with `…cluster` (the id of the
//!    document the cluster keeps; null for a document without duplicates) and
//!    `…cluster_size` columns; duplicates are dropped (or kept, flagged) and listed in the
//!    side dataset `removed` with the id they duplicate.
//!
//! A document's global number is its position in input order (part, then row); every
//! decision depends on input order and content only, never on threads or shards.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringBuilder, UInt32Array, UInt32Builder,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use primer_core::{Dataset, Error, InputSchema, Result, TaskContext, TaskOutput};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which document of a cluster is kept.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeepRule {
    /// The first in input order (input part, then row).
    #[default]
    First,
    /// The one with the smallest `id` (byte order; ties: input order).
    SmallestId,
    /// The one with the longest text in bytes (ties: input order).
    Longest,
    /// The one with the highest value of `score_column` (nulls and NaN lowest; ties: input
    /// order).
    HighestScore,
}

/// What the three phases need to know besides the keys.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    pub keep: KeepRule,
    pub score_column: Option<String>,
    pub drop_duplicates: bool,
    /// Join candidates only when the exact Jaccard similarity of their shingles is at
    /// least this.
    pub verify_jaccard: Option<f64>,
    /// Names of the two added columns.
    pub cluster_column: String,
    pub size_column: String,
}

/// Computes a document's keys (and, for verification, its shingle set).
pub(crate) trait Keyer: Send + Sync {
    type State: Send;
    fn state(&self) -> Self::State;
    /// The keys of `text` into `keys` (cleared first); the sorted distinct shingles into
    /// `shingles` when `want_shingles`. No keys: the document has no duplicates.
    fn keys(
        &self,
        st: &mut Self::State,
        text: &str,
        keys: &mut Vec<u128>,
        shingles: &mut Vec<u64>,
        want_shingles: bool,
    );
}

const DOC_RECORD: usize = 24;
const KEY_RECORD: usize = 20;
const NONE: u32 = u32::MAX;

fn keys_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("keys-{part:05}.bin"))
}
fn docs_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("docs-{part:05}.bin"))
}
fn ids_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("ids-{part:05}.bin"))
}
fn ids_sorted_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("idsorted-{part:05}.bin"))
}
fn shingles_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("shingles-{part:05}.bin"))
}
fn assign_file(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("assign-{part:05}.bin"))
}
fn repids_file(dir: &Path) -> PathBuf {
    dir.join("repids.bin")
}

/// A file written under a temporary name and renamed into place when finished.
struct Spill {
    path: PathBuf,
    tmp: PathBuf,
    w: BufWriter<File>,
}

impl Spill {
    fn create(path: PathBuf) -> Result<Spill> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = primer_core::tmp_path(&path);
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Spill {
            path,
            tmp,
            w: BufWriter::with_capacity(1 << 20, f),
        })
    }
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))
    }
    fn finish(self) -> Result<()> {
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

fn open_read(path: &Path) -> Result<BufReader<File>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, f))
}

/// Read exactly `buf.len()` bytes, or `Ok(false)` at a clean end of file.
fn read_record(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::Internal(format!(
                    "{}: truncated spill file",
                    path.display()
                )));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(true)
}

fn read_string(r: &mut impl Read, path: &Path) -> Result<Option<String>> {
    let mut len = [0u8; 4];
    if !read_record(r, &mut len, path)? {
        return Ok(None);
    }
    let mut b = vec![0u8; u32::from_le_bytes(len) as usize];
    if !read_record(r, &mut b, path)? && !b.is_empty() {
        return Err(Error::Internal(format!("{}: truncated", path.display())));
    }
    String::from_utf8(b)
        .map(Some)
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
}

/// The output schema: the input's columns (without earlier columns of the same names)
/// plus the cluster id and size columns.
pub(crate) fn output_schema(
    s: &ClusterSettings,
    inputs: &[InputSchema],
    kind: &str,
) -> Result<SchemaRef> {
    let [input] = inputs else {
        return Err(Error::input(format!(
            "a `{kind}` stage takes exactly one input, got {}",
            inputs.len()
        )));
    };
    let schema = &input.schema;
    for col in ["id", "text"] {
        let f = schema.field_with_name(col).map_err(|_| {
            Error::input(format!(
                "input `{}` has no column `{col}`, which `{kind}` needs",
                input.id
            ))
        })?;
        if !matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            return Err(Error::input(format!(
                "input `{}`: column `{col}` is {}, `{kind}` needs text",
                input.id,
                f.data_type()
            )));
        }
    }
    if s.keep == KeepRule::HighestScore {
        let Some(col) = &s.score_column else {
            return Err(Error::input(
                "keep = \"highest_score\" needs `score_column`",
            ));
        };
        let f = schema.field_with_name(col).map_err(|_| {
            Error::input(format!(
                "input `{}` has no column `{col}` (score_column)",
                input.id
            ))
        })?;
        if !f.data_type().is_numeric() {
            return Err(Error::input(format!(
                "input `{}`: score_column `{col}` is {}, not a number",
                input.id,
                f.data_type()
            )));
        }
    }
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != &s.cluster_column && f.name() != &s.size_column)
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(&s.cluster_column, DataType::Utf8, true));
    fields.push(Field::new(&s.size_column, DataType::UInt32, false));
    Ok(Arc::new(Schema::new(fields)))
}

/// The side dataset `removed`: each dropped duplicate, the id it duplicates, its cluster's
/// size.
pub(crate) fn side_outputs(s: &ClusterSettings) -> Vec<(String, SchemaRef)> {
    vec![(
        "removed".to_string(),
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("duplicate_of", DataType::Utf8, false),
            Field::new(&s.size_column, DataType::UInt32, false),
        ])),
    )]
}

/// Phases: keys per part, one cluster task, output per part.
pub(crate) fn phases(inputs: &[Dataset]) -> Vec<usize> {
    let parts = inputs.first().map_or(0, Dataset::num_parts);
    vec![parts, 1, parts]
}

/// Run global task `task` of the three phases.
pub(crate) fn run_task<K: Keyer>(
    s: &ClusterSettings,
    keyer: &K,
    task: usize,
    ctx: &TaskContext,
    out: &mut TaskOutput,
) -> Result<()> {
    let parts = ctx.inputs[0].num_parts();
    if task < parts {
        keys_task(s, keyer, task, ctx, out)
    } else if task == parts {
        cluster_task(s, parts, ctx, out)
    } else {
        output_task(s, task - parts - 1, ctx, out)
    }
}

fn text_column(batch: &RecordBatch) -> Result<ArrayRef> {
    let c = batch
        .column_by_name("text")
        .ok_or_else(|| Error::input("no column `text`"))?;
    cast(c, &DataType::LargeUtf8).map_err(|e| Error::arrow("text column", e))
}

fn id_column(batch: &RecordBatch) -> Result<ArrayRef> {
    let c = batch
        .column_by_name("id")
        .ok_or_else(|| Error::input("no column `id`"))?;
    cast(c, &DataType::Utf8).map_err(|e| Error::arrow("id column", e))
}

/// The keep rule's rank of a row: smaller is better.
fn rank_of(s: &ClusterSettings, text_len: usize, score: Option<f64>) -> u64 {
    match s.keep {
        KeepRule::First | KeepRule::SmallestId => 0,
        KeepRule::Longest => u64::MAX - text_len as u64,
        KeepRule::HighestScore => match score {
            Some(v) if !v.is_nan() => {
                // Order-preserving bits of a float, inverted so higher scores rank first.
                let b = v.to_bits();
                let ordered = if b >> 63 == 1 { !b } else { b | (1 << 63) };
                !ordered
            }
            _ => u64::MAX,
        },
    }
}

fn keys_task<K: Keyer>(
    s: &ClusterSettings,
    keyer: &K,
    part: usize,
    ctx: &TaskContext,
    out: &mut TaskOutput,
) -> Result<()> {
    let dir = ctx.scratch_dir;
    let want_shingles = s.verify_jaccard.is_some();
    let mut keys: Vec<(u128, u32)> = Vec::new();
    let mut docs = Spill::create(docs_file(dir, part))?;
    let mut ids = Spill::create(ids_file(dir, part))?;
    let mut shingle_out = if want_shingles {
        Some(Spill::create(shingles_file(dir, part))?)
    } else {
        None
    };
    let mut sorted_ids: Vec<(String, u32)> = Vec::new();
    let mut shingle_off: u64 = 0;
    let mut row: u32 = 0;
    let path = ctx.inputs[0].part_path(part);
    for batch in ctx.inputs[0].read_part(part, ctx.batch_size)? {
        ctx.check_cancelled()?;
        let batch = batch?;
        let text = text_column(&batch)?;
        let text = text.as_string::<i64>();
        let id = id_column(&batch)?;
        let id = id.as_string::<i32>();
        let score = match (&s.score_column, s.keep) {
            (Some(c), KeepRule::HighestScore) => Some(
                cast(
                    batch
                        .column_by_name(c)
                        .ok_or_else(|| Error::input(format!("no column `{c}`")))?,
                    &DataType::Float64,
                )
                .map_err(|e| Error::arrow("score column", e))?,
            ),
            _ => None,
        };
        let score = score
            .as_ref()
            .map(|a| a.as_primitive::<arrow::datatypes::Float64Type>());
        for i in 0..batch.num_rows() {
            if text.is_null(i) {
                out.warn(format!(
                    "{}: row {}: `text` is null; treated as empty (no duplicates)",
                    path.display(),
                    row as usize + i
                ));
                out.count("null_text", 1);
            }
        }
        let results: Vec<(Vec<u128>, Vec<u64>)> = (0..batch.num_rows())
            .into_par_iter()
            .map_init(
                || keyer.state(),
                |st, i| {
                    let mut k = Vec::new();
                    let mut sh = Vec::new();
                    if !text.is_null(i) {
                        keyer.keys(st, text.value(i), &mut k, &mut sh, want_shingles);
                    }
                    (k, sh)
                },
            )
            .collect();
        for (i, (k, sh)) in results.into_iter().enumerate() {
            let r = row + i as u32;
            if k.is_empty() {
                out.count("docs_without_keys", 1);
            }
            keys.extend(k.into_iter().map(|k| (k, r)));
            let len = if text.is_null(i) {
                0
            } else {
                text.value(i).len()
            };
            let sc = score.and_then(|a| (!a.is_null(i)).then(|| a.value(i)));
            let mut rec = [0u8; DOC_RECORD];
            rec[0..8].copy_from_slice(&rank_of(s, len, sc).to_le_bytes());
            rec[8..16].copy_from_slice(&shingle_off.to_le_bytes());
            rec[16..20].copy_from_slice(&(sh.len() as u32).to_le_bytes());
            docs.put(&rec)?;
            if let Some(so) = &mut shingle_out {
                for x in &sh {
                    so.put(&x.to_le_bytes())?;
                }
                shingle_off += sh.len() as u64;
            }
            let idv = if id.is_null(i) { "" } else { id.value(i) };
            ids.put(&(idv.len() as u32).to_le_bytes())?;
            ids.put(idv.as_bytes())?;
            if s.keep == KeepRule::SmallestId {
                sorted_ids.push((idv.to_string(), r));
            }
        }
        row = row
            .checked_add(batch.num_rows() as u32)
            .ok_or_else(|| Error::input(format!("{}: more than 2^32 rows", path.display())))?;
    }
    keys.par_sort_unstable();
    let mut kf = Spill::create(keys_file(dir, part))?;
    for (k, r) in &keys {
        kf.put(&k.to_le_bytes())?;
        kf.put(&r.to_le_bytes())?;
    }
    kf.finish()?;
    if s.keep == KeepRule::SmallestId {
        sorted_ids.par_sort_unstable();
        let mut f = Spill::create(ids_sorted_file(dir, part))?;
        for (id, r) in &sorted_ids {
            f.put(&(id.len() as u32).to_le_bytes())?;
            f.put(id.as_bytes())?;
            f.put(&r.to_le_bytes())?;
        }
        f.finish()?;
    }
    docs.finish()?;
    ids.finish()?;
    if let Some(so) = shingle_out {
        so.finish()?;
    }
    out.count("keys", keys.len() as u64);
    Ok(())
}

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    /// Join the sets of `a` and `b`; the smaller root becomes the root. True when they
    /// were apart.
    fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        true
    }
}

/// Shingle sets read back for verification.
struct ShingleStore {
    docs: Vec<File>,
    shingles: Vec<File>,
    paths: Vec<PathBuf>,
    offsets: Vec<u64>,
}

impl ShingleStore {
    fn read(&self, doc: u32) -> Result<Vec<u64>> {
        let part = self.offsets.partition_point(|&o| o <= doc as u64) - 1;
        let row = doc as u64 - self.offsets[part];
        let mut rec = [0u8; DOC_RECORD];
        self.docs[part]
            .read_exact_at(&mut rec, row * DOC_RECORD as u64)
            .map_err(|e| Error::io(&self.paths[part], e))?;
        let off = u64::from_le_bytes(rec[8..16].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(rec[16..20].try_into().expect("4 bytes")) as usize;
        let mut buf = vec![0u8; n * 8];
        self.shingles[part]
            .read_exact_at(&mut buf, off * 8)
            .map_err(|e| Error::io(&self.paths[part], e))?;
        Ok(buf
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// How many earlier members of a bucket a document is compared with when verifying.
const VERIFY_WINDOW: usize = 64;

fn cluster_task(
    s: &ClusterSettings,
    parts: usize,
    ctx: &TaskContext,
    out: &mut TaskOutput,
) -> Result<()> {
    let dir = ctx.scratch_dir;
    // Global numbering: part offsets from the per-row records.
    let mut offsets = Vec::with_capacity(parts + 1);
    let mut total: u64 = 0;
    for p in 0..parts {
        offsets.push(total);
        let path = docs_file(dir, p);
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        total += len / DOC_RECORD as u64;
    }
    offsets.push(total);
    if total >= NONE as u64 {
        return Err(Error::input(format!(
            "{total} documents: dedupe handles fewer than {NONE} per stage; split the input"
        )));
    }
    let n = total as usize;
    let mut rank: Vec<u64> = Vec::with_capacity(n);
    for p in 0..parts {
        let path = docs_file(dir, p);
        let mut r = open_read(&path)?;
        let mut rec = [0u8; DOC_RECORD];
        while read_record(&mut r, &mut rec, &path)? {
            rank.push(u64::from_le_bytes(rec[0..8].try_into().expect("8 bytes")));
        }
    }
    if s.keep == KeepRule::SmallestId {
        rank_by_id(dir, parts, &offsets, &mut rank)?;
    }
    let mut uf = UnionFind {
        parent: (0..n as u32).collect(),
    };
    let store = match s.verify_jaccard {
        Some(_) => Some(ShingleStore {
            docs: (0..parts)
                .map(|p| File::open(docs_file(dir, p)).map_err(|e| Error::io(docs_file(dir, p), e)))
                .collect::<Result<_>>()?,
            shingles: (0..parts)
                .map(|p| {
                    File::open(shingles_file(dir, p))
                        .map_err(|e| Error::io(shingles_file(dir, p), e))
                })
                .collect::<Result<_>>()?,
            paths: (0..parts).map(|p| shingles_file(dir, p)).collect(),
            offsets: offsets.clone(),
        }),
        None => None,
    };
    // k-way merge of the sorted key files: equal keys are candidates.
    let mut readers: Vec<(BufReader<File>, PathBuf)> = (0..parts)
        .map(|p| Ok((open_read(&keys_file(dir, p))?, keys_file(dir, p))))
        .collect::<Result<_>>()?;
    let next =
        |p: usize, readers: &mut Vec<(BufReader<File>, PathBuf)>| -> Result<Option<(u128, u32)>> {
            let mut rec = [0u8; KEY_RECORD];
            let (r, path) = &mut readers[p];
            if !read_record(r, &mut rec, path)? {
                return Ok(None);
            }
            let k = u128::from_le_bytes(rec[0..16].try_into().expect("16 bytes"));
            let row = u32::from_le_bytes(rec[16..20].try_into().expect("4 bytes"));
            Ok(Some((k, (offsets[p] + row as u64) as u32)))
        };
    let mut heap = BinaryHeap::new();
    for p in 0..parts {
        if let Some((k, d)) = next(p, &mut readers)? {
            heap.push(std::cmp::Reverse((k, d, p)));
        }
    }
    let mut run: Vec<u32> = Vec::new();
    let mut run_key: Option<u128> = None;
    let mut candidate_pairs: u64 = 0;
    let mut rejected: u64 = 0;
    let mut cache: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut merged: u64 = 0;
    let mut flush = |run: &mut Vec<u32>,
                     uf: &mut UnionFind,
                     cache: &mut HashMap<u32, Vec<u64>>|
     -> Result<()> {
        if run.len() > 1 {
            candidate_pairs += (run.len() * (run.len() - 1) / 2) as u64;
            match (&store, s.verify_jaccard) {
                (Some(store), Some(t)) => {
                    cache.clear();
                    for j in 1..run.len() {
                        let d = run[j];
                        for &e in run[..j].iter().rev().take(VERIFY_WINDOW) {
                            if uf.find(d) == uf.find(e) {
                                continue;
                            }
                            for x in [d, e] {
                                if let std::collections::hash_map::Entry::Vacant(v) = cache.entry(x)
                                {
                                    v.insert(store.read(x)?);
                                }
                            }
                            if crate::minhash::jaccard(&cache[&d], &cache[&e]) >= t {
                                uf.union(d, e);
                            } else {
                                rejected += 1;
                            }
                        }
                    }
                }
                _ => {
                    for &d in &run[1..] {
                        uf.union(run[0], d);
                    }
                }
            }
        }
        run.clear();
        Ok(())
    };
    while let Some(std::cmp::Reverse((k, d, p))) = heap.pop() {
        merged += 1;
        if merged.is_multiple_of(1 << 20) {
            ctx.check_cancelled()?;
        }
        if run_key != Some(k) {
            flush(&mut run, &mut uf, &mut cache)?;
            run_key = Some(k);
        }
        if run.last() != Some(&d) {
            run.push(d);
        }
        if let Some((k2, d2)) = next(p, &mut readers)? {
            heap.push(std::cmp::Reverse((k2, d2, p)));
        }
    }
    flush(&mut run, &mut uf, &mut cache)?;
    drop(readers);
    // Each cluster keeps its best member: least (rank, input position).
    let mut size = vec![0u32; n];
    let mut best = vec![NONE; n];
    for d in 0..n as u32 {
        let r = uf.find(d) as usize;
        size[r] += 1;
        let b = best[r];
        if b == NONE || (rank[d as usize], d) < (rank[b as usize], b) {
            best[r] = d;
        }
    }
    drop(rank);
    let mut clusters = 0u64;
    let mut duplicates = 0u64;
    for p in 0..parts {
        let mut f = Spill::create(assign_file(dir, p))?;
        for d in offsets[p]..offsets[p + 1] {
            let r = uf.find(d as u32) as usize;
            let (rep, sz) = if size[r] > 1 {
                (best[r], size[r])
            } else {
                (NONE, 1)
            };
            if sz > 1 {
                if rep == d as u32 {
                    clusters += 1;
                } else {
                    duplicates += 1;
                }
            }
            f.put(&rep.to_le_bytes())?;
            f.put(&sz.to_le_bytes())?;
        }
        f.finish()?;
    }
    let mut reps = Spill::create(repids_file(dir))?;
    for (p, &first) in offsets.iter().take(parts).enumerate() {
        let path = ids_file(dir, p);
        let mut r = open_read(&path)?;
        let mut d = first as u32;
        while let Some(id) = read_string(&mut r, &path)? {
            let root = uf.find(d) as usize;
            if size[root] > 1 && best[root] == d {
                reps.put(&d.to_le_bytes())?;
                reps.put(&(id.len() as u32).to_le_bytes())?;
                reps.put(id.as_bytes())?;
            }
            d += 1;
        }
    }
    reps.finish()?;
    out.count("documents", n as u64);
    out.count("clusters", clusters);
    out.count("duplicates", duplicates);
    out.count("candidate_pairs", candidate_pairs);
    if s.verify_jaccard.is_some() {
        out.count("candidate_pairs_below_jaccard", rejected);
    }
    Ok(())
}

/// Replace each document's rank by its position in id order (ties: input order), from a
/// merge of the parts' id-sorted files.
fn rank_by_id(dir: &Path, parts: usize, offsets: &[u64], rank: &mut [u64]) -> Result<()> {
    let mut readers: Vec<(BufReader<File>, PathBuf)> = (0..parts)
        .map(|p| {
            Ok((
                open_read(&ids_sorted_file(dir, p))?,
                ids_sorted_file(dir, p),
            ))
        })
        .collect::<Result<_>>()?;
    let next = |p: usize,
                readers: &mut Vec<(BufReader<File>, PathBuf)>|
     -> Result<Option<(String, u64)>> {
        let (r, path) = &mut readers[p];
        let Some(id) = read_string(r, path)? else {
            return Ok(None);
        };
        let mut row = [0u8; 4];
        read_record(r, &mut row, path)?;
        Ok(Some((id, offsets[p] + u32::from_le_bytes(row) as u64)))
    };
    let mut heap = BinaryHeap::new();
    for p in 0..parts {
        if let Some((id, d)) = next(p, &mut readers)? {
            heap.push(std::cmp::Reverse((id, d, p)));
        }
    }
    let mut pos = 0u64;
    while let Some(std::cmp::Reverse((_, d, p))) = heap.pop() {
        rank[d as usize] = pos;
        pos += 1;
        if let Some((id, d2)) = next(p, &mut readers)? {
            heap.push(std::cmp::Reverse((id, d2, p)));
        }
    }
    Ok(())
}

fn output_task(
    s: &ClusterSettings,
    part: usize,
    ctx: &TaskContext,
    out: &mut TaskOutput,
) -> Result<()> {
    let dir = ctx.scratch_dir;
    let path = assign_file(dir, part);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let assign: Vec<(u32, u32)> = bytes
        .chunks_exact(8)
        .map(|c| {
            (
                u32::from_le_bytes(c[0..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(c[4..8].try_into().expect("4 bytes")),
            )
        })
        .collect();
    drop(bytes);
    let needed: HashSet<u32> = assign.iter().map(|a| a.0).filter(|&r| r != NONE).collect();
    let mut rep_ids: HashMap<u32, String> = HashMap::new();
    if !needed.is_empty() {
        let rp = repids_file(dir);
        let mut r = open_read(&rp)?;
        let mut d = [0u8; 4];
        while read_record(&mut r, &mut d, &rp)? {
            let d = u32::from_le_bytes(d);
            let id = read_string(&mut r, &rp)?.unwrap_or_default();
            if needed.contains(&d) {
                rep_ids.insert(d, id);
            }
        }
    }
    let first_global = {
        // This part's first global number: the kept member of a singleton is itself.
        let mut total = 0u64;
        for p in 0..part {
            let dp = docs_file(dir, p);
            total +=
                std::fs::metadata(&dp).map_err(|e| Error::io(&dp, e))?.len() / DOC_RECORD as u64;
        }
        total
    };
    let schema = out.schema();
    let side_schema = side_outputs(s).remove(0).1;
    let mut row = 0usize;
    for batch in ctx.inputs[0].read_part(part, ctx.batch_size)? {
        ctx.check_cancelled()?;
        let batch = batch?;
        let n = batch.num_rows();
        out.count("rows_in", n as u64);
        if row + n > assign.len() {
            return Err(Error::Internal(format!(
                "part {part} has more rows than when its keys were computed"
            )));
        }
        let id = id_column(&batch)?;
        let id = id.as_string::<i32>();
        let mut cluster = StringBuilder::new();
        let mut sizes = UInt32Builder::with_capacity(n);
        let mut keep = Vec::with_capacity(n);
        let mut removed_id = StringBuilder::new();
        let mut removed_of = StringBuilder::new();
        let mut removed_size = UInt32Builder::new();
        for i in 0..n {
            let (rep, sz) = assign[row + i];
            let me = (first_global + (row + i) as u64) as u32;
            if rep == NONE {
                cluster.append_null();
            } else {
                cluster.append_value(&rep_ids[&rep]);
            }
            sizes.append_value(sz);
            let dup = rep != NONE && rep != me;
            if dup {
                removed_id.append_value(if id.is_null(i) { "" } else { id.value(i) });
                removed_of.append_value(&rep_ids[&rep]);
                removed_size.append_value(sz);
            }
            keep.push(!(dup && s.drop_duplicates));
        }
        row += n;
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            if f.name() == &s.cluster_column {
                cols.push(Arc::new(cluster.finish()));
            } else if f.name() == &s.size_column {
                cols.push(Arc::new(sizes.finish()));
            } else {
                cols.push(
                    batch
                        .column_by_name(f.name())
                        .ok_or_else(|| {
                            Error::input(format!("part {part} lacks column `{}`", f.name()))
                        })?
                        .clone(),
                );
            }
        }
        let full = RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| Error::arrow("dedupe output", e))?;
        let dropped = keep.iter().filter(|k| !**k).count();
        let kept = filter_record_batch(&full, &BooleanArray::from(keep))
            .map_err(|e| Error::arrow("dedupe filter", e))?;
        out.write(&kept)?;
        if dropped > 0 {
            out.dropped("duplicate", dropped as u64);
        }
        let side = RecordBatch::try_new(
            side_schema.clone(),
            vec![
                Arc::new(removed_id.finish()),
                Arc::new(removed_of.finish()),
                Arc::new(removed_size.finish()) as Arc<UInt32Array>,
            ],
        )
        .map_err(|e| Error::arrow("removed ids", e))?;
        if side.num_rows() > 0 {
            out.count("duplicates_found", side.num_rows() as u64);
            out.write_side("removed", &side)?;
        }
    }
    if row != assign.len() {
        return Err(Error::Internal(format!(
            "part {part} has fewer rows than when its keys were computed"
        )));
    }
    Ok(())
}
