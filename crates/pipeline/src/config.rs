use std::path::{Path, PathBuf};

use primer_core::{BuildContext, Stage};

use crate::graph::BrokenStage;
use primer_crawl::{CrawlConfig, ExtractConfig, ReadWarcConfig};
use primer_dedupe::{DecontaminateConfig, ExactDedupeConfig, MinhashDedupeConfig};
use primer_filters::{FilterConfig, LanguageConfig, PiiConfig};
use primer_io::{ReadConfig, WriteConfig};
use primer_quality::{AnnotateConfig, ScoreConfig, TrainClassifierConfig};
use primer_sql::SqlConfig;
use primer_synth::GenerateConfig;
use primer_tokenize::TokenizeConfig;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A problem found in a pipeline file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line and column in the pipeline file, when the problem has a place.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl Diagnostic {
    pub fn at(text: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            position: offset.map(|o| line_col(text, o)),
            message: message.into(),
        }
    }
    /// `file:line:column: message`.
    pub fn render(&self, file: &Path) -> String {
        match self.position {
            Some((l, c)) => format!("{}:{l}:{c}: {}", file.display(), self.message),
            None => format!("{}: {}", file.display(), self.message),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

macro_rules! stage_kinds {
    ($($key:ident => $variant:ident($config:ty)),* $(,)?) => {
        /// One stage kind with its settings: the registry of every kind primer has.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum StageOp {
            $($variant($config),)*
        }

        /// The stage-kind keys, as written in pipeline files.
        pub const STAGE_KINDS: &[&str] = &[$(stringify!($key)),*];

        /// A stage as written: its inputs and exactly one kind key.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawStage {
            /// Ids of the stages whose datasets this stage reads.
            #[serde(default)]
            inputs: Vec<Spanned<String>>,
            $(#[serde(default)] $key: Option<$config>,)*
        }

        impl RawStage {
            fn into_op(self) -> Result<(Vec<Spanned<String>>, StageOp), String> {
                let mut ops = Vec::new();
                $(if let Some(c) = self.$key { ops.push(StageOp::$variant(c)); })*
                match ops.len() {
                    1 => Ok((self.inputs, ops.pop().expect("one"))),
                    0 => Err(format!("no stage kind: add one of {}", kinds_list())),
                    _ => Err(format!(
                        "more than one stage kind ({}): a stage does one thing; split it into stages",
                        ops.iter().map(|o| format!("`{}`", o.kind())).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }

        /// Write each kind's reference section (see `reference.rs`).
        pub(crate) fn document_kinds(
            out: &mut String,
            each: &mut dyn FnMut(&mut String, &str, fn(&mut String, &str)),
        ) {
            $(each(out, stringify!($key), crate::reference::kind_section::<$config>);)*
        }

        impl StageOp {
            /// The kind's key in pipeline files.
            pub fn kind(&self) -> &'static str {
                match self { $(StageOp::$variant(_) => stringify!($key),)* }
            }
        }
    };
}

stage_kinds! {
    read => Read(ReadConfig),
    sql => Sql(SqlConfig),
    write => Write(WriteConfig),
    read_warc => ReadWarc(ReadWarcConfig),
    crawl => Crawl(Box<CrawlConfig>),
    extract => Extract(ExtractConfig),
    exact_dedupe => ExactDedupe(ExactDedupeConfig),
    minhash_dedupe => MinhashDedupe(MinhashDedupeConfig),
    decontaminate => Decontaminate(DecontaminateConfig),
    filter => Filter(FilterConfig),
    pii => Pii(PiiConfig),
    language => Language(LanguageConfig),
    tokenize => Tokenize(TokenizeConfig),
    generate => Generate(Box<GenerateConfig>),
    annotate => Annotate(Box<AnnotateConfig>),
    train_classifier => TrainClassifier(Box<TrainClassifierConfig>),
    score => Score(Box<ScoreConfig>),
}

fn kinds_list() -> String {
    STAGE_KINDS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl StageOp {
    /// Make the runtime stage: opens files, checks settings against the environment.
    pub fn build(
        &self,
        ctx: &BuildContext,
        inputs: &[String],
    ) -> primer_core::Result<Box<dyn Stage>> {
        Ok(match self {
            StageOp::Read(c) => Box::new(c.build(ctx)?),
            StageOp::ReadWarc(c) => Box::new(c.build(ctx)?),
            StageOp::Crawl(c) => Box::new(c.build(ctx)?),
            StageOp::Extract(c) => Box::new(c.build(ctx)?),
            StageOp::Sql(c) => Box::new(c.build(ctx, inputs)?),
            StageOp::Write(c) => Box::new(c.build(ctx)?),
            StageOp::ExactDedupe(c) => Box::new(c.build(ctx)?),
            StageOp::MinhashDedupe(c) => Box::new(c.build(ctx)?),
            StageOp::Decontaminate(c) => Box::new(c.build(ctx)?),
            StageOp::Filter(c) => Box::new(c.build(ctx)?),
            StageOp::Pii(c) => Box::new(c.build(ctx)?),
            StageOp::Language(c) => Box::new(c.build(ctx)?),
            StageOp::Tokenize(c) => Box::new(c.build(ctx)?),
            StageOp::Generate(c) => Box::new(c.build(ctx)?),
            StageOp::Annotate(c) => Box::new(c.build(ctx)?),
            StageOp::TrainClassifier(c) => Box::new(c.build(ctx, inputs)?),
            StageOp::Score(c) => Box::new(c.build(ctx, inputs)?),
        })
    }

    /// Whether this kind writes a dataset other stages can read (`write` exports files).
    pub fn has_dataset(&self) -> bool {
        !matches!(self, StageOp::Write(_))
    }
}

/// The pipeline as a whole.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineSection {
    /// The pipeline's name.
    name: String,
    /// Where stage datasets go, one directory per stage, relative to the pipeline file's
    /// directory. Default `work/<name>`.
    #[serde(default)]
    workdir: Option<String>,
    /// Rows per record batch when stages read datasets. Documents are large (tens of KB),
    /// so batches are small: memory per batch is about rows × document size. Default 1024.
    #[serde(default = "default_batch_rows")]
    batch_rows: usize,
}

fn default_batch_rows() -> usize {
    1024
}

/// One stage of a loaded pipeline.
#[derive(Debug, Clone)]
pub struct StageDef {
    pub id: String,
    pub inputs: Vec<String>,
    /// Byte offsets of the inputs in the file (for messages).
    pub input_offsets: Vec<usize>,
    pub op: StageOp,
    /// Byte offset of the stage's table in the file (for messages).
    pub offset: usize,
}

/// A pipeline file, parsed and checked.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    /// Relative paths in settings are resolved against this (the file's directory).
    pub base_dir: PathBuf,
    pub workdir: PathBuf,
    pub batch_rows: usize,
    /// Stages in an order where every stage comes after its inputs.
    pub stages: Vec<StageDef>,
}

impl Pipeline {
    /// Read, parse and check a pipeline file. On failure, every problem found.
    pub fn load(path: &Path) -> Result<Pipeline, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                position: None,
                message: format!("cannot read the file: {e}"),
            }]
        })?;
        let base_dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Pipeline::parse(&text, path, &base_dir)
    }

    /// Parse and check pipeline text; `path` is for messages, `base_dir` resolves paths.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Pipeline, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let root = match DeTable::parse(text) {
            Ok(t) => t,
            Err(e) => {
                return Err(vec![Diagnostic::at(
                    text,
                    e.span().map(|s| s.start),
                    format!("invalid TOML: {}", e.message().trim()),
                )]);
            }
        };
        let root_span = root.span();
        let root = root.into_inner();
        let mut section = None;
        let mut stages_table = None;
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "pipeline" => section = Some(value),
                "stages" => stages_table = Some(value),
                other => diags.push(Diagnostic::at(
                    text,
                    Some(key.span().start),
                    format!("unknown table `{other}`, expected `pipeline` or `stages`"),
                )),
            }
        }
        let section: Option<PipelineSection> = match section {
            None => {
                diags.push(Diagnostic::at(
                    text,
                    Some(root_span.start),
                    "no `[pipeline]` table: add one with at least `name = \"…\"`",
                ));
                None
            }
            Some(v) => match PipelineSection::deserialize(ValueDeserializer::from(v)) {
                Ok(s) => Some(s),
                Err(e) => {
                    diags.push(de_diag(text, &e, "[pipeline]"));
                    None
                }
            },
        };
        if let Some(s) = &section {
            if s.batch_rows == 0 {
                diags.push(Diagnostic::at(
                    text,
                    None,
                    "[pipeline] batch_rows must be at least 1",
                ));
            }
            if !valid_id(&s.name) {
                diags.push(Diagnostic::at(
                    text,
                    None,
                    format!(
                        "[pipeline] name `{}`: use letters, digits, `_` and `-`",
                        s.name
                    ),
                ));
            }
        }
        let mut stages = Vec::new();
        let mut broken = Vec::new();
        match stages_table {
            None => diags.push(Diagnostic::at(
                text,
                None,
                "no stages: add a `[stages.<id>]` table",
            )),
            Some(v) => {
                let span = v.span();
                match v.into_inner() {
                    DeValue::Table(t) => {
                        for (key, value) in t {
                            let id = key.get_ref().to_string();
                            let offset = key.span().start;
                            if !valid_id(&id) {
                                diags.push(Diagnostic::at(
                                    text,
                                    Some(offset),
                                    format!("stage id `{id}`: use letters, digits and `_` (it names a directory and a SQL table)"),
                                ));
                            }
                            let lenient_inputs = lenient_inputs(&value);
                            match RawStage::deserialize(ValueDeserializer::from(value)) {
                                Ok(raw) => match raw.into_op() {
                                    Ok((inputs, op)) => stages.push(StageDef {
                                        id,
                                        input_offsets: inputs
                                            .iter()
                                            .map(|i| i.span().start)
                                            .collect(),
                                        inputs: inputs
                                            .into_iter()
                                            .map(Spanned::into_inner)
                                            .collect(),
                                        op,
                                        offset,
                                    }),
                                    Err(msg) => {
                                        diags.push(Diagnostic::at(
                                            text,
                                            Some(offset),
                                            format!("stage `{id}`: {msg}"),
                                        ));
                                        broken.push(BrokenStage {
                                            id,
                                            inputs: lenient_inputs,
                                            offset,
                                        });
                                    }
                                },
                                Err(e) => {
                                    diags.push(de_diag(text, &e, &format!("stage `{id}`")));
                                    broken.push(BrokenStage {
                                        id,
                                        inputs: lenient_inputs,
                                        offset,
                                    });
                                }
                            }
                        }
                    }
                    _ => diags.push(Diagnostic::at(
                        text,
                        Some(span.start),
                        "`stages` must be a table of stages",
                    )),
                }
            }
        }
        let ordered = crate::graph::check(text, &stages, &broken, &mut diags);
        let Some(section) = section else {
            return Err(diags);
        };
        let workdir_setting = section
            .workdir
            .clone()
            .unwrap_or_else(|| format!("work/{}", section.name));
        if primer_store::is_remote(&workdir_setting)
            && let Err(e) = primer_store::Location::parse(&workdir_setting)
        {
            diags.push(Diagnostic::at(text, None, format!("workdir: {e}")));
        }
        let workdir = primer_core::resolve_path(base_dir, &workdir_setting);
        let pipeline = Pipeline {
            name: section.name,
            path: path.to_path_buf(),
            base_dir: base_dir.to_path_buf(),
            workdir,
            batch_rows: section.batch_rows,
            stages: ordered,
        };
        if diags.is_empty() {
            crate::graph::check_build(text, &pipeline, &mut diags);
        }
        if diags.is_empty() {
            Ok(pipeline)
        } else {
            Err(diags)
        }
    }

    pub fn stage(&self, id: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// The directory of a stage's dataset.
    pub fn dataset_dir(&self, id: &str) -> PathBuf {
        self.workdir.join(id)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !id.starts_with(['_', '-', '.'])
}

fn de_diag(text: &str, e: &toml::de::Error, context: &str) -> Diagnostic {
    Diagnostic::at(
        text,
        e.span().map(|s| s.start),
        format!("{context}: {}", e.message().trim()),
    )
}

/// The inputs of a stage whose settings did not parse, read as well as can be, so the
/// graph can still be checked.
fn lenient_inputs(value: &Spanned<DeValue>) -> Vec<(String, usize)> {
    let DeValue::Table(t) = value.get_ref() else {
        return Vec::new();
    };
    let Some(inputs) = t.get("inputs") else {
        return Vec::new();
    };
    let DeValue::Array(items) = inputs.get_ref() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| {
            i.get_ref()
                .as_str()
                .map(|s| (s.to_string(), i.span().start))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), "{\"text\": \"x\"}\n").unwrap();
        match Pipeline::parse(text, Path::new("p.toml"), dir.path()) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.render(Path::new("p.toml"))).collect(),
        }
    }

    #[test]
    fn unknown_stage_kind_names_the_kinds() {
        let e = errors("[pipeline]\nname = \"t\"\n[stages.x.sqll]\nquery = \"SELECT 1\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        let want = format!(
            "p.toml:3:11: stage `x`: unknown field `sqll`, expected one of `inputs`, {}",
            kinds_list()
        );
        assert!(e[0].starts_with(&want), "{e:?}");
        assert!(want.contains("`read`, `sql`, `write`, "), "{want}");
    }

    #[test]
    fn a_stage_needs_exactly_one_kind() {
        let e = errors("[pipeline]\nname = \"t\"\n[stages.x]\ninputs = []\n");
        assert!(
            e[0].contains(&format!(
                "stage `x`: no stage kind: add one of {}",
                kinds_list()
            )),
            "{e:?}"
        );
        let e = errors(
            "[pipeline]\nname = \"t\"\n[stages.x.read]\npaths = [\"a.jsonl\"]\n[stages.x.sql]\nquery = \"SELECT 1\"\n",
        );
        assert!(
            e[0].contains("more than one stage kind (`read`, `sql`)"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_value_types_are_placed() {
        let e = errors("[pipeline]\nname = \"t\"\n[stages.x.read]\npaths = \"a.jsonl\"\n");
        assert!(
            e[0].starts_with(
                "p.toml:4:9: stage `x`: invalid type: string \"a.jsonl\", expected a sequence"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_toml_is_placed() {
        let e = errors("[pipeline]\nname = \"t\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("p.toml:2:"), "{e:?}");
        assert!(e[0].contains("invalid TOML"), "{e:?}");
    }

    #[test]
    fn unknown_tables_and_bad_ids_are_reported_together() {
        let e = errors("[pipelin]\nname = \"t\"\n[stages.\"a b\".read]\npaths = [\"a.jsonl\"]\n");
        assert!(
            e.iter()
                .any(|e| e.contains("unknown table `pipelin`, expected `pipeline` or `stages`")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("no `[pipeline]` table")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.contains("stage id `a b`")), "{e:?}");
    }

    #[test]
    fn stages_come_after_their_inputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), "{\"text\": \"x\"}\n").unwrap();
        let text = "[pipeline]\nname = \"t\"\n\
            [stages.c]\ninputs = [\"b\"]\n[stages.c.sql]\nquery = \"SELECT * FROM b\"\n\
            [stages.b]\ninputs = [\"a\"]\n[stages.b.sql]\nquery = \"SELECT * FROM a\"\n\
            [stages.a.read]\npaths = [\"a.jsonl\"]\n";
        let p = Pipeline::parse(text, Path::new("p.toml"), dir.path()).unwrap();
        let order: Vec<&str> = p.stages.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(p.workdir, dir.path().join("work/t"));
    }
}
