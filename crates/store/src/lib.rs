//! Object storage for primer: where a pipeline may name `s3://bucket/prefix` instead of a
//! local path (its work directory, an input glob, an export or token-shard directory).
//!
//! primer's stages read and write local files (Parquet parts, redb caches, mmapped token
//! shards), so a remote location is worked on through a **staging copy** on local disk:
//! `s3://bucket/key` is staged at `<staging root>/s3/bucket/key` ([`staging_path`]), and
//! [`remote_of`] maps a staged path back. The root is `$PRIMER_STAGING_DIR`, or
//! `primer-staging` in the system's temporary directory; on a cluster each node has its
//! own. What goes up and down, and in which order (parts before the records that name
//! them, manifests last), is decided by the callers; this crate moves single objects.
//!
//! Every object is written by one PUT (a multipart upload for files over 64 MiB), which
//! S3 makes visible only when it is complete: a reader never sees half an object.
//! Downloads go to a temporary file renamed into place, with the object's time as the
//! file's modification time, so fingerprints built from file times agree on every node.
//!
//! Credentials and the endpoint come from the environment, as with the AWS tools:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (any S3-compatible server) and
//! `AWS_ALLOW_HTTP=true` for one without TLS. Requests are retried by `object_store`
//! (at most 10 times within 3 minutes) and time out after 5 minutes each.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// The scheme primer accepts for object storage.
pub const SCHEME: &str = "s3://";
/// Files larger than this go up as a multipart upload, in parts of this size.
const MULTIPART_BYTES: u64 = 64 << 20;
const PART_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {source}")]
    Store {
        url: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `s` names object storage (`s3://…`).
pub fn is_remote(s: &str) -> bool {
    s.starts_with(SCHEME)
}

/// An object or prefix: `s3://bucket/key`. The key has no leading or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

impl Location {
    /// Parse `s3://bucket/key`; the key may be empty (the whole bucket).
    pub fn parse(url: &str) -> Result<Location> {
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| Error::Input(format!("`{url}` is not an s3:// location")))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let key = key.trim_matches('/');
        if bucket.is_empty() || key.split('/').any(|c| c == "." || c == "..") {
            return Err(Error::Input(format!(
                "`{url}`: write an s3:// location as s3://bucket/prefix, without `.` or `..`"
            )));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// This location with `rel` (a `/`-separated relative path) appended.
    pub fn join(&self, rel: &str) -> Location {
        let rel = rel.trim_matches('/');
        let key = match (self.key.is_empty(), rel.is_empty()) {
            (_, true) => self.key.clone(),
            (true, false) => rel.to_string(),
            (false, false) => format!("{}/{rel}", self.key),
        };
        Location {
            bucket: self.bucket.clone(),
            key,
        }
    }

    pub fn url(&self) -> String {
        format!("{SCHEME}{}/{}", self.bucket, self.key)
    }

    fn path(&self) -> ObjectPath {
        ObjectPath::from(self.key.as_str())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

/// The local directory staging copies live under.
pub fn staging_root() -> PathBuf {
    match std::env::var_os("PRIMER_STAGING_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::temp_dir().join("primer-staging"),
    }
}

/// Where the staging copy of `loc` is on local disk.
pub fn staging_path(loc: &Location) -> PathBuf {
    let mut p = staging_root().join("s3").join(&loc.bucket);
    for c in loc.key.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
    }
    p
}

/// The location a staged path is the copy of; `None` for a path outside the staging root.
pub fn remote_of(local: &Path) -> Option<Location> {
    let rel = local.strip_prefix(staging_root().join("s3")).ok()?;
    let mut parts = rel.iter().map(|c| c.to_str());
    let bucket = parts.next()??.to_string();
    let key: Option<Vec<&str>> = parts.collect();
    Some(Location {
        bucket,
        key: key?.join("/"),
    })
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its full key.
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// A bucket, reached with blocking calls (each runs on a small shared Tokio runtime, so
/// they may be made from many threads at once).
#[derive(Debug)]
pub struct Bucket {
    name: String,
    s3: AmazonS3,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("primer-store")
            .enable_all()
            .build()
            .expect("a Tokio runtime for object storage")
    })
}

/// The bucket `name`, configured from the environment; one client per bucket and process.
pub fn bucket(name: &str) -> Result<Arc<Bucket>> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<Bucket>>>> = OnceLock::new();
    let mut map = BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(b) = map.get(name) {
        return Ok(b.clone());
    }
    let mut builder = AmazonS3Builder::from_env();
    // The AWS tools' name for a custom endpoint (object_store reads AWS_ENDPOINT too).
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
        builder = builder.with_endpoint(url);
    }
    let b = Arc::new(build(name, builder)?);
    map.insert(name.to_string(), b.clone());
    Ok(b)
}

/// The bucket `name` configured by `options` — `object_store`'s keys, such as
/// `aws_endpoint`, `aws_access_key_id`, `aws_allow_http` — instead of the environment.
pub fn connect(name: &str, options: &[(&str, &str)]) -> Result<Bucket> {
    let mut builder = AmazonS3Builder::new();
    for (k, v) in options {
        let key: AmazonS3ConfigKey = k
            .parse()
            .map_err(|_| Error::Input(format!("`{k}` is no S3 setting")))?;
        builder = builder.with_config(key, *v);
    }
    build(name, builder)
}

fn build(name: &str, builder: AmazonS3Builder) -> Result<Bucket> {
    let s3 = builder
        .with_bucket_name(name)
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "10s",
        )
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300s")
        .build()
        .map_err(|e| Error::Store {
            url: format!("{SCHEME}{name}"),
            source: Box::new(e),
        })?;
    Ok(Bucket {
        name: name.to_string(),
        s3,
    })
}

impl Bucket {
    fn err(&self, key: &str, e: object_store::Error) -> Error {
        Error::Store {
            url: format!("{SCHEME}{}/{key}", self.name),
            source: Box::new(e),
        }
    }

    fn loc(&self, key: &str) -> Location {
        Location {
            bucket: self.name.clone(),
            key: key.to_string(),
        }
    }

    /// Every object under `prefix` (a directory-like prefix: `a/b` lists `a/b/…`).
    pub fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        let prefix = prefix.trim_matches('/');
        let path = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        runtime().block_on(async {
            let mut out = Vec::new();
            let mut stream = self.s3.list(path.as_ref());
            while let Some(m) = stream.next().await {
                let m = m.map_err(|e| self.err(prefix, e))?;
                out.push(Object {
                    key: m.location.to_string(),
                    size: m.size,
                    modified: m.last_modified.into(),
                });
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    /// The object's bytes, or `None` when there is no such object.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.loc(key).path();
        runtime().block_on(async {
            match self.s3.get(&path).await {
                Ok(r) => Ok(Some(
                    r.bytes().await.map_err(|e| self.err(key, e))?.to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(key, e)),
            }
        })
    }

    /// Copy the object to `local` (through a temporary file renamed into place), with the
    /// object's time as the file's modification time.
    pub fn download(&self, key: &str, local: &Path) -> Result<Object> {
        self.download_if_exists(key, local)?
            .ok_or_else(|| Error::Store {
                url: self.loc(key).url(),
                source: Box::new(object_store::Error::NotFound {
                    path: key.to_string(),
                    source: "no such object".into(),
                }),
            })
    }

    /// [`download`](Self::download), or `None` when the object is not there (any more).
    pub fn download_if_exists(&self, key: &str, local: &Path) -> Result<Option<Object>> {
        let path = self.loc(key).path();
        if let Some(dir) = local.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let tmp = local.with_file_name(format!(
            ".{}.download",
            local.file_name().unwrap_or_default().to_string_lossy()
        ));
        let meta = runtime().block_on(async {
            let r = match self.s3.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.err(key, e)),
            };
            let meta = r.meta.clone();
            let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
            let mut stream = r.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.err(key, e))?;
                file.write_all(&chunk).map_err(|e| io(&tmp, e))?;
            }
            file.sync_all().map_err(|e| io(&tmp, e))?;
            let modified: SystemTime = meta.last_modified.into();
            file.set_modified(modified).map_err(|e| io(&tmp, e))?;
            Ok::<_, Error>(Some(meta))
        })?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        std::fs::rename(&tmp, local).map_err(|e| io(local, e))?;
        Ok(Some(Object {
            key: key.to_string(),
            size: meta.size,
            modified: meta.last_modified.into(),
        }))
    }

    /// Store `bytes` as the object `key`, replacing it.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.loc(key).path();
        runtime().block_on(async {
            self.s3
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| self.err(key, e))
        })?;
        Ok(())
    }

    /// Store the file `local` as the object `key` (replacing it), then give the file the
    /// object's time, so a later comparison of size and time finds the two equal.
    pub fn upload(&self, local: &Path, key: &str) -> Result<()> {
        let path = self.loc(key).path();
        let len = std::fs::metadata(local).map_err(|e| io(local, e))?.len();
        runtime().block_on(async {
            if len <= MULTIPART_BYTES {
                let bytes = std::fs::read(local).map_err(|e| io(local, e))?;
                self.s3
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| self.err(key, e))?;
            } else {
                use std::io::Read;
                let upload = self
                    .s3
                    .put_multipart(&path)
                    .await
                    .map_err(|e| self.err(key, e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                let mut file = std::fs::File::open(local).map_err(|e| io(local, e))?;
                let mut buf = vec![0u8; PART_BYTES];
                loop {
                    let n = file.read(&mut buf).map_err(|e| io(local, e))?;
                    if n == 0 {
                        break;
                    }
                    writer
                        .wait_for_capacity(4)
                        .await
                        .map_err(|e| self.err(key, e))?;
                    writer.write(&buf[..n]);
                }
                writer.finish().await.map_err(|e| self.err(key, e))?;
            }
            let meta = self.s3.head(&path).await.map_err(|e| self.err(key, e))?;
            let modified: SystemTime = meta.last_modified.into();
            std::fs::File::options()
                .write(true)
                .open(local)
                .and_then(|f| f.set_modified(modified))
                .map_err(|e| io(local, e))?;
            Ok(())
        })
    }

    /// Remove the object `key` (no error when it is not there).
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = self.loc(key).path();
        runtime().block_on(async {
            match self.s3.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err(key, e)),
            }
        })
    }
}

/// Store a file of a staging copy at the location it is the copy of; `false` (and nothing
/// done) for a file outside the staging root.
pub fn upload_staged(local: &Path) -> Result<bool> {
    let Some(loc) = remote_of(local) else {
        return Ok(false);
    };
    bucket(&loc.bucket)?.upload(local, &loc.key)?;
    Ok(true)
}

/// A local file's size and modification time, to compare with an [`Object`].
pub fn file_matches(local: &Path, obj: &Object) -> bool {
    std::fs::metadata(local).is_ok_and(|m| {
        m.len() == obj.size
            && m.modified().ok().is_some_and(|t| {
                let d = match t.duration_since(obj.modified) {
                    Ok(d) => d,
                    Err(e) => e.duration(),
                };
                d < Duration::from_millis(1)
            })
    })
}

/// Objects listed by [`list_glob`], by the path of their staging copy: what
/// [`stored_stamp`] answers and [`fetch_listed`] brings down.
fn listed() -> &'static Mutex<HashMap<PathBuf, Object>> {
    static LISTED: OnceLock<Mutex<HashMap<PathBuf, Object>>> = OnceLock::new();
    LISTED.get_or_init(Default::default)
}

/// The staging paths of the objects a glob like `s3://bucket/data/*.jsonl.zst` matches
/// (`*` and `?` do not cross `/`), sorted by key. Nothing is downloaded: the objects'
/// sizes and times are remembered ([`stored_stamp`]) and a reader brings each down when
/// it opens it ([`fetch_listed`]), so a shard fetches its own files only. An error names
/// the pattern when it is no valid glob.
pub fn list_glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let loc = Location::parse(pattern)?;
    let prefix = glob_prefix(&loc.key);
    let glob = glob::Pattern::new(&loc.key)
        .map_err(|e| Error::Input(format!("`{pattern}` is not a valid glob: {e}")))?;
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let b = bucket(&loc.bucket)?;
    let mut out = Vec::new();
    for obj in b.list(prefix)? {
        if !glob.matches_with(&obj.key, opts) {
            continue;
        }
        let local = staging_path(&Location {
            bucket: loc.bucket.clone(),
            key: obj.key.clone(),
        });
        listed()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local.clone(), obj);
        out.push(local);
    }
    Ok(out)
}

/// The size and time of the object a listed staging path stands for (what its copy will
/// have once fetched); `None` for a path [`list_glob`] did not list.
pub fn stored_stamp(local: &Path) -> Option<(u64, SystemTime)> {
    let listed = listed().lock().unwrap_or_else(|e| e.into_inner());
    listed.get(local).map(|o| (o.size, o.modified))
}

/// Bring a path [`list_glob`] listed to its staging copy, unless the copy already has the
/// object's size and time; a no-op for any other path.
pub fn fetch_listed(local: &Path) -> Result<()> {
    let Some(obj) = listed()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(local)
        .cloned()
    else {
        return Ok(());
    };
    if file_matches(local, &obj) {
        return Ok(());
    }
    let loc = remote_of(local)
        .ok_or_else(|| Error::Input(format!("{} is not a staging path", local.display())))?;
    bucket(&loc.bucket)?.download(&obj.key, local)?;
    Ok(())
}

/// The directory-like prefix to list for a glob over keys: the part above the first
/// wildcard, or above the key itself when it has none.
fn glob_prefix(key: &str) -> &str {
    let first_meta = key.find(['*', '?', '[']).unwrap_or(key.len());
    key[..first_meta].rfind('/').map_or("", |i| &key[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_join_and_map_to_staging_and_back() {
        let l = Location::parse("s3://corpus/runs/a/").unwrap();
        assert_eq!(l.bucket, "corpus");
        assert_eq!(l.key, "runs/a");
        assert_eq!(
            l.join("x/_manifest.json").url(),
            "s3://corpus/runs/a/x/_manifest.json"
        );
        assert_eq!(Location::parse("s3://b").unwrap().join("k").key, "k");
        assert!(Location::parse("s3:///k").is_err());
        assert!(Location::parse("s3://b/../k").is_err());
        assert!(Location::parse("/local").is_err());
        let local = staging_path(&l).join("x").join("part-00000.parquet");
        assert_eq!(
            remote_of(&local).unwrap().url(),
            "s3://corpus/runs/a/x/part-00000.parquet"
        );
        assert_eq!(remote_of(Path::new("/somewhere/else")), None);
    }

    #[test]
    fn a_glob_lists_the_prefix_above_its_first_wildcard() {
        assert_eq!(glob_prefix("in/2024/*.jsonl.zst"), "in/2024");
        assert_eq!(glob_prefix("in/f-??/x.jsonl"), "in");
        assert_eq!(glob_prefix("in/docs.jsonl"), "in");
        assert_eq!(glob_prefix("docs.jsonl"), "");
        assert_eq!(glob_prefix("*.jsonl"), "");
    }
}
