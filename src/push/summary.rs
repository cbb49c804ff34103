//! What one run did as a whole, its evaluation and its push together: the one account of it
//! that `rosterd sync` and the daemon record with the run, and that the metrics and the
//! `run finished` line report.

use std::collections::BTreeMap;

use crate::cycle::Outcome;
use crate::push::Report;
use crate::store::{RunOutcome, Store, StoreError};

/// What one run did, for its summary line and the metrics.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub changes: usize,
    pub snapshot_held: bool,
    pub added: usize,
    pub removed: usize,
    pub pushes_held: usize,
    pub failures: usize,
    /// Outbox entries an earlier run left unconfirmed and this one settled (their groups
    /// read back; what was still missing is in `added` and `removed`).
    pub outbox_settled: usize,
    /// Guardrails the run's memberships break.
    pub guardrails_violated: usize,
    /// Per target: pushes by outcome (ok, held, failed).
    pub by_target: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Targets that took every change they were sent.
    pub answered_targets: Vec<String>,
    /// Targets whose push (or a group's push to them) failed, by name.
    pub failed_targets: Vec<String>,
    /// Targets pushed to, and the groups held, as `group → target`.
    pub targets: usize,
    pub held_pairs: Vec<String>,
    /// Why the snapshot was held, when it was.
    pub snapshot_reason: Option<String>,
    /// The first failure's message.
    pub first_failure: Option<String>,
    /// What each target was sent, held and failed, for the run's record.
    pub pushed: serde_json::Map<String, serde_json::Value>,
}

impl Summary {
    /// `outcome` is the cycle's, when the job ran one (a group push does not).
    pub fn of(outcome: Option<&Outcome>, report: &Report) -> Summary {
        let mut s = Summary::default();
        match outcome {
            Some(Outcome::Applied {
                added,
                removed,
                violations,
                ..
            }) => {
                s.changes = added + removed;
                s.guardrails_violated = violations.len();
            }
            Some(Outcome::Held { reason, .. }) => {
                s.snapshot_held = true;
                s.snapshot_reason = Some(reason.clone());
            }
            None => {}
        }
        for target in &report.targets {
            s.targets += 1;
            s.outbox_settled += target.replayed;
            let counts = s.by_target.entry(target.target.clone()).or_default();
            let mut failed = target.error.is_some();
            if failed {
                s.failures += 1;
                s.first_failure = s.first_failure.take().or(target.error.clone());
            }
            let (mut held, mut failed_groups) = (Vec::new(), Vec::new());
            let (mut added, mut removed) = (0, 0);
            for pair in &target.groups {
                s.added += pair.added;
                s.removed += pair.removed;
                added += pair.added;
                removed += pair.removed;
                let kind = if pair.held.is_some() {
                    s.pushes_held += 1;
                    s.held_pairs
                        .push(format!("{} → {}", pair.group, target.target));
                    held.push(pair.group.clone());
                    "held"
                } else if pair.error.is_some() {
                    s.failures += 1;
                    failed = true;
                    s.first_failure = s.first_failure.take().or(pair.error.clone());
                    failed_groups.push(pair.group.clone());
                    "failed"
                } else {
                    "ok"
                };
                *counts.entry(kind).or_default() += 1;
            }
            s.pushed.insert(
                target.target.clone(),
                serde_json::json!({
                    "added": added,
                    "removed": removed,
                    "writes": target.writes,
                    "held": held,
                    "failed": failed_groups,
                    "error": target.error,
                }),
            );
            if failed {
                s.failed_targets.push(target.target.clone());
            }
            // A success is a push whose requests the target answered: one that sent none
            // (nothing to do there) says nothing about the target.
            if !failed && target.answered > 0 {
                s.answered_targets.push(target.target.clone());
            }
        }
        s
    }

    pub fn outcome(&self) -> &'static str {
        self.run_outcome().0.as_str()
    }

    /// The run's one outcome, and why: what `rosterd runs`, the API, the console, the
    /// metrics and the `run finished` line all say of it.
    pub fn run_outcome(&self) -> (RunOutcome, Option<String>) {
        if self.failures > 0 {
            let all = self.targets > 0 && self.failed_targets.len() == self.targets;
            let outcome = if all {
                RunOutcome::Failed
            } else {
                RunOutcome::PartlyFailed
            };
            let reason = format!(
                "the push failed at {}: {}",
                self.failed_targets.join(", "),
                self.first_failure.as_deref().unwrap_or("")
            );
            return (outcome, Some(reason));
        }
        if self.snapshot_held {
            return (RunOutcome::Held, self.snapshot_reason.clone());
        }
        if self.pushes_held > 0 {
            return (
                RunOutcome::SucceededWithHeldPushes,
                Some(format!(
                    "{} held until approved: {}",
                    crate::text::count(self.pushes_held as u64, "push"),
                    self.held_pairs.join(", ")
                )),
            );
        }
        if self.changes == 0 && self.added == 0 && self.removed == 0 {
            return (
                RunOutcome::NothingToDo,
                Some("no membership changed and no target needed a change".into()),
            );
        }
        (RunOutcome::Succeeded, None)
    }
}

impl Summary {
    /// Records the run's outcome with run `run`.
    pub async fn record(&self, store: &Store, run: i64) -> Result<(), StoreError> {
        let (outcome, reason) = self.run_outcome();
        store
            .record_run_outcome(
                run,
                outcome,
                reason.as_deref(),
                &serde_json::Value::Object(self.pushed.clone()),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::{PairReport, TargetReport};

    fn target(name: &str, error: Option<&str>, answered: u64) -> TargetReport {
        TargetReport {
            target: name.into(),
            error: error.map(str::to_string),
            answered,
            groups: vec![PairReport {
                group: "g".into(),
                ..PairReport::default()
            }],
            ..TargetReport::default()
        }
    }

    #[test]
    fn an_unreachable_target_fails_the_run_and_a_silent_one_is_no_success() {
        let report = Report {
            targets: vec![
                target("down", Some("target `down`: cannot connect"), 0),
                target("quiet", None, 0),
                target("up", None, 3),
            ],
        };
        let summary = Summary::of(None, &report);
        assert_eq!(summary.failures, 1);
        // One of three targets failed: the run partly failed, and says where.
        assert_eq!(summary.outcome(), "partly_failed");
        let (_, reason) = summary.run_outcome();
        assert!(
            reason
                .unwrap()
                .starts_with("the push failed at down: target `down`"),
            "{summary:?}"
        );
        assert_eq!(summary.answered_targets, vec!["up".to_string()]);
        // The `run finished` line names it.
        assert_eq!(summary.failed_targets, vec!["down".to_string()]);
    }
}
