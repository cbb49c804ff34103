//! Push: make each target's groups hold exactly the members the rules say, with the fewest
//! requests, surviving errors, rate limits and crashes.
//!
//! Per target: replay the outbox (changes written before a crash was confirmed), resolve
//! workers to target users (cached), then per (target, group) pair find or create the target
//! group, optionally read it back (reconcile), compute the difference to what the target
//! holds, check the failsafe, write the PATCH batches to the outbox and send them. The store
//! learns a change only when the target confirms it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::config::{Config, TargetConfig};
use crate::http::client::TargetError;
use crate::rules::RuleSet;
use crate::store::{PairAction, Store, StoreError, TargetGroup, WorkerIds};

mod found;
pub mod hold;
mod outcome;
mod pair;
pub mod progress;
mod resolve;
mod send;
pub mod status;
mod summary;
mod target;
mod unpush;
mod verify;

pub use progress::Progress;
pub use summary::Summary;

pub use pair::failsafe_reason;
pub use resolve::SCHEMAS_WRONG;

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
    /// Counted into as the push goes (for a terminal, the API and the metrics).
    pub progress: Option<Arc<Progress>>,
}

/// The desired state, on the worker numbering: each group's members as a set of worker
/// ids, and the values users are matched by (only the attributes the targets match on).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The store's numbering; a dry run numbers workers not stored yet here, in memory.
    pub workers: WorkerIds,
    pub members: BTreeMap<String, RoaringBitmap>,
    /// Attribute → worker id → value.
    values: HashMap<String, HashMap<u32, String>>,
}

impl Desired {
    /// The stored memberships, and the match values of the current snapshot's workers.
    pub async fn from_store(store: &Store, config: &Config) -> Result<Desired, PushError> {
        let state = store.member_state().await?;
        let mut desired = Desired {
            workers: state.workers,
            members: state
                .groups
                .into_iter()
                .map(|(name, group)| (name, group.members))
                .collect(),
            values: HashMap::new(),
        };
        if let Some(current) = store.current_snapshot().await? {
            let attributes = match_attributes(config);
            for (key, json) in store.snapshot_workers(current.id).await? {
                let Some(id) = desired.workers.id(&key) else {
                    continue;
                };
                desired
                    .set_values(id, &json, &attributes)
                    .map_err(|e| PushError::Corrupt {
                        id: current.id,
                        message: format!("worker `{key}`: {e}"),
                    })?;
            }
        }
        Ok(desired)
    }

    /// [`Desired::from_store`], from what the daemon's last run kept ([`crate::cycle::Warm`])
    /// when it is still what the store holds (no other run stored changes or a snapshot
    /// since): then nothing is read back but two numbers.
    pub async fn from_kept_or_store(
        warm: &crate::cycle::Warm,
        store: &Store,
        config: &Config,
    ) -> Result<Desired, PushError> {
        let Some((state, snapshot_id, snapshot)) = warm.kept_state() else {
            return Desired::from_store(store, config).await;
        };
        let current = store.current_snapshot().await?.map(|c| c.id);
        if current != Some(snapshot_id) || store.newest_membership_run().await? != state.last_run {
            return Desired::from_store(store, config).await;
        }
        let mut desired = Desired {
            workers: state.workers.clone(),
            members: (state.groups.iter())
                .map(|(name, group)| (name.clone(), group.members.clone()))
                .collect(),
            values: HashMap::new(),
        };
        // As the stored rows give them: text that is not empty, and numbers.
        for attribute in match_attributes(config) {
            let Some(attr) = snapshot.schema().lookup(&attribute) else {
                continue;
            };
            let values = desired.values.entry(attribute).or_default();
            for w in 0..snapshot.len() {
                let Some(id) = state.workers.id(snapshot.key(w)) else {
                    continue;
                };
                match snapshot.get(attr, w).map(crate::directory::Value::to_json) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => {
                        values.insert(id, s);
                    }
                    Some(serde_json::Value::Number(n)) => {
                        values.insert(id, n.to_string());
                    }
                    _ => {}
                }
            }
        }
        desired.values.retain(|_, v| !v.is_empty());
        Ok(desired)
    }

    /// A desired state on `workers`, the numbering to extend with [`Desired::number`].
    pub fn new(workers: WorkerIds) -> Desired {
        Desired {
            workers,
            ..Desired::default()
        }
    }

    /// The id of `key`, numbering it (in memory) when it is new.
    pub fn number(&mut self, key: &str) -> u32 {
        self.workers.number(key)
    }

    /// Keeps the match values of worker `id` from its attributes as stored (JSON).
    pub fn set_values(
        &mut self,
        id: u32,
        json: &str,
        attributes: &BTreeSet<String>,
    ) -> Result<(), serde_json::Error> {
        let found = wanted_values(json, attributes)?;
        for (attribute, value) in found {
            self.values.entry(attribute).or_default().insert(id, value);
        }
        Ok(())
    }

    pub fn match_value(&self, attribute: &str, id: u32) -> Option<&str> {
        self.values.get(attribute)?.get(&id).map(String::as_str)
    }

    /// A group's members by worker key.
    pub fn keys(&self, group: &str) -> BTreeSet<&str> {
        self.members
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.workers.key(id))
            .collect()
    }
}

/// The worker attributes the targets match users by.
pub fn match_attributes(config: &Config) -> BTreeSet<String> {
    config
        .targets
        .values()
        .map(|t| match_attribute(config, t))
        .collect()
}

/// The worker attribute `target` matches users by: its own, or the directory's email.
fn match_attribute(config: &Config, target: &TargetConfig) -> String {
    target
        .user_match
        .worker_attribute
        .clone()
        .unwrap_or_else(|| config.directory.email.clone())
}

/// The values of `attributes` in a worker's JSON object (a non-empty string, or a number as
/// text), reading past every other attribute without building it.
fn wanted_values(
    json: &str,
    attributes: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, serde_json::Error> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Wanted<'a>(&'a BTreeSet<String>);
    impl<'de> Visitor<'de> for Wanted<'_> {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a worker's attributes")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !self.0.contains(key.as_ref()) {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(s) if !s.is_empty() => {
                        out.push((key.into_owned(), s));
                    }
                    serde_json::Value::Number(n) => out.push((key.into_owned(), n.to_string())),
                    _ => {}
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let out = (&mut de).deserialize_map(Wanted(attributes))?;
    de.end()?;
    Ok(out)
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
    /// The sign that the target lost state, which made this run verify all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
    /// Groups read back entry by entry in this run, and the reads that took.
    pub verified: usize,
    pub verify_reads: u64,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<PairAction>,
    pub added: usize,
    pub removed: usize,
    pub renamed: bool,
    /// Read back entry by entry in this run.
    pub verified: bool,
    pub members: usize,
    pub unprovisioned: usize,
    pub drift: usize,
    /// Members the target keeps out of rosterd's hands (Google's nested groups and
    /// addresses outside the account), described: never planned, never removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
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

impl TargetReport {
    /// Folds in the pairs of a second pass (the whole target verified after a sign of
    /// reset): what each sent adds up, and its latest outcome stands.
    fn merge(&mut self, later: Vec<PairReport>) {
        for pair in later {
            let Some(first) = self.groups.iter_mut().find(|g| g.group == pair.group) else {
                self.groups.push(pair);
                continue;
            };
            first.added += pair.added;
            first.removed += pair.removed;
            first.drift += pair.drift;
            first.renamed |= pair.renamed;
            first.verified |= pair.verified;
            first.action = pair.action.or(first.action.take());
            first.scim_id = pair.scim_id.or(first.scim_id.take());
            first.members = pair.members;
            first.unprovisioned = pair.unprovisioned;
            first.held = pair.held;
            first.error = pair.error;
            first.requests.extend(pair.requests);
        }
    }
}

/// Everything one target's push needs.
pub(crate) struct TargetRun<'a> {
    pub name: &'a str,
    pub config: &'a TargetConfig,
    pub target: &'a target::Target,
    pub store: &'a Store,
    pub options: &'a Options,
    /// Read every pushed group back and look every wanted worker up (`--reconcile`, or a
    /// sign that the target lost state).
    pub reconcile: bool,
    /// What this run has seen of the target.
    pub evidence: verify::Evidence,
    /// Reads of groups made to verify them.
    pub verify_reads: std::sync::atomic::AtomicU64,
    /// The worker attribute users are matched by.
    pub match_attribute: String,
    pub now: String,
    pub now_time: chrono::DateTime<chrono::Utc>,
    pub desired: &'a Desired,
    /// Confirmations of requests in flight share a commit.
    pub confirmer: send::Confirmer<'a>,
    /// Counted into as requests are answered, when the push is watched.
    pub progress: Option<Arc<progress::TargetProgress>>,
    /// Groups a broken guardrail holds, with why.
    pub guarded: &'a BTreeMap<String, String>,
    /// Syncs the schedule makes within `verify_every`.
    pub sync_runs: u64,
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
    let guarded = guarded_groups(store).await?;
    let pushes = config
        .targets
        .iter()
        .filter(|(name, _)| options.target.as_ref().is_none_or(|t| t == *name))
        .filter(|(name, _)| {
            group_targets
                .as_ref()
                .is_none_or(|t| t.contains(name.as_str()))
        })
        .map(|(name, target)| {
            push_target(
                name, target, config, rules, desired, store, options, &guarded,
            )
        });
    // Side by side: one slow or unreachable target does not hold back the others (each
    // within its own `concurrency`).
    let reports = futures_util::future::join_all(pushes).await;
    let mut report = Report::default();
    for target in reports {
        report.targets.push(target?);
    }
    Ok(report)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one target's push: its inputs, each of them used"
)]
async fn push_target(
    name: &str,
    target: &TargetConfig,
    config: &Config,
    rules: &RuleSet,
    desired: &Desired,
    store: &Store,
    options: &Options,
    guarded: &BTreeMap<String, String>,
) -> Result<TargetReport, PushError> {
    let mut report = TargetReport {
        target: name.to_string(),
        ..TargetReport::default()
    };
    let now_time = crate::clock::now_utc();
    let fence = store.clone();
    let client = match target::Target::new(name, target) {
        Ok(client) => client.gated(Arc::new(move || {
            fence.check_fence().err().map(|e| e.to_string())
        })),
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
    let deadline = std::time::Duration::from_secs(target.push_deadline_seconds);
    let give_up = tokio::time::Instant::now() + deadline;
    let sync_runs = sync_runs(config, target, now_time);
    let mut reconcile = options.reconcile;
    let outcome = loop {
        let run = TargetRun {
            name,
            config: target,
            target: &client,
            store,
            options,
            reconcile,
            evidence: verify::Evidence::default(),
            verify_reads: Default::default(),
            match_attribute: match_attribute(config, target),
            now: stamp(now_time),
            now_time,
            desired,
            confirmer: send::Confirmer::new(store),
            progress: options
                .progress
                .as_ref()
                .filter(|_| !options.dry_run)
                .map(|p| p.target(name)),
            guarded,
            sync_runs,
        };
        let mut pass = TargetReport::default();
        let outcome = tokio::time::timeout_at(give_up, run.push(rules, &mut pass)).await;
        report.replayed += pass.replayed;
        report.verify_reads += run.verify_reads.load(std::sync::atomic::Ordering::Relaxed);
        report.merge(pass.groups);
        let reset = run.evidence.reset_reason();
        match (&outcome, reset) {
            // A sign that the target lost state: verify all of it, now.
            (Ok(Ok(())), Some(reason)) if !reconcile => {
                if !options.dry_run {
                    store.record_reset(name, &reason, &run.now).await?;
                }
                report.reset = Some(reason);
                reconcile = true;
            }
            _ => break outcome,
        }
    };
    report.verified = report.groups.iter().filter(|g| g.verified).count();
    report.reads = client.stats().reads();
    report.writes = client.stats().writes();
    report.retries = client.stats().retries();
    report.answered = client.stats().answered();
    let now = stamp(now_time);
    record_outcome(
        name,
        target,
        store,
        options,
        &client,
        outcome,
        &mut report,
        &now,
    )
    .await?;
    if report.verified > 0 {
        tracing::info!(
            target_name = name,
            groups = report.verified,
            reads = report.verify_reads,
            whole = report.reset.is_some(),
            "verified groups by reading them back"
        );
    }
    Ok(report)
}

/// What a target's push ended with, recorded: its health (from what its requests showed)
/// and, when it stopped, why in the report.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one target's push, which push_target holds as locals"
)]
async fn record_outcome(
    name: &str,
    target: &TargetConfig,
    store: &Store,
    options: &Options,
    client: &target::Target,
    outcome: Result<Result<(), Stop>, tokio::time::error::Elapsed>,
    report: &mut TargetReport,
    now: &str,
) -> Result<(), PushError> {
    match outcome {
        // Health is what requests to this target showed: a push that sent none (nothing to
        // do here) says nothing about it. A request given up on after its retries (429, 5xx,
        // no answer) makes it unhealthy, whatever else it answered.
        Ok(Ok(())) => {
            let unanswered = report.groups.iter().find_map(|g| g.error.clone());
            if !options.dry_run {
                if let Some(message) = client.stats().first_give_up() {
                    let message = match client.stats().gave_up() {
                        1 => message,
                        n => format!("{message} (and {} more requests given up)", n - 1),
                    };
                    store
                        .set_target_health(name, false, Some(&message), now)
                        .await?;
                } else if report.answered > 0 {
                    store.set_target_health(name, true, None, now).await?;
                } else if let Some(message) = unanswered {
                    // Every request failed without an answer: it cannot be reached.
                    store
                        .set_target_health(name, false, Some(&message), now)
                        .await?;
                }
            }
        }
        Ok(Err(Stop::Store(e))) => return Err(e.into()),
        // This process may send no more: that says nothing of the target.
        Ok(Err(Stop::Target(e @ crate::http::client::TargetError::Stopped { .. }))) => {
            tracing::warn!(target_name = name, "the push stopped: {e}");
            report.error = Some(e.to_string());
        }
        // Refused credentials, or no answer at all: the target is unhealthy until a request
        // succeeds again.
        Ok(Err(Stop::Target(e))) => {
            let message = e.to_string();
            // The error names the target, the request and the answer.
            tracing::warn!(
                target_name = name,
                "the push to the target stopped: {message}"
            );
            if !options.dry_run {
                store
                    .set_target_health(name, false, Some(&message), now)
                    .await?;
            }
            report.error = Some(message);
        }
        Err(_) => {
            let message = format!(
                "target `{name}`: the push did not finish within push_deadline_seconds ({} s); what is unsent stays in the outbox for the next run",
                target.push_deadline_seconds
            );
            tracing::warn!(target_name = name, "{message}");
            report.error = Some(message);
        }
    }
    Ok(())
}

/// How many syncs the daemon's schedule makes within the target's `verify_every`: the runs
/// its verification is spread over.
fn sync_runs(config: &Config, target: &TargetConfig, now: chrono::DateTime<chrono::Utc>) -> u64 {
    crate::schedule::Schedule::parse(&config.daemon.sync, &config.daemon.time_zone).map_or(1, |s| {
        s.runs_within(now, target.verify_every.span(), 1_000_000)
    })
}

/// The groups the guardrails that hold (and that the memberships in force break) concern,
/// each with why.
async fn guarded_groups(store: &Store) -> Result<BTreeMap<String, String>, PushError> {
    let violations: Vec<crate::engine::guardrails::Violation> = store.current_violations().await?;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for v in violations.iter().filter(|v| v.hold) {
        let why = format!("guardrail `{}` is violated: {}", v.guardrail, v.message);
        for group in &v.groups {
            out.entry(group.clone())
                .and_modify(|r| {
                    r.push_str("; ");
                    r.push_str(&why);
                })
                .or_insert_with(|| why.clone());
        }
    }
    Ok(out)
}

/// Why a target's push stopped early.
pub(crate) enum Stop {
    Store(StoreError),
    /// The target refused our credentials or cannot be reached at all.
    Target(TargetError),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Store(e) => e.fmt(f),
            Stop::Target(e) => e.fmt(f),
        }
    }
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
    async fn push(&self, rules: &RuleSet, report: &mut TargetReport) -> Result<(), Stop> {
        let known = self.store.target_groups(self.name).await?;
        let (pairs, unpushed) = self.pairs(rules, &known, report);
        // Groups a stopped push left with requests whose outcome is unknown: read back
        // before they are planned.
        let mut unsure = BTreeSet::new();
        if !self.options.dry_run {
            let handled: BTreeSet<&str> = pairs
                .iter()
                .map(|(g, _)| g.name.as_str())
                .chain(unpushed.iter().map(|k| k.group.as_str()))
                .collect();
            (report.replayed, unsure) = self.replay(&handled).await?;
        }
        // Each worker once, however many groups hold them (a worker is in hundreds).
        let mut wanted = RoaringBitmap::new();
        for (group, _) in &pairs {
            if let Some(members) = self.desired.members.get(&group.name) {
                wanted |= members;
            }
        }
        let users = self.resolve(&wanted).await?;
        let mut sets = self.store.target_sets(self.name).await?;
        // Every user id about to be added is one the target has shown in this run: those
        // the cache gave are confirmed first, all at once. An unknown one is a sign that
        // the target lost state, and the whole target is verified instead.
        let mut adding = RoaringBitmap::new();
        for (group, _) in &pairs {
            let want = self.desired.members.get(&group.name);
            let held = sets.get(&group.name).map(|s| &s.workers);
            if let Some(want) = want {
                adding |= match held {
                    Some(held) => &(want & &users.accounts) - held,
                    None => want & &users.accounts,
                };
            }
        }
        self.confirm(&adding, &users).await?;
        if self.evidence.reset_reason().is_some() && !self.reconcile {
            return Ok(());
        }
        let verify = self.to_verify(&known, &pairs);
        if self.options.dry_run {
            // A real push stored this move with the lookups (see `store::confirmed`).
            for (worker, key, old) in &users.moved {
                for set in sets.values_mut() {
                    if set.workers.remove(*worker) {
                        set.foreign.insert(old.clone(), Some(key.clone()));
                    }
                }
            }
        }
        let unprovisioned = self.store.unprovisioned_keys(self.name).await?;
        if let Some(progress) = &self.progress {
            progress.estimate(self.estimate(&pairs, &users, &sets, &known));
        }
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
                    &users,
                    pair::Stored {
                        group: known.get(&group.name),
                        members: sets.get(&group.name),
                        unprovisioned: unprovisioned.get(&group.name),
                        unsure: unsure.contains(&group.name),
                        verify: verify.contains(&group.name),
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
        for state in unpushed {
            let overrides = rules
                .lookup(&state.group)
                .map(|g| rules.group(g).failsafe.clone());
            report.groups.push(
                self.unpush(state, sets.get(&state.group), overrides.unwrap_or_default())
                    .await?,
            );
        }
        Ok(())
    }

    /// The pairs this push makes (an inactive one is only reported), and the groups
    /// rosterd pushed here that the rules no longer push here.
    fn pairs<'r, 'k>(
        &self,
        rules: &'r RuleSet,
        known: &'k BTreeMap<String, TargetGroup>,
        report: &mut TargetReport,
    ) -> (
        Vec<(&'r crate::rules::Group, &'r crate::rules::Push)>,
        Vec<&'k TargetGroup>,
    ) {
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
                        action: Some(PairAction::Inactive),
                        ..PairReport::default()
                    });
                }
            }
        }
        let unpushed: Vec<&TargetGroup> = known
            .values()
            .filter(|k| {
                !pushed_here.contains(&k.group)
                    && self.options.group.as_ref().is_none_or(|g| *g == k.group)
            })
            .collect();
        (pairs, unpushed)
    }

    /// The groups read back in this run: every one on a reconcile, none in a dry run, else
    /// this run's slice of those due.
    fn to_verify(
        &self,
        known: &BTreeMap<String, TargetGroup>,
        pairs: &[(&crate::rules::Group, &crate::rules::Push)],
    ) -> BTreeSet<String> {
        if self.reconcile {
            known.keys().cloned().collect()
        } else if self.options.dry_run {
            // A dry run shows the requests a sync would send; reading a slice back would
            // only make planning cost what verifying does.
            BTreeSet::new()
        } else {
            let pushed: BTreeSet<&str> = pairs.iter().map(|(g, _)| g.name.as_str()).collect();
            let every = self.config.verify_every.span();
            verify::slice(known, &pushed, self.sync_runs, every, self.now_time)
        }
    }

    fn match_value(&self, id: u32) -> Option<&str> {
        self.desired.match_value(&self.match_attribute, id)
    }

    /// The requests the pairs' plans will take: their member changes in requests of
    /// `max_members_per_request` (a group the target does not have yet takes at least its
    /// creating POST).
    fn estimate(
        &self,
        pairs: &[(&crate::rules::Group, &crate::rules::Push)],
        users: &resolve::Users,
        sets: &BTreeMap<String, crate::store::Confirmed>,
        known: &BTreeMap<String, TargetGroup>,
    ) -> u64 {
        let per = self.target.members_per_request(self.config).max(1) as u64;
        let none = RoaringBitmap::new();
        pairs
            .iter()
            .map(|(group, _)| {
                let want = self.desired.members.get(&group.name).unwrap_or(&none) & &users.accounts;
                let (held, foreign) = sets
                    .get(&group.name)
                    .map_or((&none, 0), |s| (&s.workers, s.foreign.len() as u64));
                let changes = (&want - held).len() + (held - &want).len() + foreign;
                // A group made here takes its first batch in the creating POST.
                if known.contains_key(&group.name) {
                    changes.div_ceil(per)
                } else {
                    changes.div_ceil(per).max(1)
                }
            })
            .sum()
    }
}
