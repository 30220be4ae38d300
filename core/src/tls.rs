//! TLS for the RPC between driver, executors and block servers, with rustls
//! (Spark 4's `spark.ssl.rpc.*` settings, PEM files).
//!
//! Every process of an application holds a certificate chain and its private
//! key, and a trust store of the CA certificates that sign its peers'. Servers
//! present their certificate and require one of every caller (mutual TLS), so
//! TLS both hides the traffic and keeps out processes without a certificate of
//! the application's CA; `spark.authenticate` can be on as well.
//!
//! Settings (a driver's; an executor reads the `EMBER_SSL_RPC_*` variables):
//!
//! | setting | variable | meaning |
//! |---|---|---|
//! | `spark.ssl.rpc.enabled` (default `spark.ssl.enabled`, `false`) | `EMBER_SSL_RPC_CERT_CHAIN` set | TLS on |
//! | `spark.ssl.rpc.certChain` | `EMBER_SSL_RPC_CERT_CHAIN` | PEM certificate chain of this process |
//! | `spark.ssl.rpc.privateKey` | `EMBER_SSL_RPC_PRIVATE_KEY` | PEM private key of that certificate |
//! | `spark.ssl.rpc.trustStore` | `EMBER_SSL_RPC_TRUST_STORE` | PEM CA certificates that sign peers' certificates (Spark also takes JKS; Ember takes PEM) |
//! | `ember.ssl.rpc.serverName` | `EMBER_SSL_RPC_SERVER_NAME` | the name servers' certificates are checked against; default: the host the process connects to (then certificates need that DNS name or IP address) |

use crate::config::Conf;
use crate::error::{EmberError, Result};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The variables a process this one starts gets its TLS settings from.
pub const CERT_CHAIN_ENV: &str = "EMBER_SSL_RPC_CERT_CHAIN";
/// See [`CERT_CHAIN_ENV`].
pub const PRIVATE_KEY_ENV: &str = "EMBER_SSL_RPC_PRIVATE_KEY";
/// See [`CERT_CHAIN_ENV`].
pub const TRUST_STORE_ENV: &str = "EMBER_SSL_RPC_TRUST_STORE";
/// See [`CERT_CHAIN_ENV`].
pub const SERVER_NAME_ENV: &str = "EMBER_SSL_RPC_SERVER_NAME";

/// Where a process's TLS material is, as given (paths are read by [`RpcTls::load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain of this process.
    pub cert_chain: PathBuf,
    /// PEM private key of that certificate.
    pub private_key: PathBuf,
    /// PEM certificates of the CAs that sign peers' certificates.
    pub trust_store: PathBuf,
    /// The name servers' certificates are checked against (default: the host connected to).
    pub server_name: Option<String>,
}

impl TlsFiles {
    /// From a driver's settings; `Ok(None)` when TLS is off.
    /// Errors: TLS on with a file setting missing.
    pub fn from_conf(conf: &Conf) -> Result<Option<Self>> {
        let global = conf.get_bool("spark.ssl.enabled", false)?;
        if !conf.get_bool("spark.ssl.rpc.enabled", global)? {
            return Ok(None);
        }
        let path = |key: &str| {
            conf.get(&format!("spark.ssl.rpc.{key}"))
                .or_else(|| conf.get(&format!("spark.ssl.{key}")))
                .map(PathBuf::from)
                .ok_or_else(|| EmberError::Config(format!("spark.ssl.rpc.enabled needs spark.ssl.rpc.{key}")))
        };
        Ok(Some(Self {
            cert_chain: path("certChain")?,
            private_key: path("privateKey")?,
            trust_store: path("trustStore")?,
            server_name: conf.get("ember.ssl.rpc.serverName").map(str::to_string),
        }))
    }

    /// From an executor's environment; `Ok(None)` when `EMBER_SSL_RPC_CERT_CHAIN` is unset.
    /// Errors: the chain set without the key or trust store.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let Some(cert_chain) = var(CERT_CHAIN_ENV) else { return Ok(None) };
        let need =
            |k: &str| var(k).ok_or_else(|| EmberError::Config(format!("{CERT_CHAIN_ENV} is set; so must {k} be")));
        Ok(Some(Self {
            cert_chain: cert_chain.into(),
            private_key: need(PRIVATE_KEY_ENV)?.into(),
            trust_store: need(TRUST_STORE_ENV)?.into(),
            server_name: var(SERVER_NAME_ENV),
        }))
    }

    /// The variables that give a process this one starts the same settings.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (CERT_CHAIN_ENV.to_string(), self.cert_chain.display().to_string()),
            (PRIVATE_KEY_ENV.to_string(), self.private_key.display().to_string()),
            (TRUST_STORE_ENV.to_string(), self.trust_store.display().to_string()),
        ];
        if let Some(name) = &self.server_name {
            env.push((SERVER_NAME_ENV.to_string(), name.clone()));
        }
        env
    }
}

/// Loaded TLS material of a process: what its servers and clients use.
#[derive(Clone)]
pub struct RpcTls {
    files: TlsFiles,
    identity: Identity,
    trust: Certificate,
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .map_err(|e| EmberError::Config(format!("cannot read the TLS {what} {}: {e}", path.display())))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(EmberError::Config(format!("the TLS {what} {} holds no PEM block", path.display())));
    }
    Ok(bytes)
}

impl std::fmt::Debug for RpcTls {
    /// The file names only: the identity holds the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl RpcTls {
    /// Reads the files. Errors: a file missing, unreadable or not PEM.
    pub fn load(files: TlsFiles) -> Result<Self> {
        let chain = read_pem(&files.cert_chain, "certificate chain")?;
        let key = read_pem(&files.private_key, "private key")?;
        let trust = read_pem(&files.trust_store, "trust store")?;
        Ok(Self { identity: Identity::from_pem(chain, key), trust: Certificate::from_pem(trust), files })
    }

    /// The files this was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// A server's configuration: present our certificate, require the caller's.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.trust.clone())
    }

    /// A client's configuration for connecting to `host`.
    pub fn client_config(&self, host: &str) -> ClientTlsConfig {
        let name = self.files.server_name.clone().unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
        ClientTlsConfig::new().ca_certificate(self.trust.clone()).identity(self.identity.clone()).domain_name(name)
    }
}

/// An endpoint for `target` (`host:port`, or a URL whose `http`/`https`
/// scheme is replaced), over TLS when `tls` is given.
/// Errors: a target that is no valid URI, or TLS settings rustls refuses.
pub fn endpoint(target: &str, tls: Option<&RpcTls>) -> Result<Endpoint> {
    let host_port = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")).unwrap_or(target);
    let host_port = host_port.trim_end_matches('/');
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{host_port}"))
        .map_err(|e| EmberError::Config(format!("bad address {target:?}: {e}")))?;
    match tls {
        None => Ok(endpoint),
        Some(tls) => {
            let host = host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port);
            endpoint
                .tls_config(tls.client_config(host))
                .map_err(|e| EmberError::Config(format!("TLS settings for {target}: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_every_file_or_say_which_is_missing() {
        assert_eq!(TlsFiles::from_conf(&Conf::new()).unwrap(), None);
        let conf = Conf::new().set("spark.ssl.enabled", "true").set("spark.ssl.rpc.certChain", "/c");
        let err = TlsFiles::from_conf(&conf).unwrap_err();
        assert!(err.to_string().contains("spark.ssl.rpc.privateKey"), "{err}");
        let conf = conf.set("spark.ssl.privateKey", "/k").set("spark.ssl.rpc.trustStore", "/t");
        let files = TlsFiles::from_conf(&conf).unwrap().unwrap();
        assert_eq!(files.private_key, PathBuf::from("/k"), "spark.ssl.* is inherited");
        let conf = conf.set("spark.ssl.rpc.enabled", "false");
        assert_eq!(TlsFiles::from_conf(&conf).unwrap(), None, "spark.ssl.rpc.enabled wins");
    }

    #[test]
    fn missing_and_non_pem_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"not a certificate").unwrap();
        let files = |chain: &Path| TlsFiles {
            cert_chain: chain.to_path_buf(),
            private_key: junk.clone(),
            trust_store: junk.clone(),
            server_name: None,
        };
        let missing = RpcTls::load(files(&dir.path().join("absent"))).unwrap_err().to_string();
        assert!(missing.contains("certificate chain") && missing.contains("absent"), "{missing}");
        let junk_err = RpcTls::load(files(&junk)).unwrap_err().to_string();
        assert!(junk_err.contains("no PEM block"), "{junk_err}");
    }

    #[test]
    fn endpoints_take_addresses_or_urls_and_speak_https_only_with_tls() {
        assert_eq!(endpoint("127.0.0.1:7078", None).unwrap().uri().to_string(), "http://127.0.0.1:7078/");
        assert_eq!(endpoint("http://driver-svc:7078", None).unwrap().uri().to_string(), "http://driver-svc:7078/");
    }
}
