//! The `pii` stage: replace e-mail addresses and IP addresses like datatrove 0.10.1's
//! `PIIFormatter` (the same regular expressions, the same replacement strings used in
//! turn, and only public IPv4 addresses by default, judged as Python 3.11's
//! `ipaddress.ip_address(ip).is_global` does).

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use crate::text::{require_text, text_column};

/// datatrove's e-mail pattern.
const EMAIL: &str = concat!(
    r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:[",
    r"A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|[",
    r"01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)\])",
);
/// datatrove's IPv4 pattern.
const IP: &str =
    r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)";

/// Settings of the `pii` stage: replace e-mail and IP addresses in `text` with datatrove's
/// `PIIFormatter` patterns and replacement strings; counts `emails_replaced`,
/// `ips_replaced` and `documents_changed`. The replacements are used in turn, restarting
/// with each input part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Replace e-mail addresses. Default true.
    #[serde(default = "d_true")]
    pub remove_emails: bool,
    /// Replace IPv4 addresses. Default true.
    #[serde(default = "d_true")]
    pub remove_ips: bool,
    /// Replace only public (globally routable) IP addresses. Default true.
    #[serde(default = "d_true")]
    pub only_remove_public_ips: bool,
    /// Replacements for e-mail addresses, used in turn. Default `["email@example.com",
    /// "firstname.lastname@example.org"]`.
    #[serde(default = "d_email_replacement")]
    pub email_replacement: Vec<String>,
    /// Replacements for IP addresses, used in turn. Default datatrove's six addresses
    /// (`22.214.171.124`, …).
    #[serde(default = "d_ip_replacement")]
    pub ip_replacement: Vec<String>,
}

fn d_true() -> bool {
    true
}
fn d_email_replacement() -> Vec<String> {
    vec![
        "email@example.com".into(),
        "firstname.lastname@example.org".into(),
    ]
}
fn d_ip_replacement() -> Vec<String> {
    [
        "22.214.171.124",
        "126.96.36.199",
        "188.8.131.52",
        "184.108.40.206",
        "220.127.116.11",
        "18.104.22.168",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            remove_emails: true,
            remove_ips: true,
            only_remove_public_ips: true,
            email_replacement: d_email_replacement(),
            ip_replacement: d_ip_replacement(),
        }
    }
}

impl PiiConfig {
    pub fn build(&self, _ctx: &BuildContext) -> Result<PiiStage> {
        Ok(PiiStage {
            config: self.clone(),
            template: self.redactor()?,
        })
    }

    /// A redactor with its own turn counters (start of a task).
    pub fn redactor(&self) -> Result<PiiRedactor> {
        if self.email_replacement.is_empty() || self.ip_replacement.is_empty() {
            return Err(Error::input(
                "pii: email_replacement and ip_replacement need at least one string each",
            ));
        }
        Ok(PiiRedactor {
            email: Regex::new(EMAIL).expect("valid e-mail pattern"),
            ip: Regex::new(IP).expect("valid IP pattern"),
            config: self.clone(),
            email_i: 0,
            ip_i: 0,
        })
    }
}

/// Python 3.11.7's `IPv4Address.is_global`: not in 100.64.0.0/10 and not private.
fn is_global(ip: Ipv4Addr) -> bool {
    let v = u32::from(ip);
    let within = |net: [u8; 4], bits: u32| {
        let n = u32::from(Ipv4Addr::from(net));
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        v & mask == n & mask
    };
    const PRIVATE: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 29),
        ([192, 0, 0, 170], 31),
        ([192, 0, 2, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
    ];
    !within([100, 64, 0, 0], 10) && !PRIVATE.iter().any(|&(n, b)| within(n, b))
}

/// Python's `ipaddress.ip_address`: octets without leading zeros.
fn parse_ip(s: &str) -> Option<Ipv4Addr> {
    if s.split('.').any(|o| o.len() > 1 && o.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Replaces e-mail and IP addresses; the replacement strings are used in turn across the
/// documents one redactor sees (as one datatrove formatter does).
pub struct PiiRedactor {
    email: Regex,
    ip: Regex,
    config: PiiConfig,
    email_i: usize,
    ip_i: usize,
}

impl Clone for PiiRedactor {
    fn clone(&self) -> Self {
        PiiRedactor {
            email: self.email.clone(),
            ip: self.ip.clone(),
            config: self.config.clone(),
            email_i: 0,
            ip_i: 0,
        }
    }
}

impl PiiRedactor {
    /// The redacted text (borrowed when nothing changed), with the numbers of e-mail and IP
    /// replacements.
    pub fn redact<'a>(&mut self, text: &'a str) -> (std::borrow::Cow<'a, str>, u64, u64) {
        let mut n_email = 0u64;
        let mut n_ip = 0u64;
        let mut cur = std::borrow::Cow::Borrowed(text);
        if self.config.remove_emails && cur.contains('@') {
            let reps = &self.config.email_replacement;
            let i = &mut self.email_i;
            let out = self.email.replace_all(&cur, |_: &regex::Captures| {
                let r = reps[*i].clone();
                *i = (*i + 1) % reps.len();
                n_email += 1;
                r
            });
            if let std::borrow::Cow::Owned(s) = out {
                cur = std::borrow::Cow::Owned(s);
            }
        }
        if self.config.remove_ips && cur.contains('.') {
            let reps = &self.config.ip_replacement;
            let public_only = self.config.only_remove_public_ips;
            let i = &mut self.ip_i;
            let out = self.ip.replace_all(&cur, |c: &regex::Captures| {
                let m = c.get(0).expect("whole match").as_str();
                let valid = parse_ip(m).is_some_and(|ip| !public_only || is_global(ip));
                if !valid {
                    return m.to_string();
                }
                let r = reps[*i].clone();
                *i = (*i + 1) % reps.len();
                n_ip += 1;
                r
            });
            if let std::borrow::Cow::Owned(s) = out {
                cur = std::borrow::Cow::Owned(s);
            }
        }
        if n_email + n_ip == 0 {
            return (std::borrow::Cow::Borrowed(text), 0, 0);
        }
        (cur, n_email, n_ip)
    }
}

/// The runtime `pii` stage.
pub struct PiiStage {
    config: PiiConfig,
    template: PiiRedactor,
}

impl Stage for PiiStage {
    fn kind(&self) -> &'static str {
        "pii"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        require_text(inputs, "pii")
    }

    fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
        Ok(inputs[0].num_parts())
    }

    fn notes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("modifies_text".into(), true.into());
        m.insert(
            "replacement_turns".into(),
            "replacement strings are used in turn, restarting with each task (input part)".into(),
        );
        let _ = &self.config;
        m
    }

    fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        let mut red = self.template.clone();
        for batch in ctx.inputs[0].read_part(task, ctx.batch_size)? {
            ctx.check_cancelled()?;
            let batch = batch?;
            out.count("rows_in", batch.num_rows() as u64);
            let col = text_column(&batch)?;
            let n = batch.num_rows();
            let mut new: Vec<Option<String>> = vec![None; n];
            let mut changed = false;
            for (i, slot) in new.iter_mut().enumerate() {
                let Some(t) = col.get(i) else { continue };
                let (r, e, p) = red.redact(t);
                if e > 0 {
                    out.count("emails_replaced", e);
                }
                if p > 0 {
                    out.count("ips_replaced", p);
                }
                if e + p > 0 {
                    out.count("documents_changed", 1);
                }
                if let std::borrow::Cow::Owned(s) = r {
                    *slot = Some(s);
                    changed = true;
                }
            }
            if changed {
                let idx = batch.schema().index_of("text").expect("checked");
                let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
                cols[idx] = col.replaced(&new);
                let b = RecordBatch::try_new(batch.schema(), cols)
                    .map_err(|e| Error::arrow("replacing text", e))?;
                out.write(&b)?;
            } else {
                out.write(&batch)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_like_datatrove() {
        let mut r = PiiConfig::default().redactor().unwrap();
        let (t, e, i) = r.redact(
            "mail a.b@example.co.uk or x@y.org; hosts 8.8.8.8, 10.0.0.1, 08.8.8.8 and 1.1.1.1",
        );
        assert_eq!(
            t,
            "mail email@example.com or firstname.lastname@example.org; hosts 22.214.171.124, 10.0.0.1, 08.8.8.8 and 126.96.36.199"
        );
        assert_eq!((e, i), (2, 2));
        // Turns continue with the next document.
        let (t, _, _) = r.redact("z@q.io 9.9.9.9");
        assert_eq!(t, "email@example.com 188.8.131.52");
        let (t, e, i) = r.redact("nothing here 100.64.1.1 192.168.1.1");
        assert!(matches!(t, std::borrow::Cow::Borrowed(_)));
        assert_eq!((e, i), (0, 0));
    }
}

#[cfg(test)]
mod stage_tests {
    use arrow::array::AsArray;
    use primer_core::testing::{read_all, run_stage};

    use super::*;
    use crate::text::test_dataset;

    #[test]
    fn stage_redacts_and_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let input = test_dataset(
            &tmp.path().join("in"),
            &[&[
                "write to a@b.com from 8.8.8.8",
                "nothing",
                "local 127.0.0.1",
            ]],
        );
        let stage = PiiConfig::default()
            .build(&BuildContext {
                stage_id: "p",
                base_dir: std::path::Path::new("."),
            })
            .unwrap();
        let ds = run_stage(&stage, &[input], &tmp.path().join("out"), 100).unwrap();
        let b = read_all(&ds).unwrap();
        let texts: Vec<&str> = b
            .column(1)
            .as_string::<i64>()
            .iter()
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "write to email@example.com from 22.214.171.124",
                "nothing",
                "local 127.0.0.1"
            ]
        );
        let c = serde_json::to_value(&ds.manifest().counters).unwrap();
        assert_eq!(c["emails_replaced"], 1);
        assert_eq!(c["ips_replaced"], 1);
        assert_eq!(c["documents_changed"], 1);
        assert_eq!(ds.manifest().notes["modifies_text"], true);
    }
}
