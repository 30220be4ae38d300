//! `s3://` and `s3a://` paths on Amazon S3 and S3-compatible servers, through the
//! `object_store` crate, with Hadoop S3A's settings (Spark passes them as
//! `spark.hadoop.fs.s3a.*`):
//!
//! | setting | meaning |
//! |---|---|
//! | `spark.hadoop.fs.s3a.endpoint` | the server's URL (`http://127.0.0.1:9000`; without a scheme, https unless `connection.ssl.enabled` is false); default AWS's |
//! | `spark.hadoop.fs.s3a.path.style.access` | `true`: `endpoint/bucket/key` instead of `bucket.endpoint/key` |
//! | `spark.hadoop.fs.s3a.access.key`, `.secret.key`, `.session.token` | credentials; without them the AWS standard environment (`AWS_ACCESS_KEY_ID`, …) and credential chain |
//! | `spark.hadoop.fs.s3a.endpoint.region` | the region (default `AWS_REGION` or `us-east-1`) |
//! | `spark.hadoop.fs.s3a.attempts.maximum` | retries of a failed request, with exponential backoff (default 3) |
//! | `spark.hadoop.fs.s3a.retry.limit.ms` | no retry starts later than this after the first attempt (default 30000) |
//! | `spark.hadoop.fs.s3a.connection.timeout` | ms a request may take (default 200000, S3A's) |
//! | `spark.hadoop.fs.s3a.connection.establish.timeout` | ms to connect (default 5000) |
//!
//! Requests are made on one small tokio runtime of this module's own, so callers
//! (task threads, the driver's job thread) block without being async themselves.

use crate::config::Conf;
use crate::error::{EmberError, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Bytes one ranged GET of a reader fetches.
pub const READ_CHUNK_BYTES: u64 = 8 << 20;
/// Part size of multipart uploads; smaller files are one PUT.
pub const PART_BYTES: usize = 8 << 20;

/// An object (or a prefix) named by `s3://bucket/key` or `s3a://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Path {
    /// `s3` or `s3a`, kept so URLs are given back as written.
    pub scheme: String,
    /// The bucket.
    pub bucket: String,
    /// The key, without a leading `/` (empty for the whole bucket).
    pub key: String,
}

impl S3Path {
    /// The path a URL names, `None` when it is not an `s3`/`s3a` URL.
    ///
    /// # Errors
    /// A message when the URL names no bucket.
    pub fn parse(url: &str) -> Option<std::result::Result<S3Path, String>> {
        let (scheme, rest) = url.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("s3") && !scheme.eq_ignore_ascii_case("s3a") {
            return None;
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!("{url}: no bucket in the URL (s3a://bucket/key)")));
        }
        Some(Ok(S3Path {
            scheme: scheme.to_ascii_lowercase(),
            bucket: bucket.into(),
            key: key.trim_matches('/').into(),
        }))
    }

    /// `scheme://bucket/key`.
    pub fn url(&self) -> String {
        format!("{}://{}/{}", self.scheme, self.bucket, self.key)
    }

    /// The same bucket, key `key`.
    pub fn with_key(&self, key: impl Into<String>) -> S3Path {
        S3Path { key: key.into(), ..self.clone() }
    }

    fn object(&self) -> ObjectPath {
        ObjectPath::from(self.key.as_str())
    }
}

/// How to reach the store: the `spark.hadoop.fs.s3a.*` settings of a [`Conf`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct S3Settings {
    endpoint: Option<String>,
    path_style: bool,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    region: Option<String>,
    max_retries: usize,
    retry_limit_ms: u64,
    request_timeout_ms: u64,
    connect_timeout_ms: u64,
}

const PREFIX: &str = "spark.hadoop.fs.s3a.";

impl S3Settings {
    /// The settings in `conf` (see the module docs for keys and defaults).
    ///
    /// # Errors
    /// [`EmberError::Config`] for a value that is not a number or boolean where
    /// one is needed.
    pub fn from_conf(conf: &Conf) -> Result<Self> {
        let text = |k: &str| conf.get(&format!("{PREFIX}{k}")).map(str::to_string).filter(|v| !v.is_empty());
        let number = |k: &str, default: u64| -> Result<u64> {
            match text(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| EmberError::Config(format!("{PREFIX}{k} must be a whole number, got {v:?}"))),
            }
        };
        // Hadoop takes an endpoint without a scheme too, and then uses https
        // unless fs.s3a.connection.ssl.enabled is false.
        let ssl = conf.get_bool(&format!("{PREFIX}connection.ssl.enabled"), true)?;
        let endpoint = text("endpoint").map(|e| {
            let e = e.trim();
            let full = if e.contains("://") {
                e.to_string()
            } else if ssl {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            };
            full.trim_end_matches('/').to_string()
        });
        if let Some(e) = &endpoint {
            let valid = e.parse::<reqwest::Url>().is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()));
            if !valid {
                return Err(EmberError::Config(format!(
                    "{PREFIX}endpoint {e:?} is not a URL (give it as http://host:port or https://host)"
                )));
            }
        }
        Ok(S3Settings {
            endpoint,
            path_style: conf.get_bool(&format!("{PREFIX}path.style.access"), false)?,
            access_key: text("access.key"),
            secret_key: text("secret.key"),
            session_token: text("session.token"),
            region: text("endpoint.region"),
            max_retries: number("attempts.maximum", 3)? as usize,
            retry_limit_ms: number("retry.limit.ms", 30_000)?,
            request_timeout_ms: number("connection.timeout", 200_000)?,
            connect_timeout_ms: number("connection.establish.timeout", 5_000)?,
        })
    }

    /// For a "not found" answer: a reminder of path-style access when a custom
    /// endpoint is set without it (many servers then answer every virtual-host
    /// style request as if the object did not exist); empty otherwise.
    pub fn addressing_hint(&self) -> &'static str {
        if self.endpoint.is_some() && !self.path_style {
            " (with a custom endpoint, most S3-compatible servers need \
             spark.hadoop.fs.s3a.path.style.access=true)"
        } else {
            ""
        }
    }

    fn build(&self, bucket: &str) -> Result<AmazonS3> {
        // reqwest is built without a TLS crypto provider of its own: use ring, as
        // the rest of Ember's TLS does. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        b = b.with_virtual_hosted_style_request(!self.path_style);
        if let Some(k) = &self.access_key {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &self.secret_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &self.session_token {
            b = b.with_token(t);
        }
        match &self.region {
            Some(r) => b = b.with_region(r),
            None if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() => {
                b = b.with_region("us-east-1")
            }
            None => {}
        }
        let retry = RetryConfig {
            max_retries: self.max_retries,
            retry_timeout: Duration::from_millis(self.retry_limit_ms),
            ..RetryConfig::default()
        };
        let client = ClientOptions::new()
            .with_allow_http(self.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")))
            .with_timeout(Duration::from_millis(self.request_timeout_ms))
            .with_connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        b.with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|e| EmberError::Config(format!("s3a://{bucket}: {e}")))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ember-s3")
            .enable_all()
            .build()
            .expect("the object store's runtime")
    })
}

/// Runs `f` on this module's runtime and waits for it; callable from any thread,
/// also from inside another tokio runtime.
fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("an object store call was dropped")
}

/// A connection to one bucket with one set of settings, shared by every caller.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
}

impl Bucket {
    /// The bucket of `path` with `settings` (cached: one client per bucket and
    /// settings in a process).
    ///
    /// # Errors
    /// [`EmberError::Config`] when the settings cannot make a client.
    pub fn open(settings: &S3Settings, path: &S3Path) -> Result<Bucket> {
        type Clients = Mutex<HashMap<(S3Settings, String), Arc<AmazonS3>>>;
        static CLIENTS: OnceLock<Clients> = OnceLock::new();
        let mut clients = CLIENTS.get_or_init(Default::default).lock();
        let key = (settings.clone(), path.bucket.clone());
        if let Some(store) = clients.get(&key) {
            return Ok(Bucket { store: store.clone() });
        }
        let store = Arc::new(settings.build(&path.bucket)?);
        clients.insert(key, store.clone());
        Ok(Bucket { store })
    }

    /// The size of the object at `path`, `None` when there is none.
    pub fn size(&self, path: &S3Path) -> Result<Option<u64>> {
        let store = self.store.clone();
        let object = path.object();
        match block_on(async move { store.head(&object).await }) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(path, e)),
        }
    }

    /// Every object under `path/` (recursively when `recursive`), as
    /// `(path, size)` sorted by key.
    pub fn list(&self, path: &S3Path, recursive: bool) -> Result<Vec<(S3Path, u64)>> {
        let store = self.store.clone();
        let prefix = (!path.key.is_empty()).then(|| path.object());
        let listed = block_on(async move {
            if recursive {
                store.list(prefix.as_ref()).try_collect::<Vec<_>>().await
            } else {
                store.list_with_delimiter(prefix.as_ref()).await.map(|r| r.objects)
            }
        })
        .map_err(|e| store_error(path, e))?;
        let mut found: Vec<(S3Path, u64)> =
            listed.into_iter().map(|m| (path.with_key(m.location.to_string()), m.size)).collect();
        found.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        Ok(found)
    }

    /// The names directly under `path/`: objects and common prefixes (the
    /// "sub-directories"), one delimited listing.
    pub fn list_names(&self, path: &S3Path) -> Result<Vec<String>> {
        let store = self.store.clone();
        let prefix = (!path.key.is_empty()).then(|| path.object());
        let listed = block_on(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map_err(|e| store_error(path, e))?;
        let name = |p: &ObjectPath| p.filename().map(str::to_string);
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(name)
            .chain(listed.objects.iter().filter_map(|m| name(&m.location)))
            .collect())
    }

    /// Bytes `range` of the object.
    pub fn read_range(&self, path: &S3Path, range: std::ops::Range<u64>) -> Result<Bytes> {
        let store = self.store.clone();
        let object = path.object();
        block_on(async move { store.get_range(&object, range).await }).map_err(|e| store_error(path, e))
    }

    /// A reader of bytes `start..` of an object of `size` bytes, fetching
    /// [`READ_CHUNK_BYTES`] per request (memory stays at one chunk).
    pub fn reader(&self, path: &S3Path, start: u64, size: u64) -> RangeReader {
        RangeReader { bucket: self.clone(), path: path.clone(), pos: start, size, chunk: Bytes::new() }
    }

    /// Uploads the local file `from` to `path`: one PUT up to [`PART_BYTES`], a
    /// multipart upload (parts of [`PART_BYTES`], two in flight) above.
    pub fn upload(&self, from: &std::path::Path, path: &S3Path) -> Result<()> {
        let store = self.store.clone();
        let object = path.object();
        let file = from.to_path_buf();
        let size = std::fs::metadata(&file).map_err(|e| EmberError::io(file.display(), e))?.len();
        let result = block_on(async move {
            let mut input = std::fs::File::open(&file)
                .map_err(|e| object_store::Error::Generic { store: "local", source: Box::new(e) })?;
            if size <= PART_BYTES as u64 {
                let mut data = Vec::with_capacity(size as usize);
                input
                    .read_to_end(&mut data)
                    .map_err(|e| object_store::Error::Generic { store: "local", source: Box::new(e) })?;
                return store.put(&object, data.into()).await.map(drop);
            }
            let upload = store.put_multipart(&object).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                writer.wait_for_capacity(2).await?;
                let n = input
                    .read(&mut buf)
                    .map_err(|e| object_store::Error::Generic { store: "local", source: Box::new(e) })?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n]);
            }
            writer.finish().await.map(drop)
        });
        result.map_err(|e| store_error(path, e))
    }

    /// Writes `data` as the object at `path`.
    pub fn put(&self, path: &S3Path, data: Vec<u8>) -> Result<()> {
        let store = self.store.clone();
        let object = path.object();
        block_on(async move { store.put(&object, data.into()).await.map(drop) }).map_err(|e| store_error(path, e))
    }

    /// Copies the object `from` to `to` on the server.
    pub fn copy(&self, from: &S3Path, to: &S3Path) -> Result<()> {
        let store = self.store.clone();
        let (a, b) = (from.object(), to.object());
        block_on(async move { store.copy(&a, &b).await }).map_err(|e| store_error(from, e))
    }

    /// Deletes the object at `path` (a missing one is not an error).
    pub fn delete(&self, path: &S3Path) -> Result<()> {
        let store = self.store.clone();
        let object = path.object();
        match block_on(async move { store.delete(&object).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(path, e)),
        }
    }

    /// Deletes every object under `path/`.
    pub fn delete_prefix(&self, path: &S3Path) -> Result<()> {
        let store = self.store.clone();
        let prefix = path.object();
        block_on(async move {
            let locations = store.list(Some(&prefix)).map_ok(|m| m.location).boxed();
            store.delete_stream(locations).try_collect::<Vec<_>>().await.map(drop)
        })
        .map_err(|e| store_error(path, e))
    }
}

use futures::StreamExt;

/// The error of a store call on `path`: the URL, then the store's own cause (a
/// missing bucket, refused credentials, an unreachable endpoint after the
/// configured retries).
pub fn store_error(path: &S3Path, e: object_store::Error) -> EmberError {
    let cause = match &e {
        object_store::Error::NotFound { .. } => "not found (no such bucket or object)".to_string(),
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                source = s.source();
            }
            text
        }
    };
    EmberError::Io { path: path.url(), message: concise(cause) }
}

/// The S3 error code and message of a server's XML error body (`NoSuchBucket: The
/// specified bucket does not exist`) instead of the whole body, and a hint where
/// the credential chain fell through to the instance metadata service.
fn concise(cause: String) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = cause.find(&open)? + open.len();
        let end = cause[start..].find(&format!("</{name}>"))? + start;
        Some(cause[start..end].to_string())
    };
    if let (Some(code), Some(message)) = (tag("Code"), tag("Message")) {
        let status = cause.split("status code: ").nth(1).and_then(|s| s.split(':').next()).unwrap_or("").trim();
        return format!("{code}: {message} (HTTP {status})");
    }
    if cause.contains("169.254.169.254") {
        return format!(
            "no credentials: set spark.hadoop.fs.s3a.access.key and spark.hadoop.fs.s3a.secret.key, or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the instance metadata service answered: {cause})"
        );
    }
    if cause.contains("403 Forbidden") {
        // A HEAD answer has no body to name the cause.
        return "access denied (HTTP 403): the credentials are wrong or not allowed here; \
                check spark.hadoop.fs.s3a.access.key and spark.hadoop.fs.s3a.secret.key, or AWS_ACCESS_KEY_ID \
                and AWS_SECRET_ACCESS_KEY"
            .to_string();
    }
    cause
}

/// Bytes of an object from a start offset, fetched [`READ_CHUNK_BYTES`] at a time
/// by ranged GETs.
pub struct RangeReader {
    bucket: Bucket,
    path: S3Path,
    pos: u64,
    size: u64,
    chunk: Bytes,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() {
            if self.pos >= self.size {
                return Ok(0);
            }
            let end = (self.pos + READ_CHUNK_BYTES).min(self.size);
            self.chunk = self.bucket.read_range(&self.path, self.pos..end).map_err(std::io::Error::other)?;
            if self.chunk.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the object ended early"));
            }
            self.pos += self.chunk.len() as u64;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_into_bucket_and_key() {
        let p = S3Path::parse("s3a://logs/2026/11/").unwrap().unwrap();
        assert_eq!((p.scheme.as_str(), p.bucket.as_str(), p.key.as_str()), ("s3a", "logs", "2026/11"));
        assert_eq!(p.url(), "s3a://logs/2026/11");
        let p = S3Path::parse("S3://b").unwrap().unwrap();
        assert_eq!((p.scheme.as_str(), p.key.as_str()), ("s3", ""));
        assert!(S3Path::parse("s3a:///key").unwrap().is_err());
        assert!(S3Path::parse("/local/path").is_none());
        assert!(S3Path::parse("hdfs://nn/x").is_none());
    }

    #[test]
    fn server_errors_are_reduced_to_their_code_and_message() {
        let body = "Generic S3 error: Error performing GET http://h/b in 6ms - Server returned non-2xx status code: \
                    404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified \
                    bucket does not exist</Message><RequestId>x</RequestId></Error>";
        assert_eq!(concise(body.into()), "NoSuchBucket: The specified bucket does not exist (HTTP 404 Not Found)");
        assert!(concise("PUT http://169.254.169.254/latest/api/token: 403".into()).starts_with("no credentials"));
        assert_eq!(concise("connection refused".into()), "connection refused");
        assert!(
            concise("HEAD http://h/b/k - Server returned non-2xx status code: 403 Forbidden: ".into())
                .starts_with("access denied (HTTP 403)")
        );
    }

    #[test]
    fn settings_come_from_spark_hadoop_keys() {
        let conf = Conf::new()
            .set("spark.hadoop.fs.s3a.endpoint", "http://127.0.0.1:9000")
            .set("spark.hadoop.fs.s3a.path.style.access", "true")
            .set("spark.hadoop.fs.s3a.attempts.maximum", "1");
        let s = S3Settings::from_conf(&conf).unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let bare = |ssl: &str| {
            let conf = Conf::new()
                .set("spark.hadoop.fs.s3a.endpoint", "minio:9000")
                .set("spark.hadoop.fs.s3a.connection.ssl.enabled", ssl);
            S3Settings::from_conf(&conf).unwrap().endpoint.unwrap()
        };
        assert_eq!(bare("true"), "https://minio:9000");
        assert_eq!(bare("false"), "http://minio:9000");
        let err = S3Settings::from_conf(&Conf::new().set("spark.hadoop.fs.s3a.endpoint", "http://")).unwrap_err();
        assert!(err.to_string().contains("is not a URL"), "{err}");
        assert!(s.path_style);
        assert_eq!(s.max_retries, 1);
        let bad = Conf::new().set("spark.hadoop.fs.s3a.attempts.maximum", "many");
        assert!(S3Settings::from_conf(&bad).unwrap_err().to_string().contains("attempts.maximum"));
    }
}
