//! Leader election on a `coordination.k8s.io/v1` Lease, so that two operator replicas never
//! reconcile at the same time. Writes use the Lease's `resourceVersion` (optimistic
//! concurrency): of two replicas racing for an expired Lease, the API server lets one win.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use crate::metrics::Metrics;

/// Lease timing and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and how often others try to take it.
    pub retry_period: Duration,
}

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be renewed in time, or another replica took it.
    #[error("lost the leader Lease {0}")]
    Lost(String),
}

/// What to do with the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStep {
    /// No Lease exists: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// It is free or expired: take it over.
    Take,
    /// Another replica holds a valid Lease: wait.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// Decides what to do with the Lease. Pure, for tests.
pub fn lease_step(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseStep {
    let Some(lease) = lease else {
        return LeaseStep::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == identity {
        return LeaseStep::Renew;
    }
    if holder.is_empty() {
        return LeaseStep::Take;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    match renewed.and_then(|t| t.checked_add(duration).ok()) {
        Some(expiry) if expiry > now => LeaseStep::Wait { holder },
        _ => LeaseStep::Take,
    }
}

/// A Lease-based lock.
pub struct LeaseLock {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaseLock {
    /// A lock on the Lease described by `config`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaseLock { api: Api::namespaced(client, &config.namespace), config }
    }

    fn spec(&self, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Takes or renews the Lease; true when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let step = lease_step(current.as_ref(), &self.config.identity, now);
        let result = match (step, current) {
            (LeaseStep::Wait { .. }, _) => return Ok(false),
            (LeaseStep::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(now, None, 0)),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            (step, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                let transitions = old.lease_transitions.unwrap_or(0);
                lease.spec = Some(if step == LeaseStep::Renew {
                    self.spec(now, old.acquire_time, transitions)
                } else {
                    self.spec(now, None, transitions + 1)
                });
                // `replace` sends the resourceVersion we read: a concurrent writer makes
                // this fail with 409 instead of both replicas believing they lead.
                self.api.replace(&self.config.name, &PostParams::default(), &lease).await.map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Gives the Lease up, so a standby replica takes over without waiting for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        self.api.replace(&self.config.name, &PostParams::default(), &lease).await.map(|_| ())
    }

    /// Waits until this replica holds the Lease, then runs `work` while renewing it.
    /// Returns when `work` ends (then the Lease is released) or with an error when the
    /// Lease is lost, in which case the caller must stop reconciling at once.
    ///
    /// `shutdown` only ends the wait for leadership. Once leading, `work` is expected to
    /// stop on the same signal (the controllers' graceful shutdown): it is left to finish,
    /// and then the Lease is released, so a standby takes over at once instead of after
    /// the Lease expires.
    pub async fn run<F: Future<Output = ()>>(
        &self,
        work: F,
        shutdown: impl Future<Output = ()>,
        metrics: &Metrics,
        reachable: Arc<AtomicBool>,
    ) -> Result<(), LeaderError> {
        let retry = self.config.retry_period;
        let acquire = async {
            loop {
                match self.try_acquire_or_renew(Timestamp::now()).await {
                    Ok(true) => break,
                    Ok(false) => reachable.store(true, Ordering::Relaxed),
                    Err(err) => {
                        warn!(error = %err, lease = %self.config.name, "cannot read the leader Lease")
                    }
                }
                tokio::time::sleep(retry).await;
            }
        };
        tokio::select! {
            () = acquire => {}
            () = shutdown => {
                info!(lease = %self.config.name, "shutting down before becoming leader");
                return Ok(());
            }
        }
        reachable.store(true, Ordering::Relaxed);
        metrics.leader.set(1);
        info!(identity = %self.config.identity, lease = %self.config.name, "became leader");
        let renew = async {
            let mut last_renewed = tokio::time::Instant::now();
            // Stop leading before the Lease can expire and be taken by another replica.
            let renew_deadline = self.config.lease_duration.mul_f64(2.0 / 3.0);
            loop {
                tokio::time::sleep(retry).await;
                match self.try_acquire_or_renew(Timestamp::now()).await {
                    Ok(true) => last_renewed = tokio::time::Instant::now(),
                    Ok(false) => return,
                    Err(err) => {
                        warn!(error = %err, "cannot renew the leader Lease");
                        if last_renewed.elapsed() > renew_deadline {
                            return;
                        }
                    }
                }
            }
        };
        let outcome = tokio::select! {
            () = work => Ok(()),
            () = renew => Err(LeaderError::Lost(self.config.name.clone())),
        };
        metrics.leader.set(0);
        if outcome.is_ok()
            && let Err(err) = self.release().await
        {
            warn!(error = %err, "could not release the leader Lease");
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64, duration: i32, now: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(now.checked_sub(SignedDuration::from_secs(renewed_secs_ago)).unwrap())),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn lease_steps() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let cases = [
            (None, LeaseStep::Create),
            (Some(lease(Some("me"), 1, 15, now)), LeaseStep::Renew),
            (Some(lease(Some("me"), 100, 15, now)), LeaseStep::Renew),
            (Some(lease(None, 1, 15, now)), LeaseStep::Take),
            (Some(lease(Some(""), 1, 15, now)), LeaseStep::Take),
            (Some(lease(Some("other"), 5, 15, now)), LeaseStep::Wait { holder: "other".into() }),
            (Some(lease(Some("other"), 15, 15, now)), LeaseStep::Take),
            (Some(lease(Some("other"), 60, 15, now)), LeaseStep::Take),
        ];
        for (lease, want) in cases {
            assert_eq!(lease_step(lease.as_ref(), "me", now), want, "{lease:?}");
        }
    }
}
