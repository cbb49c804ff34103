//! One evaluation cycle: refresh the HR snapshot (with the failsafe), evaluate the rules, and
//! record the run and every membership change in the store, in one transaction. `plan` uses
//! the same difference without writing.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::directory::DirectoryError;
use crate::engine;
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};

mod cold;
mod diff;
mod run;
mod stored;
mod warm;

pub use diff::{
    changes, planned_changes, removed_group_changes, run_changes, run_changes_keeping, state_after,
    KeyOrder, Numbering, PlannedChange, StoredSide,
};
pub use run::{run, run_once, run_warm};
pub use warm::Warm;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored snapshot {id} cannot be read: {message}")]
    Corrupt { id: i64, message: String },
    #[error("incremental evaluation differs from a full one ({}), {runs} runs after the last full one: this run stores nothing, and the next one evaluates in full\nhelp: this is a bug in rosterd; please report it with the two exports if you can", differences.join(", "))]
    IncrementalDiffers { differences: Vec<String>, runs: u32 },
    #[error("loading the export from the snapshot kept since the last run differs from loading it from nothing ({}): this run stores nothing, and the next one loads from nothing\nhelp: this is a bug in rosterd; please report it with the two exports if you can", differences.join(", "))]
    LoadDiffers { differences: Vec<String> },
    #[error("comparing only the workers the export's change can reach differs from comparing everyone ({}): this run stores nothing\nhelp: this is a bug in rosterd; please report it with the two exports if you can", differences.join(", "))]
    ReachDiffers { differences: Vec<String> },
}

/// Runs `work` (CPU work or a process) on tokio's blocking threads, within the current span;
/// a panic there is the caller's.
pub(super) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A read of the store started ahead of the work that needs its result, on the runtime,
/// while that work runs on a blocking thread: a cold run's stored memberships while the
/// export loads, the stored rows its change is compared with while it evaluates. Dropped
/// unused (the run held, or failed), the read is stopped.
pub(super) struct Ahead<T>(tokio::task::JoinHandle<Result<T, StoreError>>);

impl<T: Send + 'static> Ahead<T> {
    pub(super) fn start(
        what: &'static str,
        read: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Ahead<T> {
        use tracing::Instrument;
        let read = async move {
            let phase = Phase::start();
            let result = read.await;
            phase.done(what);
            result
        };
        Ahead(tokio::spawn(read.instrument(tracing::Span::current())))
    }

    /// What the read gave. Only dropping it stops the read, so a stopped one (the runtime
    /// shutting down under the run) is an error, never a wait.
    pub(super) async fn result(mut self) -> Result<T, StoreError> {
        match (&mut self.0).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Conflict(format!(
                "a read of the store was stopped before the run needed it: {e}"
            ))),
        }
    }
}

impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A part of a run, timed for `-v` (a run's cost should follow its change; this shows where
/// it goes).
pub(super) struct Phase(std::time::Instant);

impl Phase {
    pub(super) fn start() -> Self {
        Phase(std::time::Instant::now())
    }

    pub(super) fn done(self, what: &str) {
        tracing::debug!(
            phase = what,
            ms = self.0.elapsed().as_secs_f64() * 1e3,
            "run phase done"
        );
    }
}

/// What a cycle did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Applied {
        run_id: i64,
        snapshot_id: Option<i64>,
        added: usize,
        removed: usize,
        memberships: usize,
        /// Set when the export could not be read and the last good snapshot was used.
        warning: Option<String>,
        /// The guardrails the memberships break.
        violations: Vec<engine::guardrails::Violation>,
        /// How many workers were compared with the stored memberships, when the run
        /// compared only those its change could reach; `None` when it compared everyone.
        compared: Option<usize>,
    },
    /// The failsafe held the new snapshot; nothing changed.
    Held {
        run_id: i64,
        snapshot_id: i64,
        reason: String,
    },
}

impl Outcome {
    /// The run the cycle recorded.
    pub fn run_id(&self) -> i64 {
        match self {
            Outcome::Applied { run_id, .. } | Outcome::Held { run_id, .. } => *run_id,
        }
    }
}

/// Everything a cycle needs besides the store. The config and the rules are shared with the
/// work the cycle hands to tokio's blocking threads (loading, evaluating, comparing, `git`).
pub struct Inputs<'a> {
    pub config: Arc<Config>,
    pub rules: Arc<RuleSet>,
    pub as_of: NaiveDate,
    pub now: DateTime<Utc>,
    pub kind: &'a str,
}

/// SHA-256 over everything an evaluation reads besides the export: the rule files (by their
/// digest, [`RuleSet::digest`]), the config file, the evaluation date and rosterd's version.
/// `None` when the config file cannot be read (the run is then never taken for unchanged).
pub fn inputs_digest(config: &Config, rules_digest: &str, as_of: NaiveDate) -> Option<String> {
    use sha2::Digest;
    let config_text = std::fs::read(&config.path).ok()?;
    let mut hasher = sha2::Sha256::new();
    for part in [
        rules_digest.as_bytes(),
        &config_text,
        as_of.to_string().as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
    ] {
        hasher.update(part);
        hasher.update([0]);
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The last succeeded run, when it evaluated the snapshot `snapshot_id` with inputs of
/// digest `digest`: the store then holds exactly what an evaluation would give.
pub async fn same_as_last_run(
    store: &Store,
    snapshot_id: i64,
    digest: Option<&str>,
) -> Result<Option<crate::store::RunInfo>, StoreError> {
    let Some(digest) = digest else {
        return Ok(None);
    };
    Ok(store.last_succeeded_run().await?.filter(|last| {
        last.snapshot_id == Some(snapshot_id) && last.inputs_digest.as_deref() == Some(digest)
    }))
}

/// Why a snapshot with `eligible` workers must be held, given the current snapshot's count.
pub fn failsafe(eligible: i64, current: Option<i64>, max_shrink_percent: f64) -> Option<String> {
    if eligible == 0 {
        return Some("the export has no eligible workers".to_string());
    }
    let current = current.filter(|&c| c > 0)?;
    let shrink = (current - eligible) as f64 * 100.0 / current as f64;
    (shrink > max_shrink_percent).then(|| {
        format!(
            "the eligible population shrank from {current} to {eligible} workers (-{shrink:.1}%), \
             more than directory.failsafe.max_shrink_percent ({max_shrink_percent}%)"
        )
    })
}

/// The bundled sample (`rosterd.yaml`): its config, its rules and its export, for the
/// cycle's unit tests.
#[cfg(test)]
pub(crate) fn sample() -> (crate::rules::RuleSet, crate::directory::Snapshot) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = crate::config::Config::load(&root.join("rosterd.yaml")).unwrap();
    let schema = crate::directory::Schema::from_config(&config.directory);
    let ctx = crate::rules::Context::from_config(&config, &schema);
    let rules = crate::rules::load(&config.rules.dir, &ctx).unwrap();
    let (snapshot, _) = crate::directory::load(&config.directory).unwrap();
    (rules, snapshot)
}

#[cfg(test)]
mod tests {
    use super::failsafe;

    #[test]
    fn failsafe_holds_empty_and_shrinking_populations() {
        assert!(failsafe(0, None, 10.0)
            .unwrap()
            .contains("no eligible workers"));
        assert_eq!(
            failsafe(50, None, 10.0),
            None,
            "a first snapshot has nothing to shrink from"
        );
        assert_eq!(
            failsafe(90, Some(100), 10.0),
            None,
            "exactly the limit passes"
        );
        let held = failsafe(89, Some(100), 10.0).unwrap();
        assert_eq!(
            held,
            "the eligible population shrank from 100 to 89 workers (-11.0%), more than directory.failsafe.max_shrink_percent (10%)"
        );
        assert_eq!(failsafe(150, Some(100), 10.0), None, "growth is never held");
    }
}
