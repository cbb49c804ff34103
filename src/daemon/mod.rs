//! `rosterd run`: the daemon. One loop runs the scheduled work (sync, and a periodic
//! reconcile) one job at a time: a job that falls due while another runs is coalesced into a
//! single later run. The rules folder is polled and SIGHUP reloads the config and the rules;
//! a reload swaps only a fully valid set, and a broken one keeps the last good rules in
//! force (reported in the log, the API and the metrics). SIGTERM and SIGINT stop new work and
//! wait a bounded time for the run in flight: changes it has not sent stay in the outbox and
//! go first at the next start. The admin API (`api`) serves health, metrics and state.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::push;
use crate::rules::RuleSet;
use crate::store::{RunOutcome, Store};

mod api;
mod follow;
mod job;
mod leader;
mod metrics;
mod ui;

pub use crate::schedule::Schedule;
pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file, or a setting the daemon checks when it starts (the API token, the
    /// console's).
    #[error("{0}")]
    Config(String),
    /// The rules do not load, or the console's roles name groups they lack.
    #[error("{0}")]
    Rules(String),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Cycle(#[from] crate::cycle::CycleError),
    #[error(transparent)]
    Push(#[from] push::PushError),
    #[error("stored snapshot {id} cannot be read: {message}")]
    Corrupt { id: i64, message: String },
    /// Work handed to a blocking thread did not come back (it panicked).
    #[error("work on a blocking thread failed: {0}")]
    Blocking(#[from] tokio::task::JoinError),
    #[error("the admin API cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl DaemonError {
    /// A setting's error, told with the config file it is in.
    fn in_file(self, path: &std::path::Path) -> DaemonError {
        match self {
            DaemonError::Config(message) => {
                DaemonError::Config(format!("{}: {message}", path.display()))
            }
            other => other,
        }
    }
}

/// The address a request came from (the connection's peer), for what is limited per
/// client.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The job running now, as the API and the console name it.
fn running(shared: &Shared) -> Option<&'static str> {
    crate::locks::lock(&shared.running)
        .as_ref()
        .map(Job::as_str)
}

/// The console's routes, when the config has a `ui:` section; the API merges them beside its
/// own (built here so that the API and the console do not import each other).
fn console_router(shared: &Arc<Shared>) -> Option<axum::Router<Arc<Shared>>> {
    shared
        .console
        .as_ref()
        .map(|console| ui::router(Arc::clone(shared), Arc::clone(console)))
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// Refresh the export, evaluate, store, push every group.
    Sync,
    /// A sync that reads every pushed group back and repairs drift.
    Reconcile,
    /// Push one group's stored members now, without refreshing or evaluating.
    Push(String),
}

impl Job {
    pub fn as_str(&self) -> &'static str {
        match self {
            Job::Sync => "sync",
            Job::Reconcile => "reconcile",
            Job::Push(_) => "push",
        }
    }
}

/// The daemon's state, shared by the loop, the reloads and the API.
pub struct Shared {
    config_path: PathBuf,
    /// The config and rules in force, with their revision and the last refusal: one value,
    /// swapped whole, so that no reader sees new rules with the old revision.
    in_force: RwLock<Arc<InForce>>,
    /// Held by a reload from reading what is in force to swapping it: a SIGHUP and a rules
    /// change on disk load one after the other.
    reloading: Mutex<()>,
    /// Counts the config reloads that took: the work loop recomputes its schedules when it
    /// changes.
    reloads: std::sync::atomic::AtomicU64,
    /// When the sync that follows a rules change is due, if one is.
    rules_sync_at: Mutex<Option<DateTime<Utc>>>,
    store: Store,
    metrics: Metrics,
    /// Jobs asked for and not yet started (a set: asking twice runs once).
    pending: Mutex<BTreeSet<Job>>,
    wake: tokio::sync::Notify,
    /// The job running now, if any.
    running: Mutex<Option<Job>>,
    /// The run whose push is in flight, to record as cut short if the daemon stops first.
    in_flight: Mutex<Option<i64>>,
    /// How far the running job's push is.
    progress: Mutex<Option<Arc<push::Progress>>>,
    leadership: leader::Leadership,
    /// The snapshot in force evaluated under the rules in force, for explain.
    evaluated: Mutex<Option<Arc<Evaluated>>>,
    token: crate::secret::Secret,
    /// The web console, when the config has a `ui:` section.
    console: Option<Arc<ui::Console>>,
    /// The store's worker numbering as last read (it only grows), for the console's pages.
    worker_ids: tokio::sync::Mutex<Arc<crate::store::WorkerIds>>,
    /// What the last run kept for the next (the snapshot in force and its evaluation).
    warm: tokio::sync::Mutex<crate::cycle::Warm>,
}

/// What is in force, read as one.
pub struct InForce {
    pub config: Arc<Config>,
    /// The last good rules.
    pub rules: Arc<RuleSet>,
    /// Their revision.
    pub revision: Revision,
    /// The newest rules or config on disk when they were refused, with why.
    pub refused: Option<Refused>,
}

/// Which rules are in force: the git commit of the rules folder (when it is a checkout), the
/// digest of the rule files ([`RuleSet::digest`]), and when they were loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revision {
    pub commit: Option<String>,
    pub digest: String,
    pub loaded_at: String,
    pub groups: usize,
}

impl Revision {
    fn of(config: &Config, rules: &RuleSet) -> Revision {
        Revision {
            commit: crate::revision::git_commit(&config.rules.dir),
            digest: rules.digest(&config.rules.dir),
            loaded_at: crate::clock::stamp(crate::clock::now_utc()),
            groups: rules.groups().len(),
        }
    }
}

/// A revision of the rules (or the config) that was not loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refused {
    pub commit: Option<String>,
    pub at: String,
    /// The diagnostics, as `rosterd check` prints them.
    pub diagnostics: String,
}

/// The stored snapshot in force, evaluated under a rule set.
pub(crate) struct Evaluated {
    snapshot_id: i64,
    rules: Arc<RuleSet>,
    snapshot: crate::directory::Snapshot,
    evaluation: crate::engine::Evaluation,
}

/// The current snapshot under the rules in force as of today; kept until either changes.
/// `None` before the first run stored a snapshot.
async fn evaluated(shared: &Shared) -> Result<Option<Arc<Evaluated>>, DaemonError> {
    let Some(current) = shared.store.current_snapshot().await? else {
        return Ok(None);
    };
    let rules = shared.rules();
    let as_of = crate::clock::today_utc();
    {
        let cached = crate::locks::lock(&shared.evaluated);
        if let Some(e) = cached.as_ref().filter(|e| {
            e.snapshot_id == current.id
                && Arc::ptr_eq(&e.rules, &rules)
                && e.evaluation.as_of == as_of
        }) {
            return Ok(Some(Arc::clone(e)));
        }
    }
    let rows = shared.store.snapshot_workers(current.id).await?;
    let schema = Arc::new(crate::directory::Schema::from_config(
        &shared.config().directory,
    ));
    let evaluated = tokio::task::spawn_blocking(move || {
        let snapshot =
            crate::directory::Snapshot::from_rows_json(schema, &rows).map_err(|message| {
                DaemonError::Corrupt {
                    id: current.id,
                    message,
                }
            })?;
        let evaluation = crate::engine::evaluate(&snapshot, &rules, as_of);
        Ok::<_, DaemonError>(Evaluated {
            snapshot_id: current.id,
            rules,
            snapshot,
            evaluation,
        })
    })
    .await??;
    let evaluated = Arc::new(evaluated);
    *crate::locks::lock(&shared.evaluated) = Some(Arc::clone(&evaluated));
    Ok(Some(evaluated))
}

impl Shared {
    /// The run's evaluation of the snapshot in force, for the console and explain: they
    /// then need not read the snapshot back and evaluate it again.
    fn keep_evaluated(&self, warm: &crate::cycle::Warm, rules: &Arc<RuleSet>, as_of: NaiveDate) {
        let Some((snapshot_id, snapshot, evaluation)) = warm.evaluated(rules, as_of) else {
            return;
        };
        let mut cached = crate::locks::lock(&self.evaluated);
        if cached.as_ref().is_some_and(|e| {
            e.snapshot_id == snapshot_id
                && Arc::ptr_eq(&e.rules, rules)
                && e.evaluation.as_of == as_of
        }) {
            return;
        }
        *cached = Some(Arc::new(Evaluated {
            snapshot_id,
            rules: Arc::clone(rules),
            snapshot: snapshot.clone(),
            evaluation: evaluation.clone(),
        }));
    }

    /// The store's worker numbering now: the one kept, plus the workers numbered since.
    async fn worker_ids(&self) -> Result<Arc<crate::store::WorkerIds>, crate::store::StoreError> {
        let mut kept = self.worker_ids.lock().await;
        let new = self.store.workers_numbered_after(&kept).await?;
        if !new.is_empty() {
            let ids = Arc::make_mut(&mut kept);
            for (id, key) in new {
                if ids.number(&key) != id {
                    // Renumbered under us (a database restored from a backup): read it whole.
                    *kept = Arc::new(self.store.worker_ids().await?);
                    break;
                }
            }
        }
        Ok(Arc::clone(&kept))
    }

    /// Releases a held push for `by` (who approved), logs it, and queues a sync to send it
    /// when this process leads; on a standby the leader's next sync sends it.
    async fn approve_hold(
        &self,
        id: i64,
        by: &str,
    ) -> Result<crate::store::PushHold, crate::store::StoreError> {
        let now = crate::clock::stamp(crate::clock::now_utc());
        let hold = self.store.approve_push_hold(id, &now, by).await?;
        tracing::info!(hold = hold.id, group = %hold.group, target = %hold.target, approved_by = by, "push hold approved");
        if self.leadership.leading() {
            self.request(Job::Sync);
        }
        Ok(hold)
    }

    /// Everything in force, as one consistent value.
    fn in_force(&self) -> Arc<InForce> {
        Arc::clone(&crate::locks::read(&self.in_force))
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.in_force().config)
    }

    fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.in_force().rules)
    }

    fn revision(&self) -> Revision {
        self.in_force().revision.clone()
    }

    fn refused(&self) -> Option<Refused> {
        self.in_force().refused.clone()
    }

    /// Asks for a job; the loop starts it when nothing runs.
    pub fn request(&self, job: Job) {
        crate::locks::lock(&self.pending).insert(job);
        self.wake.notify_one();
    }

    /// Loads the config (when `with_config` is set) and the rules, and swaps them in only when
    /// both are good. A config that took has the work loop recompute its schedules; rules
    /// that differ from those in force have a sync follow within
    /// `daemon.sync_after_rules_change_seconds`. Returns whether anything was swapped.
    fn reload(&self, with_config: bool) -> bool {
        let _one_at_a_time = crate::locks::lock(&self.reloading);
        let result = (|| {
            let config = if with_config {
                Arc::new(
                    Config::load(&self.config_path)
                        .map_err(|e| DaemonError::Config(e.to_string()))?,
                )
            } else {
                self.config()
            };
            let rules = load_rules(&config)?;
            Ok::<_, DaemonError>((config, rules))
        })();
        match result {
            Ok((config, rules)) => {
                let revision = Revision::of(&config, &rules);
                let changed = revision.digest != self.revision().digest;
                let after = config.daemon.sync_after_rules_change_seconds;
                tracing::info!(
                    groups = revision.groups,
                    commit = revision.commit.as_deref().unwrap_or(""),
                    digest = %revision.digest,
                    changed,
                    "rules loaded"
                );
                self.metrics.rules_loaded(revision.groups);
                *crate::locks::write(&self.in_force) = Arc::new(InForce {
                    config,
                    rules: Arc::new(rules),
                    revision,
                    refused: None,
                });
                if changed && after > 0.0 {
                    let at = crate::clock::now_utc()
                        + chrono::Duration::milliseconds((after * 1e3) as i64);
                    let mut due = crate::locks::lock(&self.rules_sync_at);
                    // A second change before the sync does not put it off.
                    let at = *due.get_or_insert(at);
                    tracing::info!(at = %crate::clock::stamp(at), "a sync follows the rules change");
                }
                if with_config {
                    self.reloads
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                self.wake.notify_one();
                true
            }
            Err(e) => {
                tracing::error!("the new rules or config were not loaded; the last good ones stay in force:\n{e}");
                let was = self.in_force();
                let refused = Refused {
                    commit: crate::revision::git_commit(&was.config.rules.dir),
                    at: crate::clock::stamp(crate::clock::now_utc()),
                    diagnostics: e.to_string(),
                };
                // Reloads are one at a time, so nothing else swapped it meanwhile.
                *crate::locks::write(&self.in_force) = Arc::new(InForce {
                    config: Arc::clone(&was.config),
                    rules: Arc::clone(&was.rules),
                    revision: was.revision.clone(),
                    refused: Some(refused),
                });
                self.metrics.rules_load_failed();
                false
            }
        }
    }
}

/// Records, counts and logs run `run` as cut short by the shutdown, as a finished run is: a
/// search for how runs ended finds it in the store, the metrics and the log alike.
async fn record_cut_short(shared: &Shared, run: i64, job: Option<&Job>, grace: Duration) {
    let reason = format!(
        "the daemon was stopped before the push finished (shutdown_timeout_seconds: {}); what is unsent stays in the outbox for the next run",
        grace.as_secs_f64()
    );
    let outcome = RunOutcome::CutShort.as_str();
    if let Some(job) = job {
        shared
            .metrics
            .run_finished(job, outcome, grace.as_secs_f64(), &Default::default());
    }
    tracing::info!(
        kind = job.map(Job::as_str),
        run,
        outcome,
        reason = reason.as_str(),
        "run finished"
    );
    let nothing_sent = serde_json::json!({});
    let recorded =
        shared
            .store
            .record_run_outcome(run, RunOutcome::CutShort, Some(&reason), &nothing_sent);
    match tokio::time::timeout(Duration::from_secs(5), recorded).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(run, "the run's outcome could not be recorded: {e}"),
        Err(_) => tracing::warn!(run, "the run's outcome could not be recorded within 5 s"),
    }
}

/// With the console on, evaluates the snapshot in force now (after a start or a run) so that
/// the first page to need it does not wait for it.
fn warm_console(shared: &Arc<Shared>) {
    if shared.console.is_some() {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            if let Err(e) = evaluated(&shared).await {
                tracing::warn!("console: cannot evaluate the snapshot in force: {e}");
            }
        });
    }
}

/// Reloads on a blocking thread: checking a large rule set takes its time, and the API's
/// probes must answer meanwhile. A standby's console is warmed with the new rules at once;
/// the leader's is warmed after the sync that new rules bring, not beside it.
async fn reload_off_the_runtime(shared: &Arc<Shared>, config: bool) -> bool {
    let reloading = Arc::clone(shared);
    let reloaded = tokio::task::spawn_blocking(move || reloading.reload(config))
        .await
        .unwrap_or(false);
    if reloaded && !shared.leadership.leading() {
        warm_console(shared);
    }
    reloaded
}

fn load_rules(config: &Config) -> Result<RuleSet, DaemonError> {
    let schema = crate::directory::Schema::from_config(&config.directory);
    let rules = crate::rules::load(
        &config.rules.dir,
        &crate::rules::Context::from_config(config, &schema),
    )
    .map_err(|e| DaemonError::Rules(e.to_string()))?;
    if let Some(ui) = &config.ui {
        ui.check_groups(&config.path, &config.rules.dir, |g| {
            rules.lookup(g).is_some()
        })
        .map_err(DaemonError::Rules)?;
    }
    Ok(rules)
}

/// The fewest bytes an API token may have.
const MIN_TOKEN_BYTES: usize = 16;

/// The API token as given, or why it cannot be one. A token that a client could never send
/// in an `Authorization` header (blank, with whitespace or control characters) or that is
/// short enough to guess is refused at start, not found out at the first request. The reason
/// never quotes the token.
fn api_token(token: String) -> Result<String, &'static str> {
    if token.trim().is_empty() {
        return Err("is empty or blank");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "has whitespace or control characters, which no client can send in a bearer token",
        );
    }
    if token.len() < MIN_TOKEN_BYTES {
        return Err("is shorter than 16 bytes");
    }
    Ok(token)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf) -> Result<(), DaemonError> {
    let config = Config::load(&config_path).map_err(|e| DaemonError::Config(e.to_string()))?;
    let refuse = |why: &str| {
        DaemonError::Config(format!(
            "{}: daemon.api_token_env: the environment variable `{}` {why}\nhelp: every API route but /healthz and /readyz needs this bearer token; make one with `openssl rand -hex 32`",
            config_path.display(),
            config.daemon.api_token_env
        ))
    };
    let token = match std::env::var(&config.daemon.api_token_env) {
        Ok(t) => crate::secret::Secret::new(api_token(t).map_err(&refuse)?),
        Err(_) => return Err(refuse("is not set")),
    };
    let rules = load_rules(&config)?;
    let console = match &config.ui {
        Some(ui) => Some(Arc::new(
            ui::Console::new(ui, config.daemon.listen).map_err(|e| e.in_file(&config_path))?,
        )),
        None => None,
    };
    let url = config
        .database_url()
        .map_err(|e| DaemonError::Config(e.to_string()))?;
    let store = Store::open(url).await?;
    let listener = tokio::net::TcpListener::bind(config.daemon.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.daemon.listen,
            source,
        })?;
    let shared = Arc::new(Shared {
        config_path,
        metrics: Metrics::default(),
        in_force: RwLock::new(Arc::new(InForce {
            revision: Revision::of(&config, &rules),
            rules: Arc::new(rules),
            config: Arc::new(config),
            refused: None,
        })),
        reloading: Mutex::new(()),
        reloads: std::sync::atomic::AtomicU64::new(0),
        rules_sync_at: Mutex::new(None),
        store,
        pending: Mutex::new(BTreeSet::new()),
        wake: tokio::sync::Notify::new(),
        running: Mutex::new(None),
        in_flight: Mutex::new(None),
        progress: Mutex::new(None),
        leadership: leader::Leadership::default(),
        evaluated: Mutex::new(None),
        token,
        console,
        worker_ids: tokio::sync::Mutex::new(Arc::default()),
        warm: tokio::sync::Mutex::new(crate::cycle::Warm::default()),
    });
    shared.metrics.rules_loaded(shared.rules().groups().len());
    warm_console(&shared);
    tracing::info!(listen = %listener.local_addr().map_or(String::new(), |a| a.to_string()), "rosterd is running");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api = tokio::spawn(api::serve(listener, Arc::clone(&shared), stop_rx.clone()));
    let watcher = tokio::spawn(watch_rules(Arc::clone(&shared), stop_rx.clone()));
    let hangups = tokio::spawn(reload_on_hangup(Arc::clone(&shared), stop_rx.clone()));
    // The leadership outlives the work loop: a standby must not take over while a run is
    // still in flight here.
    let (resign_tx, resign_rx) = tokio::sync::watch::channel(false);
    let leadership = leader::spawn(Arc::clone(&shared), resign_rx);
    // The work loop runs on this task: a push borrows across awaits in ways that a spawned
    // task could not.
    // Boxed, so that a run cut short can be dropped (its connections returned, its
    // transaction rolled back) before the store closes: a pool waits for every connection.
    let mut work = Box::pin(work_loop(Arc::clone(&shared), stop_rx.clone()));
    // The run a SIGTERM cut short, if one was: its id, its job, and the grace it had.
    let mut cut_short: Option<(i64, Option<Job>, Duration)> = None;
    tokio::select! {
        () = &mut work => {}
        () = shutdown_signal() => {
            tracing::info!("stopping: no new work starts");
            let _ = stop_tx.send(true);
            let grace = Duration::from_secs_f64(shared.config().daemon.shutdown_timeout_seconds);
            if tokio::time::timeout(grace, &mut work).await.is_err() {
                tracing::warn!(
                    seconds = grace.as_secs_f64(),
                    "the run in flight did not finish in time; its unsent changes stay in the outbox"
                );
                let run = *crate::locks::lock(&shared.in_flight);
                let job = crate::locks::lock(&shared.running).clone();
                cut_short = run.map(|run| (run, job, grace));
            }
        }
    }
    let _ = stop_tx.send(true);
    // The run is over or cut short; only then may a standby take over. Dropped before its
    // outcome is recorded: it may hold the store's writer (a confirmation mid-commit).
    drop(work);
    if let Some((run, job, grace)) = cut_short {
        record_cut_short(&shared, run, job.as_ref(), grace).await;
    }
    let _ = resign_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), leadership).await;
    watcher.abort();
    hangups.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), api).await;
    if tokio::time::timeout(Duration::from_secs(5), shared.store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database connections did not close within 5 s; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn reload_on_hangup(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config and the rules");
                    reload_off_the_runtime(&shared, true).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = stop.changed().await;
        drop(shared);
    }
}

/// Polls the rules folder; a change is loaded once it has held still for one more poll.
async fn watch_rules(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut loaded = fingerprint_off_the_runtime(&shared).await;
    let mut seen = loaded.clone();
    loop {
        let every = Duration::from_secs_f64(shared.config().daemon.rules_poll_seconds);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = fingerprint_off_the_runtime(&shared).await;
        if now != seen {
            // Still changing (a checkout in progress): look again next time.
            seen = now;
            continue;
        }
        if now != loaded {
            tracing::info!("the rules changed on disk");
            reload_off_the_runtime(&shared, false).await;
            loaded = now;
        }
    }
}

/// [`fingerprint`] on a blocking thread: it reads and hashes every rule file.
async fn fingerprint_off_the_runtime(shared: &Shared) -> Vec<(PathBuf, u64)> {
    let dir = shared.config().rules.dir.clone();
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or_default()
}

/// Every file under the rules folder (following the symlinks git-sync swaps) with its size,
/// modification time and a hash of its bytes.
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(_) => {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&path).unwrap_or_default().hash(&mut h);
                    out.push((path, h.finish()));
                }
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Runs due and requested jobs one at a time until stopped.
async fn work_loop(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut next_sync = None;
    let mut next_reconcile = None;
    let mut reloads_seen = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        // A reloaded config may bring other schedules: their next times are computed anew
        // instead of waiting for the old ones to fire.
        let reloads = shared.reloads.load(std::sync::atomic::Ordering::SeqCst);
        if reloads != reloads_seen {
            reloads_seen = reloads;
            next_sync = None;
            next_reconcile = None;
        }
        if !shared.leadership.leading() {
            // On standby: the leader runs the schedule. Look again when woken or soon.
            next_sync = None;
            next_reconcile = None;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shared.wake.notified() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let config = shared.config();
        let zone = &config.daemon.time_zone;
        let now = crate::clock::now_utc();
        // Schedules were validated with the config; a reload may change them.
        let sync = Schedule::parse(&config.daemon.sync, zone).ok();
        let reconcile = Schedule::parse(&config.daemon.reconcile, zone).ok();
        let due = |next: &mut Option<DateTime<Utc>>, schedule: &Option<Schedule>| {
            let first = next.get_or_insert_with(|| {
                schedule
                    .as_ref()
                    .and_then(|s| s.next_after(now))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            });
            if *first <= now {
                // Fire times missed while a job ran collapse into this one run.
                *next = schedule.as_ref().and_then(|s| s.next_after(now));
                true
            } else {
                false
            }
        };
        if due(&mut next_reconcile, &reconcile) {
            shared.request(Job::Reconcile);
        }
        if due(&mut next_sync, &sync) {
            shared.request(Job::Sync);
        }
        let rules_sync_at = *crate::locks::lock(&shared.rules_sync_at);
        if rules_sync_at.is_some_and(|at| at <= now) {
            tracing::info!("syncing after the rules change");
            shared.request(Job::Sync);
        }
        let job = {
            let mut pending = crate::locks::lock(&shared.pending);
            // A reconcile does all that a sync does, and a sync all that a push does.
            let whole = [Job::Reconcile, Job::Sync]
                .into_iter()
                .find(|j| pending.contains(j));
            if let Some(job) = whole {
                pending.clear();
                Some(job)
            } else {
                pending.pop_first()
            }
        };
        if let Some(job) = job {
            job::run_job(&shared, job).await;
            warm_console(&shared);
            continue;
        }
        let wake_at = [next_sync, next_reconcile, rules_sync_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + chrono::Duration::hours(1));
        let sleep = (wake_at - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
