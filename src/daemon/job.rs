//! One job of the daemon's work loop: a sync, a reconcile or a push, from the export to the
//! targets, and its one account (log line, metrics, the run's stored outcome).

use std::sync::Arc;

use super::{metrics, DaemonError, Job, Shared};
use crate::engine::guardrails::Violation;
use crate::push::{self, Desired};
use crate::store::{HoldStatus, Store};

/// One job: refresh and evaluate into the store, then push; ends with one summary line.
pub(super) async fn run_job(shared: &Shared, job: Job) {
    *crate::locks::lock(&shared.running) = Some(job.clone());
    // Every write of this run is fenced with the leadership this process holds now.
    let store = shared.store.fenced();
    let progress = Arc::new(push::Progress::default());
    *crate::locks::lock(&shared.progress) = Some(Arc::clone(&progress));
    if !matches!(job, Job::Push(_)) {
        // This run uses the rules in force: the sync a rules change asked for is done.
        *crate::locks::lock(&shared.rules_sync_at) = None;
    }
    let started = std::time::Instant::now();
    let started_at = crate::clock::now_utc();
    let config = shared.config();
    let rules = shared.rules();
    // The guardrails broken before this run, so that the webhooks hear of those it breaks anew.
    let broken_before: Option<Vec<Violation>> = match &config.notifications {
        Some(_) => shared
            .store
            .current_violations()
            .await
            .inspect_err(|e| tracing::warn!("the guardrails broken before this run could not be read, so the webhooks hear of none it breaks: {e}"))
            .ok(),
        None => None,
    };
    let result = async {
        let outcome = match &job {
            Job::Push(_) => None,
            Job::Sync | Job::Reconcile => {
                let inputs = crate::cycle::Inputs {
                    config: Arc::clone(&config),
                    rules: Arc::clone(&rules),
                    as_of: crate::clock::today_utc(),
                    now: crate::clock::now_utc(),
                    kind: job.as_str(),
                };
                let mut warm = shared.warm.lock().await;
                warm.full_evaluation_every = config.daemon.full_evaluation_every;
                let outcome = crate::cycle::run_warm(&inputs, &store, &mut warm).await?;
                shared.keep_evaluated(&warm, &rules, inputs.as_of);
                *crate::locks::lock(&shared.in_flight) = Some(outcome.run_id());
                Some(outcome)
            }
        };
        let options = push::Options {
            reconcile: job == Job::Reconcile,
            group: match &job {
                Job::Push(group) => Some(group.clone()),
                _ => None,
            },
            progress: Some(Arc::clone(&progress)),
            ..push::Options::default()
        };
        let warm = shared.warm.lock().await;
        let desired = Desired::from_kept_or_store(&warm, &store, &config).await?;
        drop(warm);
        let report = push::run(&config, &rules, &desired, &store, &options).await?;
        Ok::<_, DaemonError>((outcome, report))
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((outcome, report)) => {
            let summary = metrics::Summary::of(outcome.as_ref(), &report);
            let (_, reason) = summary.run_outcome();
            if let Some(run) = outcome.as_ref().map(crate::cycle::Outcome::run_id) {
                if let Err(e) = summary.record(&store, run).await {
                    tracing::warn!(run, "the run's outcome could not be recorded: {e}");
                }
            }
            shared
                .metrics
                .run_finished(&job, summary.outcome(), seconds, &summary);
            tracing::info!(
                kind = job.as_str(),
                run = outcome.as_ref().map(crate::cycle::Outcome::run_id),
                outcome = summary.outcome(),
                seconds,
                membership_changes = summary.changes,
                snapshot_held = summary.snapshot_held,
                pushed_added = summary.added,
                pushed_removed = summary.removed,
                pushes_held = summary.pushes_held,
                outbox_settled = summary.outbox_settled,
                guardrails_violated = summary.guardrails_violated,
                push_failures = summary.failures,
                failed_targets = summary.failed_targets.join(","),
                reason = reason.as_deref().unwrap_or(""),
                "run finished"
            );
            if summary.pushes_held > 0 {
                tell_new_holds(&config, &shared.store, started_at).await;
            }
            if outcome.is_some() {
                tell_reviews_due(&config, &rules, &shared.store).await;
            }
            if let (Some(before), Some(crate::cycle::Outcome::Applied { violations, .. })) =
                (&broken_before, &outcome)
            {
                tell_new_violations(&config, before, violations);
            }
        }
        Err(e) => {
            shared
                .metrics
                .run_finished(&job, "failed", seconds, &metrics::Summary::default());
            tracing::error!(kind = job.as_str(), seconds, "run failed: {e}");
        }
    }
    super::follow::follow_requests(shared).await;
    *crate::locks::lock(&shared.running) = None;
    *crate::locks::lock(&shared.in_flight) = None;
    *crate::locks::lock(&shared.progress) = None;
}

/// With `notifications.reviews_due_daily`, tells the webhooks once a day of the entries due
/// for an access review (or expiring within 14 days), after the day's first run.
async fn tell_reviews_due(
    config: &crate::config::Config,
    rules: &crate::rules::RuleSet,
    store: &Store,
) {
    if !config
        .notifications
        .as_ref()
        .is_some_and(|n| n.reviews_due_daily)
    {
        return;
    }
    let as_of = crate::clock::today_utc();
    let due = crate::access::due(rules, as_of, 0);
    if due.is_empty() {
        return;
    }
    let now = crate::clock::stamp(crate::clock::now_utc());
    match store
        .claim_daily_notice("reviews_due", &as_of.to_string(), &now)
        .await
    {
        Ok(true) => {
            tracing::info!(
                entries = due.len(),
                "telling the webhooks of the reviews due today"
            );
            crate::notify::tell(
                config,
                vec![crate::notify::Event::ReviewsDue { as_of, due }],
            );
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("the reviews due could not be told: {e}"),
    }
}

/// Tells the webhooks of the guardrails that only warn and that this run broke while the
/// run before did not (one that holds pushes is told as the hold it makes).
fn tell_new_violations(config: &crate::config::Config, before: &[Violation], now: &[Violation]) {
    let new: Vec<crate::notify::Event> = now
        .iter()
        .filter(|v| !v.hold && !before.iter().any(|b| b.guardrail == v.guardrail))
        .cloned()
        .map(crate::notify::Event::Guardrail)
        .collect();
    if !new.is_empty() {
        tracing::info!(
            guardrails = new.len(),
            "telling the webhooks of guardrails this run broke"
        );
    }
    crate::notify::tell(config, new);
}

/// Tells the webhooks of the holds this run made (`since`: when it started); in the
/// background, so that a slow receiver holds up no run.
async fn tell_new_holds(
    config: &crate::config::Config,
    store: &Store,
    since: chrono::DateTime<chrono::Utc>,
) {
    use chrono::SubsecRound as _;
    // The push stamps a hold to the millisecond.
    let since = since.trunc_subsecs(3);
    if config.notifications.is_none() {
        return;
    }
    let holds = match store.push_holds(Some(HoldStatus::Held)).await {
        Ok(holds) => holds,
        Err(e) => return tracing::warn!("the new holds could not be read to notify: {e}"),
    };
    let new: Vec<_> = holds
        .into_iter()
        .filter(|h| chrono::DateTime::parse_from_rfc3339(&h.created_at).is_ok_and(|t| t >= since))
        .collect();
    if new.is_empty() {
        return;
    }
    tracing::info!(
        holds = new.len(),
        "telling the webhooks of this run's new holds"
    );
    crate::notify::tell(
        config,
        new.into_iter().map(crate::notify::Event::Hold).collect(),
    );
}
