//! Authentication of the RPC between driver, executors and block servers:
//! Spark's `spark.authenticate` (the idea of Spark's `SecurityManager`; the
//! wire format is Ember's own).
//!
//! Every process of an application that authenticates holds the application's
//! secret. A caller proves it knows the secret on every call, without sending
//! it: the `x-ember-auth` metadata carries
//! `v1:<unix ms>:<16 random bytes, hex>:<HMAC-SHA256 of both, hex>`, and a server
//! accepts a call only if the MAC checks under its own copy of the secret and
//! the time is within [`MAX_CLOCK_SKEW`] of its clock. Refused calls get gRPC
//! `UNAUTHENTICATED` and a warning with the caller's address in the server's log.
//!
//! What this does not do alone: hide the traffic. Whoever can read the network
//! can read the data and could replay a captured token for [`MAX_CLOCK_SKEW`];
//! against that, turn on TLS as well (docs/SECURITY.md).
//!
//! Where the secret comes from (Spark's settings):
//! - `spark.authenticate.secret`, or a file named by `spark.authenticate.secret.file`
//!   (what Kubernetes mounts from a Secret);
//! - for `local-cluster`, when none is set, the driver generates one per
//!   application ([`generate_secret`]) and hands it to the executors it starts
//!   in their environment;
//! - an executor reads `EMBER_AUTH_SECRET` or `EMBER_AUTH_SECRET_FILE`, and so
//!   does a driver whose settings name no secret.

use crate::config::Conf;
use crate::error::{EmberError, Result};
use crate::wire::to_status;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;

/// The gRPC metadata key carrying a call's credentials.
pub const AUTH_METADATA: &str = "x-ember-auth";

/// The setting holding the secret (Spark's); never sent to executors.
pub const SECRET_CONF: &str = "spark.authenticate.secret";

/// The environment variable an executor reads its secret from.
pub const SECRET_ENV: &str = "EMBER_AUTH_SECRET";

/// The environment variable naming a file an executor reads its secret from.
pub const SECRET_FILE_ENV: &str = "EMBER_AUTH_SECRET_FILE";

/// How far a token's time may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What the MAC covers besides the time and nonce: the protocol's name, so a
/// token is never valid for anything else keyed by the same secret.
const DOMAIN: &[u8] = b"ember-rpc-v1";

/// Fewest bytes a secret must have.
pub const MIN_SECRET_BYTES: usize = 16;

/// An application's shared secret, ready to sign and check calls. Cheap to clone.
#[derive(Clone)]
pub struct AppSecret {
    key: Arc<hmac::Key>,
    /// The secret itself, to hand to executors this process starts.
    secret: Arc<str>,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret(..)")
    }
}

impl AppSecret {
    /// A secret from its text. Errors: shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &str) -> Result<Self> {
        let secret = secret.trim_end_matches(['\n', '\r']);
        if secret.len() < MIN_SECRET_BYTES {
            return Err(EmberError::Config(format!(
                "the authentication secret has {} bytes; it needs at least {MIN_SECRET_BYTES}",
                secret.len()
            )));
        }
        Ok(Self { key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())), secret: secret.into() })
    }

    /// A secret read from `path` (a trailing newline is not part of it).
    /// Errors: the file cannot be read, or holds too short a secret.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            EmberError::Config(format!("cannot read the authentication secret file {}: {e}", path.display()))
        })?;
        Self::new(&text).map_err(|e| match e {
            EmberError::Config(reason) => EmberError::Config(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The secret's text, to pass to a process this one starts.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    /// A fresh token for one call, valid for [`MAX_CLOCK_SKEW`] around `now`.
    pub fn token_at(&self, now: SystemTime) -> String {
        let ms = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let mut nonce = [0u8; 16];
        // The nonce only makes tokens distinct; an all-zero one is still safe.
        let _ = SystemRandom::new().fill(&mut nonce);
        let nonce = hex(&nonce);
        let tag = hmac::sign(&self.key, &signed_bytes(&ms.to_string(), &nonce));
        format!("v1:{ms}:{nonce}:{}", hex(tag.as_ref()))
    }

    /// Checks `token` against this secret at time `now`.
    /// Errors: [`EmberError::Unauthenticated`] saying what is wrong with it.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<()> {
        let bad = |why: &str| EmberError::Unauthenticated(why.to_string());
        let mut parts = token.split(':');
        let (Some("v1"), Some(ms), Some(nonce), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed credentials"));
        };
        let tag = unhex(tag).ok_or_else(|| bad("malformed credentials"))?;
        hmac::verify(&self.key, &signed_bytes(ms, nonce), &tag)
            .map_err(|_| bad("wrong secret (spark.authenticate.secret differs)"))?;
        let at = ms.parse::<u64>().map(|ms| UNIX_EPOCH + Duration::from_millis(ms)).map_err(|_| bad("bad time"))?;
        let skew = now.duration_since(at).unwrap_or_else(|e| e.duration());
        if skew > MAX_CLOCK_SKEW {
            return Err(bad(&format!(
                "credentials {:.0} s away from this host's clock (at most {} s)",
                skew.as_secs_f64(),
                MAX_CLOCK_SKEW.as_secs()
            )));
        }
        Ok(())
    }
}

fn signed_bytes(ms: &str, nonce: &str) -> Vec<u8> {
    [DOMAIN, b":", ms.as_bytes(), b":", nonce.as_bytes()].concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A new random secret: 32 bytes from the system's secure generator, as hex.
/// Errors: the generator failed.
pub fn generate_secret() -> Result<AppSecret> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| EmberError::Internal("the system's random generator failed".into()))?;
    AppSecret::new(&hex(&bytes))
}

/// Whether `spark.authenticate` is on (default off, as in Spark).
pub fn authenticate_enabled(conf: &Conf) -> Result<bool> {
    conf.get_bool("spark.authenticate", false)
}

/// The secret a driver's settings give: `spark.authenticate.secret`, or the
/// file named by `spark.authenticate.secret.file`, or else what its
/// environment gives ([`secret_from_env`]: how the Kubernetes operator mounts
/// it). `Ok(None)` when `spark.authenticate` is off or none is set.
/// Errors: both set, an unreadable file, a too short secret.
pub fn secret_from_conf(conf: &Conf) -> Result<Option<AppSecret>> {
    if !authenticate_enabled(conf)? {
        return Ok(None);
    }
    match (conf.get(SECRET_CONF), conf.get("spark.authenticate.secret.file")) {
        (Some(_), Some(_)) => Err(EmberError::Config(
            "set one of spark.authenticate.secret and spark.authenticate.secret.file, not both".into(),
        )),
        (Some(secret), None) => AppSecret::new(secret).map(Some),
        (None, Some(path)) => AppSecret::from_file(Path::new(path)).map(Some),
        (None, None) => secret_from_env(),
    }
}

/// The secret an executor process was given: `EMBER_AUTH_SECRET`, or the file
/// named by `EMBER_AUTH_SECRET_FILE`; `Ok(None)` when neither is set.
pub fn secret_from_env() -> Result<Option<AppSecret>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var(SECRET_ENV), var(SECRET_FILE_ENV)) {
        (Some(_), Some(_)) => {
            Err(EmberError::Config(format!("set one of {SECRET_ENV} and {SECRET_FILE_ENV}, not both")))
        }
        (Some(secret), None) => AppSecret::new(&secret).map(Some),
        (None, Some(path)) => AppSecret::from_file(Path::new(&path)).map(Some),
        (None, None) => Ok(None),
    }
}

/// What secures one process's RPC: the application's secret and TLS. Every
/// server and client of the driver, the executors and the block servers is
/// made through one of these, so none can miss either.
#[derive(Clone, Debug, Default)]
pub struct RpcSecurity {
    /// `spark.authenticate`'s secret; `None`: calls go unsigned and unchecked.
    pub secret: Option<AppSecret>,
    /// `spark.ssl.rpc`; `None`: plaintext.
    pub tls: Option<crate::tls::RpcTls>,
}

impl RpcSecurity {
    /// An executor's, from `EMBER_AUTH_SECRET(_FILE)` and `EMBER_SSL_RPC_*`.
    /// Errors: a secret or TLS file that cannot be read.
    pub fn from_env() -> Result<Self> {
        let tls = crate::tls::TlsFiles::from_env()?.map(crate::tls::RpcTls::load).transpose()?;
        Ok(Self { secret: secret_from_env()?, tls })
    }

    /// The variables that give a process this one starts the same security.
    pub fn child_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(secret) = &self.secret {
            env.push((SECRET_ENV.to_string(), secret.expose().to_string()));
        }
        if let Some(tls) = &self.tls {
            env.extend(tls.files().to_env());
        }
        env
    }

    /// An endpoint for `target` (`host:port` or a URL), over TLS when on.
    /// Errors: as [`crate::tls::endpoint`].
    pub fn endpoint(&self, target: &str) -> Result<tonic::transport::Endpoint> {
        crate::tls::endpoint(target, self.tls.as_ref())
    }

    /// A builder of the server `name`, over TLS when on.
    /// Errors: TLS settings rustls refuses.
    pub fn server(&self, name: &str) -> Result<tonic::transport::Server> {
        let builder = tonic::transport::Server::builder();
        match &self.tls {
            None => Ok(builder),
            Some(tls) => builder
                .tls_config(tls.server_config())
                .map_err(|e| EmberError::Config(format!("TLS settings of the {name}: {e}"))),
        }
    }

    /// Checks every call to the server `name` (see [`ServerAuth`]).
    pub fn server_auth(&self, name: &'static str) -> ServerAuth {
        ServerAuth::new(self.secret.clone(), name)
    }

    /// A block server client on `channel`, its calls signed, messages up to
    /// [`crate::wire::MAX_MESSAGE_BYTES`].
    pub fn block_client(
        &self,
        channel: tonic::transport::Channel,
    ) -> crate::wire::v1::block_server_client::BlockServerClient<SignedChannel> {
        crate::wire::v1::block_server_client::BlockServerClient::with_interceptor(
            channel,
            ClientAuth::new(self.secret.clone()),
        )
        .max_decoding_message_size(crate::wire::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::wire::MAX_MESSAGE_BYTES)
    }

    /// A driver client on `channel`, its calls signed, messages up to
    /// [`crate::wire::MAX_MESSAGE_BYTES`].
    pub fn driver_client(
        &self,
        channel: tonic::transport::Channel,
    ) -> crate::wire::v1::driver_client::DriverClient<SignedChannel> {
        crate::wire::v1::driver_client::DriverClient::with_interceptor(channel, ClientAuth::new(self.secret.clone()))
            .max_decoding_message_size(crate::wire::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::wire::MAX_MESSAGE_BYTES)
    }
}

/// A channel whose calls are signed by [`ClientAuth`]: what every Ember client uses.
pub type SignedChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>;

/// Signs every outgoing call with a fresh token (no-op without a secret).
#[derive(Clone, Debug, Default)]
pub struct ClientAuth(Option<AppSecret>);

impl ClientAuth {
    /// Signs with `secret`; `None`: calls go unsigned.
    pub fn new(secret: Option<AppSecret>) -> Self {
        Self(secret)
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(secret) = &self.0 {
            let token = MetadataValue::try_from(secret.token_at(SystemTime::now()))
                .map_err(|e| tonic::Status::internal(format!("cannot sign a call: {e}")))?;
            request.metadata_mut().insert(AUTH_METADATA, token);
        }
        Ok(request)
    }
}

/// Refuses every incoming call that does not prove knowledge of the secret
/// (accepts all without a secret). `server` names the server in its warnings.
#[derive(Clone, Debug)]
pub struct ServerAuth {
    secret: Option<AppSecret>,
    server: &'static str,
}

impl ServerAuth {
    /// Requires `secret` of every call (`None`: accepts all); `server` names
    /// this server in the warnings about refused calls.
    pub fn new(secret: Option<AppSecret>, server: &'static str) -> Self {
        Self { secret, server }
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(secret) = &self.secret else { return Ok(request) };
        let checked = match request.metadata().get(AUTH_METADATA).map(|v| v.to_str()) {
            None => Err(EmberError::Unauthenticated(format!(
                "the {} requires spark.authenticate and the caller sent no credentials",
                self.server
            ))),
            Some(Err(_)) => Err(EmberError::Unauthenticated("malformed credentials".into())),
            Some(Ok(token)) => secret.verify_at(token, SystemTime::now()),
        };
        match checked {
            Ok(()) => Ok(request),
            Err(e) => {
                let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "an unknown address".into());
                tracing::warn!(server = self.server, %peer, error = %e, "refused an unauthenticated call");
                Err(to_status(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_checks_under_the_same_secret_only_and_within_the_clock_skew() {
        let secret = AppSecret::new(SECRET).unwrap();
        let now = SystemTime::now();
        let token = secret.token_at(now);
        assert!(!token.contains(SECRET), "the secret never travels");
        secret.verify_at(&token, now).unwrap();
        secret.verify_at(&token, now + MAX_CLOCK_SKEW - Duration::from_secs(1)).unwrap();
        let late = secret.verify_at(&token, now + MAX_CLOCK_SKEW + Duration::from_secs(2)).unwrap_err();
        assert!(late.to_string().contains("clock"), "{late}");
        let other = AppSecret::new("another secret of enough bytes").unwrap();
        let wrong = other.verify_at(&token, now).unwrap_err();
        assert!(wrong.to_string().contains("wrong secret"), "{wrong}");
        assert_ne!(secret.token_at(now), token, "every call gets its own nonce");
    }

    #[test]
    fn tampered_and_malformed_tokens_are_refused() {
        let secret = AppSecret::new(SECRET).unwrap();
        let now = SystemTime::now();
        let token = secret.token_at(now);
        // A later time under the old MAC.
        let parts: Vec<&str> = token.split(':').collect();
        let moved = format!("v1:{}:{}:{}", parts[1].parse::<u64>().unwrap() + 1, parts[2], parts[3]);
        assert!(secret.verify_at(&moved, now).is_err());
        for bad in ["", "v1", "v2:1:00:00", "v1:x:y:z", "v1:1:2:3:4", &token[..token.len() - 1], "v1:1:aa:zz"] {
            assert!(matches!(secret.verify_at(bad, now), Err(EmberError::Unauthenticated(_))), "{bad:?}");
        }
    }

    #[test]
    fn secrets_come_from_settings_or_files_and_short_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        let conf = Conf::new();
        assert!(secret_from_conf(&conf).unwrap().is_none(), "off by default");
        let conf = conf.set("spark.authenticate", "true");
        assert!(secret_from_conf(&conf).unwrap().is_none());
        let conf = conf.set("spark.authenticate.secret.file", file.to_str().unwrap());
        assert_eq!(secret_from_conf(&conf).unwrap().unwrap().expose(), SECRET);
        let conf = conf.set("spark.authenticate.secret", SECRET);
        assert!(secret_from_conf(&conf).unwrap_err().to_string().contains("not both"));
        let missing = AppSecret::from_file(&dir.path().join("absent")).unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
        assert!(AppSecret::new("short").unwrap_err().to_string().contains("at least"));
        let generated = generate_secret().unwrap();
        assert_eq!(generated.expose().len(), 64);
        assert_ne!(generated.expose(), generate_secret().unwrap().expose());
    }
}
