//! Little-endian reads of fastText's binary format, each checked against the bytes the file
//! still has, so that a truncated or corrupt file is an error and never a huge allocation
//! or a panic.

use std::io::{BufRead, ErrorKind};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(crate) struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
    file: PathBuf,
}

impl<R: BufRead> Reader<R> {
    /// `len`: the size of the whole input in bytes.
    pub(crate) fn new(inner: R, len: u64, file: &Path) -> Self {
        Reader {
            inner,
            pos: 0,
            len,
            file: file.to_path_buf(),
        }
    }

    fn truncated(&self, what: &'static str, needed: u64) -> Error {
        Error::Truncated {
            file: self.file.clone(),
            what,
            offset: self.pos,
            needed,
            available: self.len.saturating_sub(self.pos),
        }
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::Invalid {
            file: self.file.clone(),
            reason: reason.into(),
        }
    }

    /// Fails unless `count` items of `size` bytes are still in the file.
    pub(crate) fn need(&self, what: &'static str, count: u64, size: u64) -> Result<usize> {
        let needed = count
            .checked_mul(size)
            .ok_or_else(|| self.invalid(format!("{what}: {count} items do not fit in memory")))?;
        if needed > self.len.saturating_sub(self.pos) {
            return Err(self.truncated(what, needed));
        }
        usize::try_from(needed)
            .map_err(|_| self.invalid(format!("{what}: {needed} bytes do not fit in memory")))
    }

    fn fill(&mut self, what: &'static str, buf: &mut [u8]) -> Result<()> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                Err(self.truncated(what, buf.len() as u64))
            }
            Err(source) => Err(Error::Io {
                file: self.file.clone(),
                source,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        self.need(what, 1, N as u64)?;
        let mut b = [0u8; N];
        self.fill(what, &mut b)?;
        Ok(b)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A C++ `bool` as fastText writes it (one byte).
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.u8(what)? != 0)
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn bytes(&mut self, what: &'static str, count: u64) -> Result<Vec<u8>> {
        let n = self.need(what, count, 1)?;
        let mut v = vec![0u8; n];
        self.fill(what, &mut v)?;
        Ok(v)
    }

    pub(crate) fn f32s(&mut self, what: &'static str, count: u64) -> Result<Vec<f32>> {
        let n = self.need(what, count, 4)?;
        let mut out = Vec::with_capacity(n / 4);
        crate::pages::advise_huge(&out);
        let mut chunk = vec![0u8; n.min(1 << 16)];
        let mut left = n;
        while left > 0 {
            let b = &mut chunk[..left.min(1 << 16)];
            self.fill(what, b)?;
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            left -= b.len();
        }
        Ok(out)
    }

    /// Bytes up to a NUL (not included), as fastText writes dictionary words.
    pub(crate) fn cstr(&mut self, what: &'static str, out: &mut Vec<u8>) -> Result<()> {
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        file: self.file.clone(),
                        source,
                    });
                }
            };
            if buf.is_empty() {
                return Err(self.truncated(what, 1));
            }
            match buf.iter().position(|&b| b == 0) {
                Some(i) => {
                    out.extend_from_slice(&buf[..i]);
                    self.inner.consume(i + 1);
                    self.pos += i as u64 + 1;
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    out.extend_from_slice(buf);
                    self.inner.consume(n);
                    self.pos += n as u64;
                }
            }
        }
    }
}
