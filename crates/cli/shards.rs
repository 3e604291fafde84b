//! `primer shards inspect`: read token shards back, check them, show counts and the first
//! documents decoded.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use primer_core::thousands;
use primer_tokenize::reader::{LlmcShard, MegatronShard, read_manifest, verify};
use primer_tokenize::{ShardsManifest, load_tokenizer};

/// The first `width` characters of `s` on one line (line breaks shown as ⏎), with `…` when
/// cut: for table cells and decoded text.
pub(crate) fn cut(s: &str, width: usize) -> String {
    let mut out: String = s
        .chars()
        .take(width)
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if s.chars().count() > width {
        out.push('…');
    }
    out
}

/// Decodes ids with the tokenizer, when there is one.
struct Decoder(Option<primer_tokenize::tokenizers::Tokenizer>);

impl Decoder {
    fn load(explicit: Option<&Path>, manifest: Option<&ShardsManifest>) -> anyhow::Result<Self> {
        let path = match (explicit, manifest) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(m)) => PathBuf::from(&m.tokenizer.path),
            (None, None) => {
                println!("(no manifest.json nearby and no --tokenizer: showing token ids)");
                return Ok(Decoder(None));
            }
        };
        match load_tokenizer(&path) {
            Ok((t, _)) => Ok(Decoder(Some(t))),
            Err(e) if explicit.is_none() => {
                println!("(cannot decode: {e}; pass --tokenizer; showing token ids)");
                Ok(Decoder(None))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn show(&self, ids: &[u32], chars: usize) -> String {
        match &self.0 {
            Some(t) => match t.decode(ids, false) {
                Ok(s) => format!("{:?}", cut(&s, chars)),
                Err(e) => format!("(cannot decode: {e})"),
            },
            None => {
                let shown: Vec<String> = ids.iter().take(24).map(u32::to_string).collect();
                format!(
                    "[{}{}]",
                    shown.join(", "),
                    if ids.len() > 24 { ", …" } else { "" }
                )
            }
        }
    }
}

pub fn inspect(
    path: &Path,
    docs: usize,
    chars: usize,
    tokenizer: Option<&Path>,
) -> anyhow::Result<()> {
    if path.is_dir() {
        return inspect_dir(path, docs, chars, tokenizer);
    }
    // A single shard file: its manifest, if any, is two levels up (DIR/megatron/x.bin).
    let manifest = path
        .parent()
        .and_then(Path::parent)
        .and_then(|d| read_manifest(d).ok());
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !path.is_file() {
        bail!("{}: no such file or directory", path.display());
    }
    let megatron_prefix = path.with_extension("");
    let is_megatron =
        ext == "idx" || (ext == "bin" && megatron_prefix.with_extension("idx").is_file());
    let decoder = Decoder::load(tokenizer, manifest.as_ref())?;
    if is_megatron {
        let sh = MegatronShard::open(&megatron_prefix)
            .with_context(|| format!("reading {}", path.display()))?;
        println!("megatron shard {}", megatron_prefix.display());
        println!(
            "  dtype {} (code {}), {} sequences, {} documents, {} tokens: header, pointers and document indices ok",
            sh.dtype,
            sh.dtype_code,
            thousands(sh.sequences() as u64),
            thousands(sh.documents() as u64),
            thousands(sh.tokens())
        );
        show_megatron(&sh, &decoder, docs, chars)?;
    } else {
        let sh = LlmcShard::open(path).with_context(|| format!("reading {}", path.display()))?;
        println!("llm.c shard {}", path.display());
        println!(
            "  magic {} version {}, {} tokens: header and size ok",
            sh.magic,
            sh.version,
            thousands(sh.ntok)
        );
        show_llmc(&sh, manifest.as_ref(), &decoder, docs, chars)?;
    }
    Ok(())
}

fn inspect_dir(
    dir: &Path,
    docs: usize,
    chars: usize,
    tokenizer: Option<&Path>,
) -> anyhow::Result<()> {
    let m = read_manifest(dir)?;
    let t = &m.tokenizer;
    println!("shards      {}", dir.display());
    println!("stage       {}", m.stage);
    println!(
        "tokenizer   {} (vocabulary {}, eos {}, bos {})",
        t.path,
        thousands(t.vocab_size),
        t.eos_token.as_ref().map_or("none".to_string(), |s| format!(
            "{s} = {}",
            t.eos_id.unwrap_or(0)
        )),
        t.bos_token.as_ref().map_or("none".to_string(), |s| format!(
            "{s} = {}",
            t.bos_id.unwrap_or(0)
        )),
    );
    let formats: Vec<String> = m
        .formats
        .iter()
        .map(|f| match (f.dtype_code, f.magic) {
            (Some(c), _) => format!("{} ({}, code {c})", f.name, f.dtype),
            (_, Some(magic)) => format!(
                "{} ({}, magic {magic} version {})",
                f.name,
                f.dtype,
                f.version.unwrap_or(0)
            ),
            _ => f.name.clone(),
        })
        .collect();
    println!("formats     {}", formats.join(", "));
    println!(
        "order       {}, validation fraction {}, target {} tokens per shard",
        if m.shuffle {
            format!("shuffled with seed {}", m.seed)
        } else {
            "input order".to_string()
        },
        m.validation_fraction,
        thousands(m.shard_tokens)
    );
    let splits: Vec<String> = m
        .splits
        .iter()
        .map(|(k, s)| {
            format!(
                "{k} {} documents / {} tokens / {} shard(s)",
                thousands(s.documents),
                thousands(s.tokens),
                s.shards
            )
        })
        .collect();
    println!(
        "total       {} documents, {} tokens: {}",
        thousands(m.documents),
        thousands(m.tokens),
        splits.join("; ")
    );
    for s in &m.sources {
        println!(
            "source      {} ({} rows, fingerprint {})",
            s.stage,
            thousands(s.rows),
            s.fingerprint
        );
    }
    let v = verify(dir, &m).with_context(|| format!("checking the shards in {}", dir.display()))?;
    println!("checks");
    for l in &v.lines {
        println!("  {l}");
    }
    println!(
        "  manifest: {} documents, {} tokens: matches",
        thousands(v.documents),
        thousands(v.tokens)
    );
    println!("shards");
    const SHOW: usize = 12;
    for s in m.shards.iter().take(SHOW) {
        println!(
            "  {:<12} {:>10} documents {:>14} tokens",
            s.name,
            thousands(s.documents),
            thousands(s.tokens)
        );
    }
    if m.shards.len() > SHOW {
        println!("  … {} more", m.shards.len() - SHOW);
    }
    let Some(first) = m.shards.first() else {
        return Ok(());
    };
    if docs == 0 {
        return Ok(());
    }
    let decoder = Decoder::load(tokenizer, Some(&m))?;
    if m.formats.iter().any(|f| f.name == "megatron") {
        let sh = MegatronShard::open(&dir.join("megatron").join(&first.name))?;
        show_megatron(&sh, &decoder, docs, chars)
    } else {
        let sh = LlmcShard::open(&dir.join("llmc").join(format!("{}.bin", first.name)))?;
        show_llmc(&sh, Some(&m), &decoder, docs, chars)
    }
}

fn show_megatron(
    sh: &MegatronShard,
    decoder: &Decoder,
    docs: usize,
    chars: usize,
) -> anyhow::Result<()> {
    let n = docs.min(sh.sequences());
    println!(
        "first {n} document(s) of {}",
        sh.prefix.file_name().unwrap_or_default().to_string_lossy()
    );
    for i in 0..n {
        let ids = sh.sequence(i)?;
        println!(
            "  [{i}] {} tokens: {}",
            thousands(ids.len() as u64),
            decoder.show(&ids, chars)
        );
    }
    Ok(())
}

/// llm.c shards have no document index: documents end at the EOS token, when there is one.
fn show_llmc(
    sh: &LlmcShard,
    m: Option<&ShardsManifest>,
    decoder: &Decoder,
    docs: usize,
    chars: usize,
) -> anyhow::Result<()> {
    let eos = m.and_then(|m| m.tokenizer.eos_id);
    let head = sh.tokens(0, sh.ntok.min(1 << 20) as usize)?;
    let Some(eos) = eos else {
        let n = head.len().min(256);
        println!("first {n} tokens (no end-of-document token to split at)");
        println!("  {}", decoder.show(&head[..n], chars));
        return Ok(());
    };
    println!(
        "first {docs} document(s) of {} (split at token {eos})",
        sh.path.file_name().unwrap_or_default().to_string_lossy()
    );
    for (i, doc) in head.split_inclusive(|&t| t == eos).take(docs).enumerate() {
        println!(
            "  [{i}] {} tokens: {}",
            thousands(doc.len() as u64),
            decoder.show(doc, chars)
        );
    }
    Ok(())
}
