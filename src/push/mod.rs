//! Push: make each target's groups hold exactly the members the rules say, with the fewest
//! requests, surviving errors, rate limits and crashes.
//!
//! Per target: replay the outbox (changes written before a crash was confirmed), resolve
//! workers to target users (cached), then per (target, group) pair find or create the target
//! group, optionally read it back (reconcile), compute the difference to what the target
//! holds, check the failsafe, write the PATCH batches to the outbox and send them. The store
//! learns a change only when the target confirms it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::config::{Config, TargetConfig};
use crate::rules::RuleSet;
use crate::scim::{Client, ScimError};
use crate::store::{Store, StoreError};

mod pair;
mod resolve;
mod send;

pub use pair::failsafe_reason;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored snapshot {id} cannot be read: {message}")]
    Corrupt { id: i64, message: String },
}

/// What to push and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the write requests instead of sending them; nothing is stored.
    pub dry_run: bool,
    /// Read every pushed group back first and repair drift.
    pub reconcile: bool,
    pub group: Option<String>,
    pub target: Option<String>,
}

/// The desired state: group → member worker keys, and each worker's attributes (as the
/// store keeps them) for matching workers to target users.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub members: BTreeMap<String, BTreeSet<String>>,
    pub workers: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl Desired {
    /// The stored memberships and the current snapshot's workers.
    pub async fn from_store(store: &Store) -> Result<Desired, PushError> {
        let members = store.member_keys().await?;
        let mut workers = BTreeMap::new();
        if let Some(current) = store.current_snapshot().await? {
            for (key, json) in store.snapshot_workers(current.id).await? {
                let attributes = serde_json::from_str(&json).map_err(|e| PushError::Corrupt {
                    id: current.id,
                    message: format!("worker `{key}`: {e}"),
                })?;
                workers.insert(key, attributes);
            }
        }
        Ok(Desired { members, workers })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub targets: Vec<TargetReport>,
}

impl Report {
    pub fn held(&self) -> usize {
        self.pairs().filter(|p| p.held.is_some()).count()
    }

    pub fn failed(&self) -> usize {
        self.targets.iter().filter(|t| t.error.is_some()).count()
            + self.pairs().filter(|p| p.error.is_some()).count()
    }

    fn pairs(&self) -> impl Iterator<Item = &PairReport> {
        self.targets.iter().flat_map(|t| t.groups.iter())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetReport {
    pub target: String,
    /// Set when nothing (more) could be sent to this target.
    pub error: Option<String>,
    pub replayed: usize,
    pub groups: Vec<PairReport>,
    pub reads: u64,
    pub writes: u64,
    pub retries: u64,
    /// Requests the target answered (any status).
    pub answered: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PairReport {
    pub group: String,
    pub display_name: String,
    pub scim_id: Option<String>,
    /// created | linked | adopted | unlinked | deleted | inactive
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub added: usize,
    pub removed: usize,
    pub renamed: bool,
    pub members: usize,
    pub unprovisioned: usize,
    pub drift: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--dry-run`: the write requests, as they would be sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// 0 in a dry run, which stores nothing.
    pub hold_id: i64,
    pub reason: String,
}

/// Everything one target's push needs.
pub(crate) struct TargetRun<'a> {
    pub name: &'a str,
    pub config: &'a TargetConfig,
    pub client: Client,
    pub store: &'a Store,
    pub options: &'a Options,
    /// The worker attribute users are matched by.
    pub match_attribute: String,
    pub now: String,
    pub now_time: chrono::DateTime<chrono::Utc>,
}

/// Pushes every target (or the one in `options`).
pub async fn run(
    config: &Config,
    rules: &RuleSet,
    desired: &Desired,
    store: &Store,
    options: &Options,
) -> Result<Report, PushError> {
    // A one-group push concerns only the targets that group is pushed to.
    let group_targets: Option<BTreeSet<&str>> = options.group.as_ref().map(|g| {
        rules
            .lookup(g)
            .map(|id| {
                rules
                    .group(id)
                    .push
                    .iter()
                    .map(|p| p.target.as_str())
                    .collect()
            })
            .unwrap_or_default()
    });
    let pushes = config
        .targets
        .iter()
        .filter(|(name, _)| options.target.as_ref().is_none_or(|t| t == *name))
        .filter(|(name, _)| {
            group_targets
                .as_ref()
                .is_none_or(|t| t.contains(name.as_str()))
        })
        .map(|(name, target)| push_target(name, target, config, rules, desired, store, options));
    // Side by side: one slow or unreachable target does not hold back the others (each
    // within its own `concurrency`).
    let reports = futures_util::future::join_all(pushes).await;
    let mut report = Report::default();
    for target in reports {
        report.targets.push(target?);
    }
    Ok(report)
}

async fn push_target(
    name: &str,
    target: &TargetConfig,
    config: &Config,
    rules: &RuleSet,
    desired: &Desired,
    store: &Store,
    options: &Options,
) -> Result<TargetReport, PushError> {
    let mut report = TargetReport {
        target: name.to_string(),
        ..TargetReport::default()
    };
    let now_time = crate::clock::now_utc();
    let client = match Client::new(name, target) {
        Ok(client) => client,
        Err(e) => {
            report.error = Some(e.to_string());
            if target.url.is_some() && !options.dry_run {
                store
                    .set_target_health(name, false, Some(&e.to_string()), &stamp(now_time))
                    .await?;
            }
            return Ok(report);
        }
    };
    let run = TargetRun {
        name,
        config: target,
        client,
        store,
        options,
        match_attribute: target
            .user_match
            .worker_attribute
            .clone()
            .unwrap_or_else(|| config.directory.email.clone()),
        now: stamp(now_time),
        now_time,
    };
    let deadline = std::time::Duration::from_secs(target.push_deadline_seconds);
    let outcome = tokio::time::timeout(deadline, run.push(rules, desired, &mut report)).await;
    report.reads = run.client.stats.reads();
    report.writes = run.client.stats.writes();
    report.retries = run.client.stats.retries();
    report.answered = run.client.stats.answered();
    match outcome {
        // Health is what requests to this target showed: a push that sent none (nothing to
        // do here) says nothing about it.
        Ok(Ok(())) => {
            let unanswered = report.groups.iter().find_map(|g| g.error.clone());
            if !options.dry_run {
                if report.answered > 0 {
                    store.set_target_health(name, true, None, &run.now).await?;
                } else if let Some(message) = unanswered {
                    // Every request failed without an answer: it cannot be reached.
                    store
                        .set_target_health(name, false, Some(&message), &run.now)
                        .await?;
                }
            }
        }
        Ok(Err(Stop::Store(e))) => return Err(e.into()),
        // Refused credentials, or no answer at all: the target is unhealthy until a request
        // succeeds again.
        Ok(Err(Stop::Target(e))) => {
            let message = e.to_string();
            if !options.dry_run {
                store
                    .set_target_health(name, false, Some(&message), &run.now)
                    .await?;
            }
            report.error = Some(message);
        }
        Err(_) => {
            report.error = Some(format!(
                "target `{name}`: the push did not finish within push_deadline_seconds ({} s); what is unsent stays in the outbox for the next run",
                target.push_deadline_seconds
            ));
        }
    }
    Ok(report)
}

/// Why a target's push stopped early.
pub(crate) enum Stop {
    Store(StoreError),
    /// The target refused our credentials or cannot be reached at all.
    Target(ScimError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl TargetRun<'_> {
    async fn push(
        &self,
        rules: &RuleSet,
        desired: &Desired,
        report: &mut TargetReport,
    ) -> Result<(), Stop> {
        if !self.options.dry_run {
            report.replayed = self.replay().await?;
        }
        let known = self.store.target_groups(self.name).await?;
        let mut pairs = Vec::new();
        let mut pushed_here = BTreeSet::new();
        for group in rules.groups() {
            if self
                .options
                .group
                .as_ref()
                .is_some_and(|g| *g != group.name)
            {
                continue;
            }
            for push in group.push.iter().filter(|p| p.target == self.name) {
                pushed_here.insert(group.name.clone());
                if push.active {
                    pairs.push((group, push));
                } else {
                    report.groups.push(PairReport {
                        group: group.name.clone(),
                        display_name: push.display_name.clone(),
                        scim_id: known.get(&group.name).map(|k| k.scim_id.clone()),
                        action: Some("inactive".into()),
                        ..PairReport::default()
                    });
                }
            }
        }
        // Each worker once, however many groups hold them (a worker is in hundreds).
        let mut seen: HashSet<&str> = HashSet::new();
        let mut wanted: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (group, _) in &pairs {
            for key in desired.members.get(&group.name).into_iter().flatten() {
                if seen.insert(key) {
                    wanted.insert(key.clone(), self.match_value(desired, key));
                }
            }
        }
        let users = self.resolve(&wanted).await?;
        let members = self.store.target_members(self.name).await?;
        let unprovisioned = self.store.unprovisioned_keys(self.name).await?;
        let mut results = Vec::new();
        {
            use futures_util::StreamExt;
            let concurrency = if self.options.dry_run {
                1
            } else {
                self.config.concurrency
            };
            let mut stream = futures_util::stream::iter(pairs.iter().map(|(group, push)| {
                self.push_pair(
                    group,
                    push,
                    desired,
                    &users,
                    pair::Stored {
                        group: known.get(&group.name),
                        members: members.get(&group.name),
                        unprovisioned: unprovisioned.get(&group.name),
                    },
                )
            }))
            .buffered(concurrency);
            while let Some(result) = stream.next().await {
                results.push(result);
            }
        }
        for result in results {
            report.groups.push(result?);
        }
        for (group, state) in &known {
            let filtered = self.options.group.as_ref().is_some_and(|g| g != group);
            if filtered || pushed_here.contains(group) {
                continue;
            }
            let overrides = rules.lookup(group).map(|g| rules.group(g).failsafe.clone());
            report.groups.push(
                self.unpush(state, members.get(group), overrides.unwrap_or_default())
                    .await?,
            );
        }
        Ok(())
    }

    fn match_value(&self, desired: &Desired, key: &str) -> Option<String> {
        let value = desired.workers.get(key)?.get(&self.match_attribute)?;
        match value {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}
