//! The daemon's counters, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::Job;
use crate::push::status::TargetStatus;
pub use crate::push::Summary;
use crate::store::HoldStatus;

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
        crate::locks::lock(&self.state)
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
        for (target, counts) in &summary.by_target {
            for (kind, n) in counts {
                *s.pushed.entry((target.clone(), kind)).or_default() += n;
            }
        }
        let now = crate::clock::now_utc().timestamp() as f64;
        for target in &summary.answered_targets {
            s.last_success.insert(target.clone(), now);
        }
    }

    /// The Prometheus text; `groups` are the stored group sizes, `unprovisioned` the
    /// workers without an account per target and `targets` the status model, read when
    /// scraped.
    pub fn render(
        &self,
        groups: &BTreeMap<String, usize>,
        unprovisioned: &BTreeMap<String, usize>,
        progress: &[crate::push::progress::Numbers],
        violations: &[crate::engine::guardrails::Violation],
        targets: &BTreeMap<String, TargetStatus>,
        leading: bool,
    ) -> String {
        let s = self.state();
        let mut out = String::new();
        guardrails_and_progress(&mut out, violations, progress);
        console(&mut out, &s);
        runs(&mut out, &s, leading);
        targets_of(&mut out, &s, targets, unprovisioned);
        groups_and_rules(&mut out, &s, groups);
        out
    }
}

/// The metrics of the guardrails broken and the running push.
fn guardrails_and_progress(
    out: &mut String,
    violations: &[crate::engine::guardrails::Violation],
    progress: &[crate::push::progress::Numbers],
) {
    metric(
        out,
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
        out,
        "rosterd_push_requests_remaining",
        "gauge",
        "Requests the running push still has to send to the target (estimated; none when no push runs).",
        per_target(&remaining),
    );
}

/// The metrics of the console.
fn console(out: &mut String, s: &State) {
    metric(
        out,
        "rosterd_console_sign_ins_total",
        "counter",
        "Web console sign-ins by outcome: ok, refused (by the provider, or not this browser's or expired), error (provider unreachable, token not verified).",
        s.sign_ins
            .iter()
            .map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), n.to_string())),
    );
    metric(
        out,
        "rosterd_console_refused_total",
        "counter",
        "Web console requests refused: csrf (missing or wrong token), origin (posted from another site), role (not an approver, or not one of the group's), own_request (deciding a request or review entry of one's own), session (none), sign_in_rate (an address starting more than 30 sign-ins a minute, or 10,000 in progress).",
        s.refused
            .iter()
            .map(|(w, n)| (format!("{{why=\"{w}\"}}"), n.to_string())),
    );
    metric(
        out,
        "rosterd_console_approvals_total",
        "counter",
        "Held pushes approved in the web console.",
        [(String::new(), s.approvals.to_string())],
    );
}

/// The metrics of leadership and runs.
fn runs(out: &mut String, s: &State, leading: bool) {
    metric(
        out,
        "rosterd_leader",
        "gauge",
        "1 on the process that runs the scheduled work, 0 on a standby.",
        [(String::new(), u8::from(leading).to_string())],
    );
    metric(
        out,
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
        out,
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
        out,
        "rosterd_membership_changes_total",
        "counter",
        "Membership changes recorded by runs.",
        [(String::new(), s.changes.to_string())],
    );
    metric(
        out,
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
}

/// The metrics of each target, from the status model.
fn targets_of(
    out: &mut String,
    s: &State,
    targets: &BTreeMap<String, TargetStatus>,
    unprovisioned: &BTreeMap<String, usize>,
) {
    metric(
        out,
        "rosterd_held_pushes",
        "gauge",
        "Pushes held by the removal failsafe or a guardrail and waiting for approval, per target.",
        per_target(
            &targets
                .iter()
                .map(|(t, m)| {
                    let held = m.holds.iter().filter(|h| h.status == HoldStatus::Held);
                    (t.clone(), held.count())
                })
                .collect(),
        ),
    );
    metric(
        out,
        "rosterd_target_healthy",
        "gauge",
        "1 when the target answered its last push and every group pushed to it was read back within verify_every and held what rosterd knew (as `rosterd status` says).",
        per_target(
            &targets
                .iter()
                .map(|(t, m)| (t.clone(), u8::from(m.health.is_healthy())))
                .collect(),
        ),
    );
    metric(
        out,
        "rosterd_target_health",
        "gauge",
        "The target's health by state (not_connected, not_pushed_yet, unreachable, unverified, drifted, healthy): 1 for the state it is in.",
        targets.iter().map(|(t, m)| {
            (
                format!("{{target=\"{}\",state=\"{}\"}}", label(t), m.health.state()),
                "1".to_string(),
            )
        }),
    );
    metric(
        out,
        "rosterd_outbox_requests",
        "gauge",
        "Requests stored for the target: pending (not sent yet) and failed (refused), per target.",
        targets.iter().flat_map(|(t, m)| {
            [("pending", m.pending), ("failed", m.failed)].map(|(status, n)| {
                (
                    format!("{{target=\"{}\",status=\"{status}\"}}", label(t)),
                    n.to_string(),
                )
            })
        }),
    );
    metric(
        out,
        "rosterd_last_successful_push_timestamp_seconds",
        "gauge",
        "When each target last took every change it was sent.",
        per_target(&s.last_success),
    );
    metric(
        out,
        "rosterd_unprovisioned_users",
        "gauge",
        "Workers without an account, per target.",
        per_target(unprovisioned),
    );
}

/// The metrics of groups and the rules in force.
fn groups_and_rules(out: &mut String, s: &State, groups: &BTreeMap<String, usize>) {
    metric(
        out,
        "rosterd_group_members",
        "gauge",
        "Members of each group after the last run.",
        groups
            .iter()
            .map(|(g, n)| (format!("{{group=\"{}\"}}", label(g)), n.to_string())),
    );
    metric(
        out,
        "rosterd_rules_groups",
        "gauge",
        "Groups in the rules in force.",
        [(String::new(), s.rules_groups.to_string())],
    );
    metric(
        out,
        "rosterd_rules_load_ok",
        "gauge",
        "1 when the newest rules on disk are the ones in force.",
        [(String::new(), u8::from(s.rules_ok).to_string())],
    );
    metric(
        out,
        "rosterd_rules_load_errors_total",
        "counter",
        "Reloads refused because the rules or config had errors.",
        [(String::new(), s.rules_load_errors.to_string())],
    );
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
