//! The daemon's counters, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::Job;
use crate::cycle::Outcome;
use crate::push::Report;
use crate::store::RunOutcome;

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
    pub healthy_targets: Vec<String>,
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
                s.healthy_targets.push(target.target.clone());
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

#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    runs: BTreeMap<(&'static str, &'static str), u64>,
    run_seconds: BTreeMap<(&'static str, &'static str), f64>,
    changes: u64,
    pushed: BTreeMap<(String, &'static str), u64>,
    last_success: BTreeMap<String, f64>,
    held: u64,
    rules_load_errors: u64,
    rules_groups: usize,
    rules_ok: bool,
    /// The web console: sign-ins by outcome, state-changing requests refused by why, and
    /// approvals.
    sign_ins: BTreeMap<&'static str, u64>,
    refused: BTreeMap<&'static str, u64>,
    approvals: u64,
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn rules_loaded(&self, groups: usize) {
        let mut s = self.state();
        s.rules_groups = groups;
        s.rules_ok = true;
    }

    pub fn rules_load_failed(&self) {
        let mut s = self.state();
        s.rules_load_errors += 1;
        s.rules_ok = false;
    }

    /// A console sign-in ended: `ok`, `refused` (by the provider, or a sign-in that was not
    /// this browser's or expired) or `error` (the provider unreachable, a token that did not
    /// verify).
    pub fn console_sign_in(&self, outcome: &'static str) {
        *self.state().sign_ins.entry(outcome).or_default() += 1;
    }

    /// A console request that would change state was refused: `csrf`, `role` or `session`.
    pub fn console_refused(&self, why: &'static str) {
        *self.state().refused.entry(why).or_default() += 1;
    }

    pub fn console_approved(&self) {
        self.state().approvals += 1;
    }

    pub fn run_finished(&self, job: &Job, outcome: &'static str, seconds: f64, summary: &Summary) {
        let mut s = self.state();
        *s.runs.entry((job.as_str(), outcome)).or_default() += 1;
        *s.run_seconds.entry((job.as_str(), outcome)).or_default() += seconds;
        s.changes += summary.changes as u64;
        s.held = summary.pushes_held as u64;
        for (target, counts) in &summary.by_target {
            for (kind, n) in counts {
                *s.pushed.entry((target.clone(), kind)).or_default() += n;
            }
        }
        let now = crate::clock::now_utc().timestamp() as f64;
        for target in &summary.healthy_targets {
            s.last_success.insert(target.clone(), now);
        }
    }

    /// The Prometheus text; `groups` are the stored group sizes and `unprovisioned` the
    /// workers without an account per target, read when scraped.
    pub fn render(
        &self,
        groups: &BTreeMap<String, usize>,
        unprovisioned: &BTreeMap<String, usize>,
        progress: &[crate::push::progress::Numbers],
        violations: &[crate::engine::guardrails::Violation],
        leading: bool,
    ) -> String {
        let s = self.state();
        let mut out = String::new();
        metric(
            &mut out,
            "rosterd_guardrail_violated",
            "gauge",
            "Guardrails the memberships in force break: the workers who break it (1 for a size guardrail), by guardrail and on_violation (hold or warn).",
            violations.iter().map(|v| {
                (
                    format!(
                        "{{guardrail=\"{}\",on_violation=\"{}\"}}",
                        label(&v.guardrail),
                        if v.hold { "hold" } else { "warn" }
                    ),
                    v.count.max(1).to_string(),
                )
            }),
        );
        let remaining: BTreeMap<String, u64> = progress
            .iter()
            .map(|n| (n.target.clone(), n.to_send))
            .collect();
        metric(
            &mut out,
            "rosterd_push_requests_remaining",
            "gauge",
            "Requests the running push still has to send to the target (estimated; none when no push runs).",
            per_target(&remaining),
        );
        metric(
            &mut out,
            "rosterd_console_sign_ins_total",
            "counter",
            "Web console sign-ins by outcome: ok, refused (by the provider, or not this browser's or expired), error (provider unreachable, token not verified).",
            s.sign_ins
                .iter()
                .map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), n.to_string())),
        );
        metric(
            &mut out,
            "rosterd_console_refused_total",
            "counter",
            "Web console requests that would change state, refused: csrf (missing or wrong token), role (not an approver), session (none).",
            s.refused
                .iter()
                .map(|(w, n)| (format!("{{why=\"{w}\"}}"), n.to_string())),
        );
        metric(
            &mut out,
            "rosterd_console_approvals_total",
            "counter",
            "Held pushes approved in the web console.",
            [(String::new(), s.approvals.to_string())],
        );
        metric(
            &mut out,
            "rosterd_leader",
            "gauge",
            "1 on the process that runs the scheduled work, 0 on a standby.",
            [(String::new(), u8::from(leading).to_string())],
        );
        metric(
            &mut out,
            "rosterd_runs_total",
            "counter",
            "Runs by kind and outcome.",
            s.runs.iter().map(|((kind, outcome), n)| {
                (
                    format!("{{kind=\"{kind}\",outcome=\"{outcome}\"}}"),
                    n.to_string(),
                )
            }),
        );
        metric(
            &mut out,
            "rosterd_run_duration_seconds_sum",
            "counter",
            "Seconds spent in runs by kind and outcome.",
            s.run_seconds.iter().map(|((kind, outcome), secs)| {
                (
                    format!("{{kind=\"{kind}\",outcome=\"{outcome}\"}}"),
                    secs.to_string(),
                )
            }),
        );
        metric(
            &mut out,
            "rosterd_membership_changes_total",
            "counter",
            "Membership changes recorded by runs.",
            [(String::new(), s.changes.to_string())],
        );
        metric(
            &mut out,
            "rosterd_pushes_total",
            "counter",
            "Group pushes by target and outcome.",
            s.pushed.iter().map(|((target, kind), n)| {
                (
                    format!("{{target=\"{}\",outcome=\"{kind}\"}}", label(target)),
                    n.to_string(),
                )
            }),
        );
        metric(
            &mut out,
            "rosterd_held_pushes",
            "gauge",
            "Pushes held by the failsafe in the last run.",
            [(String::new(), s.held.to_string())],
        );
        metric(
            &mut out,
            "rosterd_last_successful_push_timestamp_seconds",
            "gauge",
            "When each target last took every change it was sent.",
            per_target(&s.last_success),
        );
        metric(
            &mut out,
            "rosterd_unprovisioned_users",
            "gauge",
            "Workers without an account, per target.",
            per_target(unprovisioned),
        );
        metric(
            &mut out,
            "rosterd_group_members",
            "gauge",
            "Members of each group after the last run.",
            groups
                .iter()
                .map(|(g, n)| (format!("{{group=\"{}\"}}", label(g)), n.to_string())),
        );
        metric(
            &mut out,
            "rosterd_rules_groups",
            "gauge",
            "Groups in the rules in force.",
            [(String::new(), s.rules_groups.to_string())],
        );
        metric(
            &mut out,
            "rosterd_rules_load_ok",
            "gauge",
            "1 when the newest rules on disk are the ones in force.",
            [(String::new(), u8::from(s.rules_ok).to_string())],
        );
        metric(
            &mut out,
            "rosterd_rules_load_errors_total",
            "counter",
            "Reloads refused because the rules or config had errors.",
            [(String::new(), s.rules_load_errors.to_string())],
        );
        out
    }
}

/// One metric: its HELP and TYPE lines, then a sample per `(labels, value)`; `labels` is
/// `{name="value",...}` or empty.
fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    text: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Samples labelled by target.
fn per_target<V: ToString>(
    values: &BTreeMap<String, V>,
) -> impl Iterator<Item = (String, String)> + '_ {
    values
        .iter()
        .map(|(t, v)| (format!("{{target=\"{}\"}}", label(t)), v.to_string()))
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        assert_eq!(summary.healthy_targets, vec!["up".to_string()]);
        // The `run finished` line names it.
        assert_eq!(summary.failed_targets, vec!["down".to_string()]);
    }
}
