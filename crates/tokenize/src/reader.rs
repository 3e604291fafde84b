//! Reading shards back, checking every header, count and offset (`primer shards inspect`
//! and the tests use this; the Python reference readers in `tests/reference/` check the
//! same files independently).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use primer_core::{Error, Result};

use crate::shards::{
    LLMC_HEADER_BYTES, LLMC_MAGIC_U16, LLMC_MAGIC_U32, LLMC_VERSION_U16, LLMC_VERSION_U32,
    MEGATRON_DTYPE_CODES, MEGATRON_HEADER_BYTES, MEGATRON_MAGIC, ShardsManifest, TokenWidth,
};

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::input(format!("{}: {msg}", path.display()))
}

fn read_at(f: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

fn decode(width: TokenWidth, bytes: &[u8]) -> Vec<u32> {
    match width {
        TokenWidth::U16 => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .collect(),
        TokenWidth::U32 => bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

/// A Megatron-LM indexed dataset (`PREFIX.idx` + `PREFIX.bin`), checked on open.
pub struct MegatronShard {
    pub prefix: PathBuf,
    pub dtype_code: u8,
    pub dtype: &'static str,
    pub width: TokenWidth,
    pub lengths: Vec<i32>,
    pub pointers: Vec<i64>,
    pub document_indices: Vec<i64>,
    bin: File,
    bin_path: PathBuf,
}

impl MegatronShard {
    /// Open and check: magic, version 1, a token dtype code, counts that match the file
    /// size, pointers that are the running sum of lengths × itemsize, document indices
    /// from 0 to the sequence count, and a `.bin` exactly as long as the tokens.
    pub fn open(prefix: &Path) -> Result<MegatronShard> {
        let idx_path = prefix.with_extension("idx");
        let bin_path = prefix.with_extension("bin");
        let idx = std::fs::read(&idx_path).map_err(|e| Error::io(&idx_path, e))?;
        let p = &idx_path;
        if idx.len() < MEGATRON_HEADER_BYTES as usize {
            return Err(bad(
                p,
                format!("{} bytes, shorter than the header", idx.len()),
            ));
        }
        if &idx[0..9] != MEGATRON_MAGIC {
            return Err(bad(p, "bad header: not MMIDIDX"));
        }
        let u64_at = |o: usize| u64::from_le_bytes(idx[o..o + 8].try_into().expect("8 bytes"));
        let version = u64_at(9);
        if version != 1 {
            return Err(bad(p, format!("version {version}, expected 1")));
        }
        let code = idx[17];
        let (dtype, width) = match code {
            8 => ("uint16", TokenWidth::U16),
            4 => ("int32", TokenWidth::U32),
            c => {
                let name = MEGATRON_DTYPE_CODES
                    .iter()
                    .find(|(_, k)| *k == c)
                    .map_or("unknown", |(n, _)| n);
                return Err(bad(
                    p,
                    format!("dtype code {c} ({name}): token shards are uint16 (8) or int32 (4)"),
                ));
            }
        };
        let seqs = u64_at(18);
        let docs = u64_at(26);
        let want = MEGATRON_HEADER_BYTES + seqs * 4 + seqs * 8 + docs * 8;
        if idx.len() as u64 != want {
            return Err(bad(
                p,
                format!(
                    "{} bytes; {seqs} sequences and {docs} document indices need {want}",
                    idx.len()
                ),
            ));
        }
        let mut o = MEGATRON_HEADER_BYTES as usize;
        let lengths: Vec<i32> = (0..seqs)
            .map(|i| {
                let at = o + i as usize * 4;
                i32::from_le_bytes(idx[at..at + 4].try_into().expect("4 bytes"))
            })
            .collect();
        o += seqs as usize * 4;
        let pointers: Vec<i64> = (0..seqs)
            .map(|i| i64::from_le_bytes(idx[o + i as usize * 8..][..8].try_into().expect("8")))
            .collect();
        o += seqs as usize * 8;
        let document_indices: Vec<i64> = (0..docs)
            .map(|i| i64::from_le_bytes(idx[o + i as usize * 8..][..8].try_into().expect("8")))
            .collect();
        let mut ptr = 0i64;
        for (i, (&l, &q)) in lengths.iter().zip(&pointers).enumerate() {
            if l < 0 {
                return Err(bad(p, format!("sequence {i}: negative length {l}")));
            }
            if q != ptr {
                return Err(bad(
                    p,
                    format!("sequence {i}: pointer {q}, the lengths before it say {ptr}"),
                ));
            }
            ptr += l as i64 * width.bytes() as i64;
        }
        if document_indices.first() != Some(&0)
            || document_indices.last() != Some(&(seqs as i64))
            || document_indices.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad(
                p,
                "document indices must rise from 0 to the sequence count",
            ));
        }
        let bin = File::open(&bin_path).map_err(|e| Error::io(&bin_path, e))?;
        let bin_len = bin.metadata().map_err(|e| Error::io(&bin_path, e))?.len();
        if bin_len != ptr as u64 {
            return Err(bad(
                &bin_path,
                format!("{bin_len} bytes; the index describes {ptr}"),
            ));
        }
        Ok(MegatronShard {
            prefix: prefix.to_path_buf(),
            dtype_code: code,
            dtype,
            width,
            lengths,
            pointers,
            document_indices,
            bin,
            bin_path,
        })
    }

    pub fn sequences(&self) -> usize {
        self.lengths.len()
    }
    pub fn documents(&self) -> usize {
        self.document_indices.len().saturating_sub(1)
    }
    pub fn tokens(&self) -> u64 {
        self.lengths.iter().map(|&l| l as u64).sum()
    }
    /// The tokens of sequence `i`.
    pub fn sequence(&self, i: usize) -> Result<Vec<u32>> {
        let n = self.lengths[i] as usize * self.width.bytes() as usize;
        let bytes = read_at(&self.bin, &self.bin_path, self.pointers[i] as u64, n)?;
        Ok(decode(self.width, &bytes))
    }
    /// The whole `.bin` (the tokens of all sequences, back to back), as raw bytes.
    pub fn bin_path(&self) -> &Path {
        &self.bin_path
    }
}

/// An llm.c `.bin` shard, checked on open like llm.c's `dataloader_load_shard_`: magic,
/// version, a positive token count and a file size of exactly header + tokens.
pub struct LlmcShard {
    pub path: PathBuf,
    pub magic: i32,
    pub version: i32,
    pub width: TokenWidth,
    pub ntok: u64,
    file: File,
}

impl LlmcShard {
    pub fn open(path: &Path) -> Result<LlmcShard> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < LLMC_HEADER_BYTES {
            return Err(bad(path, format!("{len} bytes, shorter than the header")));
        }
        let h = read_at(&file, path, 0, LLMC_HEADER_BYTES as usize)?;
        let int = |i: usize| i32::from_le_bytes(h[i * 4..i * 4 + 4].try_into().expect("4"));
        let (magic, version) = (int(0), int(1));
        let width = match (magic, version) {
            (LLMC_MAGIC_U16, LLMC_VERSION_U16) => TokenWidth::U16,
            (LLMC_MAGIC_U32, LLMC_VERSION_U32) => TokenWidth::U32,
            _ => {
                return Err(bad(
                    path,
                    format!(
                        "bad magic/version {magic}/{version}: llm.c reads 20240520/1 (uint16) or 20240801/7 (uint32)"
                    ),
                ));
            }
        };
        let ntok = int(2);
        if ntok <= 0 {
            return Err(bad(path, format!("token count {ntok}; llm.c needs > 0")));
        }
        let want = LLMC_HEADER_BYTES + ntok as u64 * width.bytes();
        if len != want {
            return Err(bad(
                path,
                format!("{len} bytes; the header's {ntok} tokens need {want}"),
            ));
        }
        Ok(LlmcShard {
            path: path.to_path_buf(),
            magic,
            version,
            width,
            ntok: ntok as u64,
            file,
        })
    }

    /// `count` tokens from token `start`.
    pub fn tokens(&self, start: u64, count: usize) -> Result<Vec<u32>> {
        let w = self.width.bytes();
        let bytes = read_at(
            &self.file,
            &self.path,
            LLMC_HEADER_BYTES + start * w,
            count * w as usize,
        )?;
        Ok(decode(self.width, &bytes))
    }
}

/// Read a shards directory's `manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<ShardsManifest> {
    let path = dir.join(ShardsManifest::FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad(
                &path,
                "no manifest: not a shards directory, or its tokenize stage did not complete",
            )
        } else {
            Error::io(&path, e)
        }
    })?;
    let m: ShardsManifest = serde_json::from_str(&text).map_err(|e| bad(&path, e))?;
    if m.format != ShardsManifest::FORMAT {
        return Err(bad(
            &path,
            format!(
                "format `{}`, expected `{}`",
                m.format,
                ShardsManifest::FORMAT
            ),
        ));
    }
    Ok(m)
}

/// What checking a shards directory found.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Per format: shards, documents (Megatron) and tokens read back.
    pub lines: Vec<String>,
    pub documents: u64,
    pub tokens: u64,
}

/// Check every shard in `dir` against its manifest: headers, offsets, counts per shard,
/// and, where both formats are written, that they hold the same tokens.
pub fn verify(dir: &Path, m: &ShardsManifest) -> Result<Verified> {
    let mut v = Verified::default();
    let has_megatron = m.formats.iter().any(|f| f.name == "megatron");
    let has_llmc = m.formats.iter().any(|f| f.name == "llmc");
    let mut mega_tokens = 0u64;
    let mut mega_docs = 0u64;
    let mut llmc_tokens = 0u64;
    for s in &m.shards {
        let mut mega = None;
        if has_megatron {
            let sh = MegatronShard::open(&dir.join("megatron").join(&s.name))?;
            if sh.documents() as u64 != s.documents || sh.tokens() != s.tokens {
                return Err(bad(
                    &sh.prefix,
                    format!(
                        "{} documents and {} tokens; the manifest says {} and {}",
                        sh.documents(),
                        sh.tokens(),
                        s.documents,
                        s.tokens
                    ),
                ));
            }
            mega_tokens += sh.tokens();
            mega_docs += sh.documents() as u64;
            mega = Some(sh);
        }
        if has_llmc {
            let path = dir.join("llmc").join(format!("{}.bin", s.name));
            let sh = LlmcShard::open(&path)?;
            if sh.ntok != s.tokens {
                return Err(bad(
                    &path,
                    format!("{} tokens; the manifest says {}", sh.ntok, s.tokens),
                ));
            }
            llmc_tokens += sh.ntok;
            if let Some(mega) = &mega
                && !same_tokens(mega, &sh)?
            {
                return Err(bad(
                    &path,
                    format!("holds other tokens than {}.bin", mega.prefix.display()),
                ));
            }
        }
    }
    if has_megatron {
        v.lines.push(format!(
            "megatron  {} shard(s), {mega_docs} documents, {mega_tokens} tokens: headers, pointers and document indices ok",
            m.shards.len()
        ));
    }
    if has_llmc {
        v.lines.push(format!(
            "llmc      {} shard(s), {llmc_tokens} tokens: magic, version, counts and sizes ok{}",
            m.shards.len(),
            if has_megatron {
                ", same tokens as megatron"
            } else {
                ""
            }
        ));
    }
    v.documents = if has_megatron {
        mega_docs
    } else {
        m.shards.iter().map(|s| s.documents).sum()
    };
    v.tokens = if has_megatron {
        mega_tokens
    } else {
        llmc_tokens
    };
    if v.tokens != m.tokens || v.documents != m.documents {
        return Err(bad(
            dir,
            format!(
                "shards hold {} documents and {} tokens; the manifest says {} and {}",
                v.documents, v.tokens, m.documents, m.tokens
            ),
        ));
    }
    Ok(v)
}

/// Whether an llm.c shard's tokens equal a Megatron shard's `.bin`, compared in blocks.
fn same_tokens(mega: &MegatronShard, llmc: &LlmcShard) -> Result<bool> {
    if mega.width.bytes() != llmc.width.bytes() {
        return Ok(false);
    }
    let total = mega.tokens() * mega.width.bytes();
    let mut at = 0u64;
    const BLOCK: u64 = 1 << 20;
    while at < total {
        let n = BLOCK.min(total - at) as usize;
        let a = read_at(&mega.bin, &mega.bin_path, at, n)?;
        let b = read_at(&llmc.file, &llmc.path, LLMC_HEADER_BYTES + at, n)?;
        if a != b {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}
