//! The connection to a directory: TLS (`ldaps://`, or StartTLS) checked against the
//! system's CAs and `tls.ca_file`, a simple bind or SASL EXTERNAL with a client
//! certificate, and every operation paced, timed out, retried on a lost connection or a
//! busy server (on a new connection), gated, and counted in the same [`Stats`] as the HTTP
//! kinds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult};
use rand::SeedableRng;
use tokio::sync::{Mutex, Semaphore};

use super::dn;
use crate::config::{GroupClass, LdapSettings, TargetAuth, TargetConfig};
use crate::http::client::{MaySend, Stats, TargetError};
use crate::secret::Secret;

/// A directory, as one target of `kind: ldap` reaches it.
pub struct Client {
    pub(super) target: String,
    url: String,
    pub(super) settings: LdapSettings,
    pub(super) class: GroupClass,
    /// `user_base`, normalized ([`dn::normalize`]).
    pub(super) user_base: String,
    pub(super) page_size: i32,
    bind: Bind,
    tls: Arc<rustls::ClientConfig>,
    /// The connection, bound; made again after one is lost.
    conn: Mutex<Option<Ldap>>,
    gate: Semaphore,
    next_slot: Mutex<tokio::time::Instant>,
    interval: Duration,
    timeout: Duration,
    /// A listing of every user (one search, its pages on one connection) may take this
    /// long: `list_deadline_seconds`.
    pub(super) list_timeout: Duration,
    retries: u32,
    backoff_ms: u64,
    deadline: Duration,
    rng: std::sync::Mutex<rand_chacha::ChaCha8Rng>,
    stats: Arc<Stats>,
    may_send: Option<MaySend>,
    /// Group ids (`entryUUID`, `objectGUID`) → their DNs, as last read or made.
    pub(super) dns: std::sync::Mutex<HashMap<String, String>>,
    /// Set once every group under the group base has been listed into `dns`: a run that
    /// changes groups it has not read learns all their DNs in one search, not one each.
    pub(super) listed: tokio::sync::OnceCell<()>,
}

enum Bind {
    Anonymous,
    Simple {
        dn: String,
        password: Secret,
    },
    /// SASL EXTERNAL: the TLS client certificate is the account.
    External,
}

impl Client {
    pub fn new(target: &str, config: &TargetConfig) -> Result<Client, TargetError> {
        let setup = |message: String| TargetError::Setup {
            target: target.to_string(),
            message,
        };
        let url = config.url.clone().ok_or_else(|| {
            setup(format!(
                "no `url` is configured\nhelp: set targets.{target}.url to the directory's `ldaps://host:636`"
            ))
        })?;
        let settings = config.ldap.clone().ok_or_else(|| {
            setup("an LDAP target needs `ldap: { group_base, user_base }`".into())
        })?;
        let (bind, client_cert) = match &config.auth {
            None => (Bind::Anonymous, None),
            Some(TargetAuth::Simple {
                bind_dn,
                password_env,
                password_file,
            }) => {
                let password = match (password_env, password_file) {
                    (Some(var), _) => Secret::from_env(var).ok_or_else(|| setup(format!(
                        "environment variable `{var}` is not set\nhelp: the config names the variable; set it in rosterd's environment"
                    )))?,
                    (None, Some(file)) => Secret::new(
                        std::fs::read_to_string(file)
                            .map_err(|e| setup(format!("cannot read auth.simple.password_file `{}`: {e}", file.display())))?
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                    ),
                    (None, None) => return Err(setup("auth.simple: no password_env or password_file".into())),
                };
                (
                    Bind::Simple {
                        dn: bind_dn.clone(),
                        password,
                    },
                    None,
                )
            }
            Some(TargetAuth::ClientCertificate {
                cert_file,
                key_file,
            }) => (Bind::External, Some((cert_file.clone(), key_file.clone()))),
            Some(_) => {
                return Err(setup(
                    "auth: an LDAP target binds with `simple` or `client_certificate`".into(),
                ))
            }
        };
        let ca_file = config.tls.as_ref().map(|t| t.ca_file.as_path());
        let tls = tls_config(ca_file, client_cert.as_ref()).map_err(setup)?;
        Ok(Client {
            target: target.to_string(),
            url,
            class: settings.group_class(),
            user_base: dn::normalize(&settings.user_base),
            settings,
            page_size: i32::try_from(config.page_size).unwrap_or(1_000),
            bind,
            tls: Arc::new(tls),
            conn: Mutex::new(None),
            gate: Semaphore::new(config.concurrency),
            next_slot: Mutex::new(tokio::time::Instant::now()),
            interval: Duration::from_secs_f64(1.0 / config.requests_per_second),
            timeout: Duration::from_secs(config.timeout_seconds),
            list_timeout: Duration::from_secs(config.list_deadline_seconds),
            retries: config.retries,
            backoff_ms: config.retry_backoff_ms,
            deadline: Duration::from_secs(config.request_deadline_seconds),
            rng: std::sync::Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(
                std::process::id(),
            ))),
            stats: Arc::new(Stats::default()),
            may_send: None,
            dns: Default::default(),
            listed: tokio::sync::OnceCell::new(),
        })
    }

    /// See [`crate::http::client::Requester::gated`].
    pub fn gated(mut self, may_send: MaySend) -> Client {
        self.may_send = Some(may_send);
        self
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// An LDAP result other than success, as the push sees it.
    pub(super) fn result_error(
        &self,
        operation: &str,
        dn: &str,
        result: &LdapResult,
    ) -> TargetError {
        let mut message = result.text.trim().to_string();
        if result.rc == 10 {
            message = format!(
                "the directory refers this to {}; rosterd does not follow referrals\nhelp: point the target's `url` at a server that holds `{dn}`",
                result.refs.join(", ")
            );
        }
        TargetError::Ldap {
            target: self.target.clone(),
            operation: operation.to_string(),
            dn: dn.to_string(),
            rc: result.rc,
            name: dn::result_name(result.rc).to_string(),
            message,
            class: dn::class_of(result.rc),
        }
    }

    /// Runs one operation (`op`, given a bound connection) until it succeeds, the directory
    /// answers it with an error, or its retries run out: a lost connection, a timeout or a
    /// busy directory is tried again on a new connection, after a backoff. Every attempt is
    /// counted as a read or (`write`) a write.
    pub(super) async fn call<T, F, Fut>(
        &self,
        operation: &str,
        target_dn: &str,
        write: bool,
        op: F,
    ) -> Result<T, TargetError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<(T, LdapResult), LdapError>>,
    {
        self.call_within(self.timeout, operation, target_dn, write, op)
            .await
    }

    /// [`Client::call`], each attempt given `timeout`.
    pub(super) async fn call_within<T, F, Fut>(
        &self,
        timeout: Duration,
        operation: &str,
        target_dn: &str,
        write: bool,
        op: F,
    ) -> Result<T, TargetError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<(T, LdapResult), LdapError>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            if let Some(reason) = self.may_send.as_ref().and_then(|may| may()) {
                return Err(TargetError::Stopped {
                    target: self.target.clone(),
                    message: reason,
                });
            }
            attempt += 1;
            let counter = if write {
                &self.stats.writes
            } else {
                &self.stats.reads
            };
            let error = {
                let _permit = self.gate.acquire().await;
                self.pace().await;
                counter.fetch_add(1, Ordering::Relaxed);
                crate::http::client::note_sent(1);
                if attempt > 1 {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
                match self.connection().await {
                    Err(e) => e,
                    Ok(ldap) => match tokio::time::timeout(timeout, op(ldap)).await {
                        Ok(Ok((value, result))) if result.rc == 0 => {
                            self.stats.answered.fetch_add(1, Ordering::Relaxed);
                            return Ok(value);
                        }
                        Ok(Ok((_, result)) | Err(LdapError::LdapResult { result })) => {
                            let error = self.result_error(operation, target_dn, &result);
                            if !dn::is_transient(result.rc) {
                                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                                return Err(error);
                            }
                            error
                        }
                        Ok(Err(e)) => {
                            self.lost(operation, target_dn, e.to_string(), attempt)
                                .await
                        }
                        Err(_) => {
                            let message = format!("no answer within {} s", timeout.as_secs());
                            self.lost(operation, target_dn, message, attempt).await
                        }
                    },
                }
            };
            if attempt > self.retries || started.elapsed() > self.deadline || error.is_auth() {
                if !error.is_auth() {
                    self.stats.gave_up.fetch_add(1, Ordering::Relaxed);
                    crate::locks::lock(&self.stats.first_give_up)
                        .get_or_insert_with(|| error.to_string());
                }
                return Err(error);
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// A connection lost or timed out: dropped, so that the next attempt makes a new one.
    async fn lost(&self, operation: &str, dn: &str, message: String, attempt: u32) -> TargetError {
        *self.conn.lock().await = None;
        TargetError::Transport {
            target: self.target.clone(),
            method: operation.to_string(),
            path: dn.to_string(),
            message,
            attempts: attempt,
            maybe_sent: true,
        }
    }

    /// The bound connection, made (and bound) when there is none or it was lost.
    async fn connection(&self) -> Result<Ldap, TargetError> {
        let mut conn = self.conn.lock().await;
        if let Some(ldap) = conn.as_mut() {
            if !ldap.is_closed() {
                return Ok(ldap.clone());
            }
        }
        let transport = |message: String| TargetError::Transport {
            target: self.target.clone(),
            method: "connect".into(),
            path: crate::secret::shown_url(&self.url),
            message,
            attempts: 1,
            maybe_sent: false,
        };
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.settings.starttls);
        let (driver, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| transport(e.to_string()))?;
        ldap3::drive!(driver);
        ldap.with_timeout(self.timeout);
        let bound = match &self.bind {
            Bind::Anonymous => None,
            Bind::Simple { dn, password } => {
                Some((dn.as_str(), ldap.simple_bind(dn, password.expose()).await))
            }
            Bind::External => Some(("(client certificate)", ldap.sasl_external_bind().await)),
        };
        match bound {
            None => {}
            Some((_, Ok(result))) if result.rc == 0 => {}
            Some((who, Ok(result))) => {
                let mut error = self.result_error("bind", who, &result);
                if let TargetError::Ldap {
                    message, rc: 49, ..
                } = &mut error
                {
                    // The server's text can echo what was sent; say only what to check.
                    *message = "the directory refused the bind DN or its password\nhelp: check auth.simple.bind_dn and the password it names".into();
                }
                return Err(error);
            }
            Some((_, Err(e))) => return Err(transport(e.to_string())),
        }
        *conn = Some(ldap.clone());
        Ok(ldap)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        crate::http::client::backoff(self.backoff_ms, attempt, &self.rng)
    }

    async fn pace(&self) {
        crate::http::client::pace(&self.next_slot, self.interval).await;
    }
}

/// rustls with the system's CAs and those of `ca_file`, and the client certificate for a
/// SASL EXTERNAL bind. A failure is its message.
fn tls_config(
    ca_file: Option<&std::path::Path>,
    client_cert: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is no reason to refuse the others.
        let _ = roots.add(cert);
    }
    if let Some(file) = ca_file {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("tls.ca_file `{}`: {e}", file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "tls.ca_file `{}` holds no certificate",
                file.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("tls.ca_file `{}`: {e}", file.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_file, key_file)) => {
            let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| {
                    format!(
                        "auth.client_certificate.cert_file `{}`: {e}",
                        cert_file.display()
                    )
                })?;
            // The key's own parse error could quote it: say only which file.
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|_| {
                format!(
                    "auth.client_certificate.key_file `{}` is not a PEM private key",
                    key_file.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("auth.client_certificate: {e}"))
        }
    }
}
