use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use primer_core::{
    Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput, tmp_path, write_atomic,
};
use rayon::prelude::*;

use crate::config::{ShardFormat, Tokenize};
use crate::shards::{
    FormatInfo, ShardInfo, ShardPlan, ShardsManifest, SourceInfo, SplitTotals, TokenizerInfo,
    document_order, llmc_header, megatron_index, validation_count,
};

/// Shards whose files are open at once while the shards are assembled; more shards are
/// written in several passes over the tokenized parts.
const SHARDS_PER_PASS: usize = 128;

/// The output schema: `id`, `num_tokens`, `tokens` (the ids, with BOS and EOS).
pub fn tokens_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("num_tokens", DataType::UInt32, false),
        Field::new(
            "tokens",
            DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, true))),
            false,
        ),
    ]))
}

fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text of a `Utf8` or `LargeUtf8` column, row by row (`None` for null).
enum TextColumn<'a> {
    Small(&'a StringArray),
    Large(&'a arrow::array::LargeStringArray),
}

impl TextColumn<'_> {
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            TextColumn::Small(a) => (!a.is_null(i)).then(|| a.value(i)),
            TextColumn::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// What encoding one document gave.
enum Encoded {
    Tokens(Vec<u32>),
    Empty,
    Null,
    Failed(String),
}

impl Tokenize {
    /// The token ids of one document: BOS, the text's tokens, EOS.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        let fast;
        let enc;
        let ids: &[u32] = match &self.fast {
            Some(f) => {
                fast = f.encode(text)?;
                &fast
            }
            None => {
                enc = self
                    .tokenizer
                    .encode_fast(text, false)
                    .map_err(|e| e.to_string())?;
                enc.get_ids()
            }
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len() + 2);
        if let Some((b, _)) = &self.bos {
            out.push(*b);
        }
        out.extend_from_slice(ids);
        if let Some((e, _)) = &self.eos {
            out.push(*e);
        }
        Ok(out)
    }

    /// The directory the shards go to.
    pub fn output_dir(&self) -> &Path {
        &self.output
    }

    fn shard_path(&self, format: ShardFormat, name: &str, ext: &str) -> PathBuf {
        self.output
            .join(format.dir_name())
            .join(format!("{name}.{ext}"))
    }

    /// Every file the plan writes, for each shard: (format, path, is_index).
    fn shard_files(&self, shard: &ShardInfo) -> Vec<(ShardFormat, PathBuf, bool)> {
        let mut v = Vec::new();
        for &f in &self.formats {
            match f {
                ShardFormat::Megatron => {
                    v.push((f, self.shard_path(f, &shard.name, "bin"), false));
                    v.push((f, self.shard_path(f, &shard.name, "idx"), true));
                }
                ShardFormat::Llmc => v.push((f, self.shard_path(f, &shard.name, "bin"), false)),
            }
        }
        v
    }

    /// Remove files in the format directories that look like shards and are not in `keep`.
    fn remove_stale(&self, keep: &[PathBuf]) -> Result<()> {
        for f in [ShardFormat::Megatron, ShardFormat::Llmc] {
            let dir = self.output.join(f.dir_name());
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = (name.starts_with("train-") || name.starts_with("val-"))
                    && (name.ends_with(".bin") || name.ends_with(".idx"));
                let tmp = name.starts_with(".train-") || name.starts_with(".val-");
                if (ours || tmp) && !keep.contains(&e.path()) {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        Ok(())
    }
}

fn open_projected(
    path: &Path,
    column: &str,
    batch_size: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    let idx = b
        .schema()
        .index_of(column)
        .map_err(|_| Error::Internal(format!("{}: no column `{column}`", path.display())))?;
    let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
    b.with_projection(mask)
        .with_batch_size(batch_size)
        .build()
        .map_err(|e| Error::parquet(path, e))
}

impl Stage for Tokenize {
    fn output_dir(&self) -> Option<&Path> {
        Some(&self.output)
    }

    fn kind(&self) -> &'static str {
        "tokenize"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        let [input] = inputs else {
            return Err(Error::input(format!(
                "a `tokenize` stage takes exactly one input, not {}",
                inputs.len()
            )));
        };
        for (col, what) in [("id", "id"), (self.config.text_column.as_str(), "text")] {
            match input.schema.field_with_name(col) {
                Ok(f) if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) => {}
                Ok(f) => {
                    return Err(Error::input(format!(
                        "input `{}`: column `{col}` ({what}) is {}, not text",
                        input.id,
                        f.data_type()
                    )));
                }
                Err(_) => {
                    return Err(Error::input(format!(
                        "input `{}` has no column `{col}` ({what}); it has {}",
                        input.id,
                        column_names(&input.schema)
                    )));
                }
            }
        }
        Ok(tokens_schema())
    }

    fn external_fingerprint(&self) -> Result<String> {
        Ok(format!(
            "tokenizer {} xxh3 {}",
            self.tokenizer_path.display(),
            self.tokenizer_hash
        ))
    }

    /// One task per input part, then one that assembles the shards.
    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts() + 1)
    }

    fn phases(&self, inputs: &[Dataset]) -> Result<Vec<usize>> {
        Ok(vec![inputs[0].num_parts(), 1])
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let input = &ctx.inputs[0];
        if task == input.num_parts() {
            return self.assemble(ctx, out);
        }
        let part = input.part_path(task);
        let schema = out.schema();
        for batch in input.read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            let n = batch.num_rows();
            out.count("rows_in", n as u64);
            let ids = cast(
                batch
                    .column_by_name("id")
                    .ok_or_else(|| Error::input(format!("{}: no column `id`", part.display())))?,
                &DataType::Utf8,
            )
            .map_err(|e| Error::arrow(part.display().to_string(), e))?;
            let ids = ids.as_string::<i32>();
            let text_col = batch
                .column_by_name(&self.config.text_column)
                .ok_or_else(|| {
                    Error::input(format!(
                        "{}: no column `{}`",
                        part.display(),
                        self.config.text_column
                    ))
                })?;
            let text = match text_col.data_type() {
                DataType::Utf8 => TextColumn::Small(text_col.as_string::<i32>()),
                DataType::LargeUtf8 => TextColumn::Large(text_col.as_string::<i64>()),
                t => {
                    return Err(Error::input(format!(
                        "{}: column `{}` is {t}, not text",
                        part.display(),
                        self.config.text_column
                    )));
                }
            };
            let text_bytes: u64 = (0..n)
                .map(|i| text.get(i).map_or(0, |t| t.len() as u64))
                .sum();
            let encoded: Vec<Encoded> = (0..n)
                .into_par_iter()
                .map(|i| match text.get(i) {
                    None => Encoded::Null,
                    Some(t) => match self.encode(t) {
                        Ok(v) if v.is_empty() => Encoded::Empty,
                        Ok(v) if v.len() > i32::MAX as usize => {
                            Encoded::Failed(format!("{} tokens, more than int32 allows", v.len()))
                        }
                        Ok(v) => Encoded::Tokens(v),
                        Err(e) => Encoded::Failed(e),
                    },
                })
                .collect();
            let mut keep_ids: Vec<&str> = Vec::with_capacity(n);
            let mut lens: Vec<u32> = Vec::with_capacity(n);
            let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
            offsets.push(0);
            let total: usize = encoded
                .iter()
                .map(|e| match e {
                    Encoded::Tokens(v) => v.len(),
                    _ => 0,
                })
                .sum();
            if total > i32::MAX as usize {
                return Err(Error::input(format!(
                    "{}: a batch of {n} documents has {total} tokens, more than a list column \
                     holds; lower [pipeline] batch_rows",
                    part.display()
                )));
            }
            let mut values: Vec<u32> = Vec::with_capacity(total);
            for (i, e) in encoded.into_iter().enumerate() {
                let id = ids.value(i);
                match e {
                    Encoded::Tokens(v) => {
                        keep_ids.push(id);
                        lens.push(v.len() as u32);
                        values.extend_from_slice(&v);
                        offsets.push(values.len() as i32);
                    }
                    Encoded::Empty => out.dropped("empty", 1),
                    Encoded::Null => {
                        out.dropped("null_text", 1);
                        out.warn(format!(
                            "{}: document `{id}`: the text is null; skipped",
                            part.display()
                        ));
                    }
                    Encoded::Failed(msg) => {
                        out.dropped("encode_error", 1);
                        out.warn(format!(
                            "{}: document `{id}` could not be encoded: {msg}; skipped",
                            part.display()
                        ));
                    }
                }
            }
            out.count("tokens", values.len() as u64);
            out.count("text_bytes", text_bytes);
            let item = Arc::new(Field::new_list_field(DataType::UInt32, true));
            let list = ListArray::try_new(
                item,
                OffsetBuffer::new(offsets.into()),
                Arc::new(UInt32Array::from(values)),
                None,
            )
            .map_err(|e| Error::arrow("tokens", e))?;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(keep_ids)),
                Arc::new(UInt32Array::from(lens)),
                Arc::new(list),
            ];
            let out_batch = RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| Error::arrow("tokens batch", e))?;
            out.write(&out_batch)?;
        }
        Ok(())
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "tokenizer".into(),
            self.tokenizer_path.display().to_string().into(),
        );
        m.insert("vocab_size".into(), self.vocab_size.into());
        m.insert(
            "encoder".into(),
            if self.fast.is_some() {
                "primer byte-level BPE (same ids as tokenizers)"
            } else {
                "tokenizers"
            }
            .into(),
        );
        m.insert(
            "dtype".into(),
            match self.width {
                crate::shards::TokenWidth::U16 => "uint16",
                crate::shards::TokenWidth::U32 => "uint32",
            }
            .into(),
        );
        m
    }
}

impl Tokenize {
    /// The global step, the last phase's one task: shuffle every document of the tokenized
    /// parts, split, and write the shards and their manifest. Its notes go to the dataset's
    /// manifest. A run killed during it redoes it in full (files appear atomically).
    fn assemble(&self, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let started = std::time::Instant::now();
        let manifest_path = self.output.join(ShardsManifest::FILE);
        std::fs::create_dir_all(&self.output).map_err(|e| Error::io(&self.output, e))?;
        // Shards being rewritten have no manifest until they are whole again.
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        }
        for f in &self.formats {
            let d = self.output.join(f.dir_name());
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }

        // 1. Token counts of every document, in dataset order (4 bytes per document).
        let mut part_start: Vec<usize> = Vec::with_capacity(ctx.earlier_parts.len());
        let mut lens: Vec<u32> = Vec::new();
        for p in ctx.earlier_parts {
            ctx.check_cancelled()?;
            part_start.push(lens.len());
            let path = ctx.dir.join(&p.file);
            for b in open_projected(&path, "num_tokens", 64 * 1024)? {
                let b = b.map_err(|e| Error::arrow(path.display().to_string(), e))?;
                let a = b.column(0).as_primitive::<arrow::datatypes::UInt32Type>();
                lens.extend_from_slice(a.values());
            }
            if (lens.len() - part_start.last().copied().unwrap_or(0)) as u64 != p.rows {
                return Err(Error::Internal(format!(
                    "{}: {} rows read, the task recorded {}",
                    path.display(),
                    lens.len() - part_start.last().copied().unwrap_or(0),
                    p.rows
                )));
            }
        }
        let n = u32::try_from(lens.len()).map_err(|_| {
            Error::input(format!(
                "{} documents: one tokenize stage shards at most {} (split the input)",
                lens.len(),
                u32::MAX
            ))
        })?;

        // 2. The order (4 bytes per document) and the plan (8 bytes per document).
        let order = document_order(n, self.config.shuffle, self.config.seed);
        let n_val = validation_count(n as u64, self.config.validation_fraction);
        let plan = ShardPlan::build(&order, &lens, n_val, self.config.shard_tokens)
            .map_err(|e| Error::input(e.0))?;

        // 3. Megatron indexes, walking the order shard by shard.
        let mut written: Vec<(PathBuf, PathBuf)> = Vec::new(); // (tmp, final)
        if self.formats.contains(&ShardFormat::Megatron) {
            let mut k = 0usize;
            for shard in &plan.shards {
                let docs = &order[k..k + shard.documents as usize];
                k += shard.documents as usize;
                let shard_lens: Vec<u32> = docs.iter().map(|&d| lens[d as usize]).collect();
                let path = self.shard_path(ShardFormat::Megatron, &shard.name, "idx");
                let tmp = tmp_path(&path);
                std::fs::write(&tmp, megatron_index(self.width, &shard_lens))
                    .map_err(|e| Error::io(&tmp, e))?;
                written.push((tmp, path));
            }
        }
        drop(order);

        // 4. Token files: pre-sized temporary files, each document written at its offset,
        //    parts read in parallel. Positions depend only on the plan, so the bytes do not
        //    depend on the thread count.
        let w = self.width.bytes();
        for group in (0..plan.shards.len())
            .collect::<Vec<_>>()
            .chunks(SHARDS_PER_PASS)
        {
            let first = group[0];
            // files[shard - first] = [(file, header bytes)] per token file of the shard.
            let mut files: Vec<Vec<(File, u64)>> = Vec::with_capacity(group.len());
            for &s in group {
                let shard = &plan.shards[s];
                let mut per = Vec::new();
                for (format, path, is_index) in self.shard_files(shard) {
                    if is_index {
                        continue;
                    }
                    let tmp = tmp_path(&path);
                    let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                    let header = match format {
                        ShardFormat::Megatron => 0,
                        ShardFormat::Llmc => {
                            let h = llmc_header(self.width, shard.tokens);
                            f.write_all_at(&h, 0).map_err(|e| Error::io(&tmp, e))?;
                            h.len() as u64
                        }
                    };
                    f.set_len(header + shard.tokens * w)
                        .map_err(|e| Error::io(&tmp, e))?;
                    per.push((f, header));
                    written.push((tmp, path));
                }
                files.push(per);
            }
            let range = first..first + group.len();
            let results: Vec<Result<()>> = ctx
                .earlier_parts
                .par_iter()
                .enumerate()
                .map(|(pi, p)| {
                    let path = ctx.dir.join(&p.file);
                    let mut g = part_start[pi];
                    let mut buf = Vec::new();
                    for b in open_projected(&path, "tokens", 1024)? {
                        ctx.check_cancelled()?;
                        let b = b.map_err(|e| Error::arrow(path.display().to_string(), e))?;
                        let list = b.column(0).as_list::<i32>();
                        let values = list.values().as_primitive::<arrow::datatypes::UInt32Type>();
                        let values = values.values();
                        let offs = list.value_offsets();
                        for r in 0..list.len() {
                            let s = plan.shard_of[g] as usize;
                            if range.contains(&s) {
                                let toks = &values[offs[r] as usize..offs[r + 1] as usize];
                                if toks.len() != lens[g] as usize {
                                    return Err(Error::Internal(format!(
                                        "{}: row {r}: {} tokens, num_tokens says {}",
                                        path.display(),
                                        toks.len(),
                                        lens[g]
                                    )));
                                }
                                buf.clear();
                                self.width.encode_into(toks, &mut buf);
                                let at = plan.offset_of[g] as u64 * w;
                                for (f, header) in &files[s - first] {
                                    f.write_all_at(&buf, header + at)
                                        .map_err(|e| Error::io(&path, e))?;
                                }
                            }
                            g += 1;
                        }
                    }
                    Ok(())
                })
                .collect();
            for r in results {
                r?;
            }
            for per in files {
                for (f, _) in per {
                    f.sync_all().map_err(|e| Error::io(&self.output, e))?;
                }
            }
        }

        // 5. Into place, stale shards out, the manifest last.
        for (tmp, path) in &written {
            std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
        }
        let keep: Vec<PathBuf> = written.iter().map(|(_, p)| p.clone()).collect();
        self.remove_stale(&keep)?;
        let manifest = self.shards_manifest(ctx, &plan);
        let mut text =
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        text.push('\n');
        write_atomic(&manifest_path, text.as_bytes())?;

        let mut notes = serde_json::Map::new();
        notes.insert(
            "shards_to".into(),
            primer_core::location_name(&self.output).into(),
        );
        notes.insert("shards".into(), plan.shards.len().into());
        for (split, t) in &manifest.splits {
            notes.insert(format!("tokens.{split}"), t.tokens.into());
            notes.insert(format!("documents.{split}"), t.documents.into());
        }
        notes.insert(
            "shards_seconds".into(),
            ((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0).into(),
        );
        for (k, v) in notes {
            out.note(&k, v);
        }
        Ok(())
    }
}

impl Tokenize {
    fn shards_manifest(&self, ctx: &TaskContext, plan: &ShardPlan) -> ShardsManifest {
        let mut splits = std::collections::BTreeMap::new();
        for s in &plan.shards {
            let t: &mut SplitTotals = splits.entry(s.split.clone()).or_default();
            t.documents += s.documents;
            t.tokens += s.tokens;
            t.shards += 1;
        }
        let formats = self
            .formats
            .iter()
            .map(|&f| match f {
                ShardFormat::Megatron => {
                    let (dtype, code) = self.width.megatron_dtype();
                    FormatInfo {
                        name: "megatron".into(),
                        dir: f.dir_name().into(),
                        dtype: dtype.into(),
                        dtype_code: Some(code),
                        magic: None,
                        version: None,
                    }
                }
                ShardFormat::Llmc => {
                    let (dtype, magic, version) = self.width.llmc_header();
                    FormatInfo {
                        name: "llmc".into(),
                        dir: f.dir_name().into(),
                        dtype: dtype.into(),
                        dtype_code: None,
                        magic: Some(magic),
                        version: Some(version),
                    }
                }
            })
            .collect();
        ShardsManifest {
            format: ShardsManifest::FORMAT.into(),
            stage: ctx.stage_id.into(),
            tokenizer: TokenizerInfo {
                path: std::path::absolute(&self.tokenizer_path)
                    .unwrap_or_else(|_| self.tokenizer_path.clone())
                    .display()
                    .to_string(),
                xxh3: self.tokenizer_hash.clone(),
                vocab_size: self.vocab_size as u64,
                eos_id: self.eos.as_ref().map(|e| e.0),
                eos_token: self.eos.as_ref().map(|e| e.1.clone()),
                bos_id: self.bos.as_ref().map(|e| e.0),
                bos_token: self.bos.as_ref().map(|e| e.1.clone()),
            },
            dtype: self.width.llmc_header().0.into(),
            formats,
            shuffle: self.config.shuffle,
            seed: self.config.seed,
            validation_fraction: self.config.validation_fraction,
            shard_tokens: self.config.shard_tokens,
            documents: plan.shards.iter().map(|s| s.documents).sum(),
            tokens: plan.shards.iter().map(|s| s.tokens).sum(),
            splits,
            shards: plan.shards.clone(),
            sources: ctx
                .inputs
                .iter()
                .map(|d| SourceInfo {
                    stage: d.manifest().stage.id.clone(),
                    fingerprint: d.manifest().fingerprint.clone(),
                    content_id: d.manifest().content_id(),
                    rows: d.rows(),
                })
                .collect(),
        }
    }
}
