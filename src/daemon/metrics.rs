//! The daemon's counters, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::Job;
use crate::cycle::Outcome;
use crate::push::Report;

/// What one run did, for its summary line and the metrics.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub changes: usize,
    pub snapshot_held: bool,
    pub added: usize,
    pub removed: usize,
    pub pushes_held: usize,
    pub failures: usize,
    /// Per target: pushes by outcome (ok, held, failed).
    pub by_target: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Targets that took every change they were sent.
    pub healthy_targets: Vec<String>,
}

impl Summary {
    /// `outcome` is the cycle's, when the job ran one (a group push does not).
    pub fn of(outcome: Option<&Outcome>, report: &Report) -> Summary {
        let mut s = Summary::default();
        match outcome {
            Some(Outcome::Applied { added, removed, .. }) => s.changes = added + removed,
            Some(Outcome::Held { .. }) => s.snapshot_held = true,
            None => {}
        }
        for target in &report.targets {
            let counts = s.by_target.entry(target.target.clone()).or_default();
            let mut failed = target.error.is_some();
            for pair in &target.groups {
                s.added += pair.added;
                s.removed += pair.removed;
                let kind = if pair.held.is_some() {
                    s.pushes_held += 1;
                    "held"
                } else if pair.error.is_some() {
                    s.failures += 1;
                    failed = true;
                    "failed"
                } else {
                    "ok"
                };
                *counts.entry(kind).or_default() += 1;
            }
            if !failed {
                s.healthy_targets.push(target.target.clone());
            }
        }
        s
    }

    pub fn outcome(&self) -> &'static str {
        if self.failures > 0 {
            "failed"
        } else if self.snapshot_held || self.pushes_held > 0 {
            "held"
        } else {
            "succeeded"
        }
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
        leading: bool,
    ) -> String {
        let s = self.state();
        let mut out = String::new();
        help(
            &mut out,
            "rosterd_leader",
            "gauge",
            "1 on the process that runs the scheduled work, 0 on a standby.",
        );
        let _ = writeln!(out, "rosterd_leader {}", u8::from(leading));
        help(
            &mut out,
            "rosterd_runs_total",
            "counter",
            "Runs by kind and outcome.",
        );
        for ((kind, outcome), n) in &s.runs {
            let _ = writeln!(
                out,
                "rosterd_runs_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        help(
            &mut out,
            "rosterd_run_duration_seconds_sum",
            "counter",
            "Seconds spent in runs by kind and outcome.",
        );
        for ((kind, outcome), secs) in &s.run_seconds {
            let _ = writeln!(
                out,
                "rosterd_run_duration_seconds_sum{{kind=\"{kind}\",outcome=\"{outcome}\"}} {secs}"
            );
        }
        help(
            &mut out,
            "rosterd_membership_changes_total",
            "counter",
            "Membership changes recorded by runs.",
        );
        let _ = writeln!(out, "rosterd_membership_changes_total {}", s.changes);
        help(
            &mut out,
            "rosterd_pushes_total",
            "counter",
            "Group pushes by target and outcome.",
        );
        for ((target, kind), n) in &s.pushed {
            let _ = writeln!(
                out,
                "rosterd_pushes_total{{target=\"{}\",outcome=\"{kind}\"}} {n}",
                label(target)
            );
        }
        help(
            &mut out,
            "rosterd_held_pushes",
            "gauge",
            "Pushes held by the failsafe in the last run.",
        );
        let _ = writeln!(out, "rosterd_held_pushes {}", s.held);
        help(
            &mut out,
            "rosterd_last_successful_push_timestamp_seconds",
            "gauge",
            "When each target last took every change it was sent.",
        );
        for (target, at) in &s.last_success {
            let _ = writeln!(
                out,
                "rosterd_last_successful_push_timestamp_seconds{{target=\"{}\"}} {at}",
                label(target)
            );
        }
        help(
            &mut out,
            "rosterd_unprovisioned_users",
            "gauge",
            "Workers without an account, per target.",
        );
        for (target, n) in unprovisioned {
            let _ = writeln!(
                out,
                "rosterd_unprovisioned_users{{target=\"{}\"}} {n}",
                label(target)
            );
        }
        help(
            &mut out,
            "rosterd_group_members",
            "gauge",
            "Members of each group after the last run.",
        );
        for (group, n) in groups {
            let _ = writeln!(
                out,
                "rosterd_group_members{{group=\"{}\"}} {n}",
                label(group)
            );
        }
        help(
            &mut out,
            "rosterd_rules_groups",
            "gauge",
            "Groups in the rules in force.",
        );
        let _ = writeln!(out, "rosterd_rules_groups {}", s.rules_groups);
        help(
            &mut out,
            "rosterd_rules_load_ok",
            "gauge",
            "1 when the newest rules on disk are the ones in force.",
        );
        let _ = writeln!(out, "rosterd_rules_load_ok {}", u8::from(s.rules_ok));
        help(
            &mut out,
            "rosterd_rules_load_errors_total",
            "counter",
            "Reloads refused because the rules or config had errors.",
        );
        let _ = writeln!(
            out,
            "rosterd_rules_load_errors_total {}",
            s.rules_load_errors
        );
        out
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
