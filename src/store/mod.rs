//! Persistent state on sqlx: SQLite (a file, the embedded default) or PostgreSQL, chosen once
//! from the URL scheme. Both run the same SQL through `sqlx::Any`; each has its own migrations
//! folder with the same schema.
//!
//! A run's writes (its snapshot, the snapshot's diff, the run, the membership changes) are one
//! transaction: a crash leaves the previous state or the new one, never half.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::AnyPoolOptions;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Row};

use crate::secret::redact_url;

mod access;
mod carry;
mod confirmed;
mod console;
mod error;
mod holds;
mod members;
mod numbering;
mod outbox;
mod push;
mod requests;
mod runs;
mod snapshots;
mod text;

pub use access::DecisionRecord;
pub use confirmed::{Confirmed, EncodedSet};
pub use console::{ConsoleLogin, ConsoleSession};
pub use holds::PushHold;
pub use outbox::{OutboxEntry, OutboxPayload};
pub use push::{
    CachedUser, Confirmation, Drift, TargetGroup, TargetHealth, TargetLookup, TargetMember,
    TargetVerification, Unprovisioned, VerifyState,
};
pub use requests::{AccessRequest, NewRequest, RequestEvent, RequestFilter, RequestLanding};

pub use error::StoreError;
pub use members::{GroupDelta, GroupState, MemberState, CHECKPOINT_EVERY, RULE};
pub use numbering::WorkerIds;
pub use runs::{
    bounded_message, Change, HistoryEntry, Membership, RunChanges, RunCommit, RunInfo, SnapshotUse,
    MAX_RUN_MESSAGE_CHARS, RUN_COMMIT_LOCK,
};
pub use snapshots::{
    NewSnapshot, PackedRows, Pruned, RowDigests, SnapshotChange, SnapshotInfo, SNAPSHOT_CHAIN,
};
pub use text::{
    AccessDecision, ChangeKind, DriftKind, HoldStatus, OutboxAction, OutboxStatus, PairAction,
    RequestState, RunOutcome, RunStatus, SnapshotStatus,
};

/// SQLite's page cache per connection, in KiB (it grows only as it is used).
const SQLITE_CACHE_KIB: u32 = 256 * 1024;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub use crate::backend::Backend;

/// rosterd's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Writers take turns here. SQLite has one writer at a time, and its busy handler makes
    /// the others sleep and retry (1, 2, 5, 10 ms ...): with a push's concurrent groups that
    /// was most of a push's time. Queueing in the process costs nothing; PostgreSQL locks
    /// rows, so there each writer passes straight through.
    writer: Arc<tokio::sync::Mutex<()>>,
    fence: Fence,
}

/// The epoch of a run that started without the leadership: no epoch is ever it.
const NO_EPOCH: i64 = -1;

/// Fencing (PostgreSQL, several daemons): the leadership epoch a run writes under, the one
/// this process holds now (shared by every clone; 0 when it does not lead), and until when
/// its lease lets it send (milliseconds on [`lease_clock`]; 0 for no limit), and how long
/// the lease is (milliseconds; 0 before this process first leads).
#[derive(Debug, Clone, Default)]
struct Fence {
    run: Option<i64>,
    held: Arc<std::sync::atomic::AtomicI64>,
    lease_until: Arc<std::sync::atomic::AtomicU64>,
    lease: Arc<std::sync::atomic::AtomicU64>,
}

/// Milliseconds since the first call, on the monotonic clock, which runs on while the
/// process is stopped: a leader stopped past its lease finds it expired when it wakes.
fn lease_clock(at: std::time::Instant) -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    at.saturating_duration_since(base).as_millis() as u64 + 1
}

/// The epoch, share-locked to the commit, with the transaction's idle limit set to `$1` ms.
const FENCE_AND_LEASE: &str = "SELECT epoch FROM leadership, \
     set_config('idle_in_transaction_session_timeout', $1, true) WHERE id = 1 FOR SHARE OF leadership";

/// Takes the next leadership epoch for holder `$1` since `$2`, returning it.
const NEXT_EPOCH: &str = "INSERT INTO leadership (id, epoch, holder, since) VALUES (1, 1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET epoch = leadership.epoch + 1, holder = excluded.holder, \
     since = excluded.since RETURNING epoch";

/// The advisory lock that elects the leader: "rosterd" in ASCII, so that it is recognisable
/// in `pg_locks` (as `classid` 0x726f73, `objid` 0x74657264).
pub const LEADER_LOCK: i64 = 0x0072_6f73_7465_7264;

/// Held while writing; see [`Store::writing`].
pub(crate) type Writing = Option<tokio::sync::OwnedMutexGuard<()>>;

impl Store {
    /// Connects, creating a SQLite file when it does not exist, and applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate(url).await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::Url(shown.clone()))?;
        let open_err = |source| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let (url, options) = match backend {
            Backend::Sqlite => {
                let creates = !url.contains('?') || url.contains("mode=rwc");
                if let Some(file) = sqlite_file(url) {
                    let file = std::path::Path::new(file);
                    refuse_symlink(file).map_err(|e| open_err(e.into()))?;
                    if creates {
                        create_private(file).map_err(|e| open_err(e.into()))?;
                    }
                    make_private(file).map_err(|e| open_err(e.into()))?;
                }
                // Create the file on first use; wait for a busy writer instead of failing.
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA busy_timeout = 10000")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA foreign_keys = ON")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(&mut *conn)
                                .await?;
                            // SQLite's default page cache is 2 MiB. A first run at 100k
                            // workers x 2,000 groups writes 20M memberships in one
                            // transaction; with 2 MiB, pages spilled to the WAL mid-transaction
                            // and were read back through its index for every insert. The cache
                            // grows only as it is used.
                            sqlx::query(AssertSqlSafe(format!(
                                "PRAGMA cache_size = -{SQLITE_CACHE_KIB}"
                            )))
                            .execute(&mut *conn)
                            .await?;
                            Ok(())
                        })
                    });
                (url, options)
            }
            Backend::Postgres => (url.to_string(), AnyPoolOptions::new().max_connections(8)),
        };
        // sqlx logs slow statements at WARN with their full text; a large run's batches are
        // expected to take a while, so that belongs at DEBUG.
        let connect_options = sqlx::any::AnyConnectOptions::from_str(&url)
            .map_err(open_err)?
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = options
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(connect_options)
            .await
            .map_err(open_err)?;
        if backend == Backend::Sqlite {
            // WAL lets readers (the API, `history`) work while a run writes; it is a property
            // of the file, so setting it once is enough.
            set_wal(&pool).await.map_err(open_err)?;
        }
        Ok(Store {
            pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            fence: Fence::default(),
        })
    }

    pub async fn migrate(&self, url: &str) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // sqlx locks PostgreSQL during migrations, but not SQLite: two processes opening a
        // fresh file at once would both apply the first migration. An exclusive `flock` on
        // the database file itself (SQLite's own locks are `fcntl` ranges, which it does not
        // touch) lets one migrate while the other waits, then finds nothing to do; nothing is
        // left beside the database.
        let _lock = match sqlite_file(url) {
            Some(file) if self.backend == Backend::Sqlite => {
                let file = file.to_string();
                let locked = tokio::task::spawn_blocking(move || {
                    let f = std::fs::OpenOptions::new().read(true).open(&file)?;
                    f.lock()?;
                    Ok::<_, std::io::Error>(f)
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|e| StoreError::Migrate {
                    url: redact_url(url),
                    source: sqlx::migrate::MigrateError::Execute(sqlx::Error::Io(e)),
                })?;
                Some(locked)
            }
            _ => None,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redact_url(url),
                source,
            })?;
        // Still under the lock: what SQL cannot carry over, rosterd does.
        self.carry_over().await
    }

    /// Waits for this process's turn to write to SQLite (nothing to wait for on PostgreSQL).
    pub(crate) async fn writing(&self) -> Writing {
        match self.backend {
            Backend::Sqlite => Some(Arc::clone(&self.writer).lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// A write transaction, begun in this process's turn to write. A fenced store (a run of
    /// a leading daemon, [`Store::fenced`]) checks in the transaction that its leadership
    /// epoch is still the database's; on PostgreSQL the row stays locked until the commit, so
    /// a new leader's epoch comes either before (and the write is refused) or after it.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(Writing, sqlx::Transaction<'static, sqlx::Any>), StoreError> {
        self.check_fence()?;
        let writing = self.writing().await;
        let mut tx = self.pool.begin().await?;
        if let Some(mine) = self.fence.run {
            // On PostgreSQL the row stays locked until the commit, and a standby cannot take
            // the leadership while it is. Should this process hang in the middle of the
            // transaction (stopped, swapping), the server ends it once it has waited for the
            // process longer than a lease, when a standby may take over anyway (0: never).
            let lease = self.fence.lease.load(std::sync::atomic::Ordering::SeqCst);
            let now: Option<i64> = match self.backend {
                Backend::Postgres => sqlx::query_scalar(FENCE_AND_LEASE).bind(lease.to_string()),
                Backend::Sqlite => sqlx::query_scalar("SELECT epoch FROM leadership WHERE id = 1"),
            }
            .fetch_optional(&mut *tx)
            .await?;
            if now != Some(mine) {
                return Err(StoreError::Fenced {
                    mine,
                    now: match now {
                        Some(now) => format!("the database is at epoch {now}"),
                        None => "the database has no leader".into(),
                    },
                });
            }
        }
        Ok((writing, tx))
    }

    /// Records that this process leads, under a new epoch: every earlier leader's runs are
    /// fenced off from then on. The new epoch.
    pub async fn take_leadership(&self, holder: &str, now: &str) -> Result<i64, StoreError> {
        let _writing = self.writing().await;
        let epoch: i64 = sqlx::query_scalar(NEXT_EPOCH)
            .bind(holder)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        self.fence
            .held
            .store(epoch, std::sync::atomic::Ordering::SeqCst);
        Ok(epoch)
    }

    /// Takes the leadership on `conn`, the session that holds [`LEADER_LOCK`]: a new epoch
    /// (which fences off every earlier leader's writes) and a lease naming the session, in
    /// one transaction. The new epoch; this process's runs write under it until `until`
    /// unless [`Store::renew_lease`] extends it.
    pub async fn take_leadership_on(
        &self,
        conn: &mut sqlx::PgConnection,
        holder: &str,
        now: &str,
        until: std::time::Instant,
        lease: std::time::Duration,
    ) -> Result<i64, StoreError> {
        use sqlx::Connection;
        let mut tx = conn.begin().await?;
        // A write of the leader this replaces holds the epoch's row until it commits; the
        // server ends a hung one after a lease (see `begin_write`), so waiting longer than
        // that means something else holds it: give up, and look again at the next poll.
        let lease_ms = lease.as_millis().max(1);
        sqlx::query(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {lease_ms}"
        )))
        .execute(&mut *tx)
        .await?;
        let epoch: i64 = match sqlx::query_scalar(NEXT_EPOCH)
            .bind(holder)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
        {
            Ok(epoch) => epoch,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                return Err(StoreError::Conflict(format!(
                    "the leadership's epoch is still locked by a write that has not ended after {:.1} s (the lease): not taking over yet",
                    lease.as_secs_f64()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::query(
            "INSERT INTO leadership_lease (id, epoch, holder, lock_pid, renewed_at) \
             VALUES (1, $1, $2, pg_backend_pid(), extract(epoch FROM clock_timestamp())) \
             ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, holder = excluded.holder, \
             lock_pid = excluded.lock_pid, renewed_at = excluded.renewed_at",
        )
        .bind(epoch)
        .bind(holder)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.fence
            .lease_until
            .store(lease_clock(until), std::sync::atomic::Ordering::SeqCst);
        self.fence
            .lease
            .store(lease_ms as u64, std::sync::atomic::Ordering::SeqCst);
        self.fence
            .held
            .store(epoch, std::sync::atomic::Ordering::SeqCst);
        Ok(epoch)
    }

    /// Renews the lease of `epoch` on its lock session `conn`, and lets this process's runs
    /// send until `until`. False when the lease is no longer this session's (a standby took
    /// over): the caller steps down.
    pub async fn renew_lease(
        &self,
        conn: &mut sqlx::PgConnection,
        epoch: i64,
        until: std::time::Instant,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE leadership_lease SET renewed_at = extract(epoch FROM clock_timestamp()) \
             WHERE id = 1 AND epoch = $1 AND lock_pid = pg_backend_pid()",
        )
        .bind(epoch)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if renewed {
            self.fence
                .lease_until
                .store(lease_clock(until), std::sync::atomic::Ordering::SeqCst);
        }
        Ok(renewed)
    }

    /// Ends the lock session of a leader whose lease is older than `lease` by the server's
    /// clock, if that session still holds [`LEADER_LOCK`]: its epoch, the session's pid and
    /// how old the lease was. `None` when the lease is current (or there is none).
    pub async fn end_expired_lease(
        conn: &mut sqlx::PgConnection,
        lease: std::time::Duration,
    ) -> Result<Option<(i64, i32, f64)>, StoreError> {
        let row: Option<(i64, i32, f64, bool)> = sqlx::query_as(
            "SELECT l.epoch, l.lock_pid, extract(epoch FROM clock_timestamp()) - l.renewed_at, \
             pg_terminate_backend(l.lock_pid) FROM leadership_lease l \
             JOIN pg_locks k ON k.pid = l.lock_pid AND k.locktype = 'advisory' AND k.granted \
             AND k.classid::bigint = $2 AND k.objid::bigint = $3 AND k.objsubid = 1 \
             WHERE l.id = 1 AND extract(epoch FROM clock_timestamp()) - l.renewed_at > $1",
        )
        .bind(lease.as_secs_f64())
        .bind(LEADER_LOCK >> 32)
        .bind(LEADER_LOCK & 0xffff_ffff)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(epoch, pid, age, _)| (epoch, pid, age)))
    }

    /// This process no longer leads (or cannot know that it does): its runs stop at their
    /// next request or write.
    pub fn lose_leadership(&self) {
        self.fence
            .held
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.fence
            .lease_until
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// The store a run of a leading process writes with: its writes are refused once this
    /// process no longer holds the epoch it holds now. On SQLite (one process per file) it is
    /// not fenced; on PostgreSQL a process that holds no epoch (it lost the leadership just
    /// before the run) gets a store that refuses every write.
    pub fn fenced(&self) -> Store {
        let held = self.fence.held.load(std::sync::atomic::Ordering::SeqCst);
        let run = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres if held > 0 => Some(held),
            Backend::Postgres => Some(NO_EPOCH),
        };
        Store {
            fence: Fence {
                run,
                held: Arc::clone(&self.fence.held),
                lease_until: Arc::clone(&self.fence.lease_until),
                lease: Arc::clone(&self.fence.lease),
            },
            ..self.clone()
        }
    }

    /// Fails when this store is fenced and the process no longer holds its epoch: checked
    /// before every request a push sends, so a process that lost the leadership stops
    /// within one request.
    pub fn check_fence(&self) -> Result<(), StoreError> {
        let Some(mine) = self.fence.run else {
            return Ok(());
        };
        let held = self.fence.held.load(std::sync::atomic::Ordering::SeqCst);
        let until = self
            .fence
            .lease_until
            .load(std::sync::atomic::Ordering::SeqCst);
        if held == mine && until != 0 && lease_clock(std::time::Instant::now()) > until {
            return Err(StoreError::Fenced {
                mine,
                now: "its lease ran out before it was renewed (was the process stopped?)".into(),
            });
        }
        if held == mine {
            return Ok(());
        }
        Err(StoreError::Fenced {
            mine,
            now: if held == 0 {
                "it has lost the leadership".into()
            } else {
                format!("it leads again as epoch {held}")
            },
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database holds rosterd's tables: a database that exists but was never
    /// migrated holds no state, and a read-only command (`plan`) treats it as empty.
    pub async fn has_schema(&self) -> Result<bool, StoreError> {
        self.has_table("runs").await
    }

    /// Whether the database has a table of this name.
    pub(crate) async fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        has_table(&mut *self.pool.acquire().await?, self.backend, name).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The current memberships: group → worker → membership.
    pub async fn memberships(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, Membership>>, StoreError> {
        let state = self.member_state().await?;
        state
            .groups
            .iter()
            .map(|(group, members)| Ok((group.clone(), keyed(&state.workers, members)?)))
            .collect()
    }

    /// Every group's current members, by worker key.
    pub async fn member_keys(&self) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        let state = self.member_state().await?;
        state
            .groups
            .iter()
            .map(|(group, members)| {
                let keys = members
                    .members
                    .iter()
                    .map(|id| state.workers.stored_key(id).map(str::to_string))
                    .collect::<Result<_, _>>()?;
                Ok((group.clone(), keys))
            })
            .collect()
    }

    /// The groups a worker is in now: group → membership.
    pub async fn worker_memberships(
        &self,
        worker: &str,
    ) -> Result<BTreeMap<String, Membership>, StoreError> {
        let state = self.member_state().await?;
        let Some(id) = state.workers.id(worker) else {
            return Ok(BTreeMap::new());
        };
        Ok(state
            .groups
            .iter()
            .filter_map(|(group, members)| {
                let since_run = members.since(id)?;
                let reason = members.reason(id).to_string();
                Some((group.clone(), Membership { reason, since_run }))
            })
            .collect())
    }

    /// A group's members now: worker → membership (empty for an unknown group).
    pub async fn group_memberships(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, Membership>, StoreError> {
        let members = self.group_state(group).await?;
        if members.members.is_empty() {
            return Ok(BTreeMap::new());
        }
        keyed(&self.worker_ids().await?, &members)
    }
}

impl GroupState {
    /// The members by key, under a numbering the caller keeps up to date.
    pub fn keyed(&self, workers: &WorkerIds) -> Result<BTreeMap<String, Membership>, StoreError> {
        keyed(workers, self)
    }
}

/// A group's members by key.
fn keyed(
    workers: &WorkerIds,
    members: &GroupState,
) -> Result<BTreeMap<String, Membership>, StoreError> {
    members
        .entries()
        .into_iter()
        .map(|(id, reason, since_run)| {
            Ok((
                workers.stored_key(id)?.to_string(),
                Membership {
                    reason: reason.to_string(),
                    since_run,
                },
            ))
        })
        .collect()
}

pub(crate) async fn has_table(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
) -> Result<bool, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let row = sqlx::query(sql).bind(name).fetch_one(conn).await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// The SQL that aggregates `expr` over a group's rows into one JSON array text.
pub(crate) fn json_agg(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_group_array({expr})"),
        Backend::Postgres => format!("json_agg({expr})::text"),
    }
}

/// Runs `sql` (with `bind` as `$1` when given), whose rows are a group name and a JSON
/// array, and parses each array into a collection of `T`.
pub(crate) async fn grouped_json<C, T>(
    pool: &AnyPool,
    sql: &str,
    bind: Option<&str>,
) -> Result<BTreeMap<String, C>, StoreError>
where
    C: FromIterator<T>,
    T: DeserializeOwned,
{
    let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
    if let Some(value) = bind {
        query = query.bind(value);
    }
    let rows = query.fetch_all(pool).await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let group: String = row.try_get(0)?;
        let json: String = row.try_get(1)?;
        let items: Vec<T> = serde_json::from_str(&json).map_err(|e| {
            StoreError::Query(sqlx::Error::Decode(
                format!("the members of group `{group}`: {e}").into(),
            ))
        })?;
        out.insert(group, items.into_iter().collect());
    }
    Ok(out)
}

/// A column of [`insert_rows`]: the next field of every row, or one value for all rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col<'a> {
    Text,
    /// The next field of every row, an integer.
    Int,
    /// The next field of every row, bytes given as hex text.
    Hex,
    SameText(&'a str),
    SameInt(i64),
}

/// Rows per statement of [`insert_rows`] and [`delete_rows`].
const JSON_ROWS: usize = 10_000;

/// The most parameters SQLite takes in one statement.
pub(crate) const SQLITE_PARAMETERS: usize = 32_766;

/// `INSERT INTO {into} VALUES (?, ..), ..`: `rows` rows of `width` values each, bound in
/// order. On SQLite, where a statement is a call and a `?` is taken by its place (the
/// numbered parameters [`insert_rows`] once used were looked up by name), the tables a first
/// run fills (workers, group changes) cost less bound so than as JSON that `json_each`
/// parses. At most [`SQLITE_PARAMETERS`] values.
pub(crate) fn sqlite_insert_values(into: &str, width: usize, rows: usize) -> String {
    debug_assert!(width * rows <= SQLITE_PARAMETERS);
    let row = format!("({})", vec!["?"; width].join(", "));
    format!("INSERT INTO {into} VALUES {}", vec![row; rows].join(", "))
}

/// Inserts `rows` into `into` (`table (a, b, c)`), then `tail` (an `ON CONFLICT` clause, or
/// nothing). Each row serializes to a JSON array of its fields (a tuple does), one per
/// [`Col::Text`] column in order.
///
/// The rows travel as one JSON text per statement, unpacked by the database (`json_each` on
/// SQLite, `jsonb_array_elements` on PostgreSQL), so a statement has a handful of
/// parameters however many rows it carries. With one placeholder per value, SQLite looked
/// every parameter up by name (quadratic in a statement's size) and the driver copied and
/// sent every value on its own: at 20M rows, that was most of a first run.
pub(crate) async fn insert_rows<R: Serialize>(
    conn: &mut AnyConnection,
    backend: Backend,
    into: &str,
    columns: &[Col<'_>],
    tail: &str,
    rows: &[R],
) -> Result<(), StoreError> {
    let (select, from) = json_rows(backend, columns);
    // `WHERE true` keeps SQLite from reading an upsert's ON as a join's.
    let sql = format!("INSERT INTO {into} SELECT {select} FROM {from} WHERE true {tail}");
    execute_json_rows(conn, &sql, columns, rows).await
}

/// Deletes the rows of `table` whose `key` (`a, b, c`) is one of `rows`, given as for
/// [`insert_rows`]: one statement per 10,000 rows instead of one per row.
pub(crate) async fn delete_rows<R: Serialize>(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    key: &str,
    columns: &[Col<'_>],
    rows: &[R],
) -> Result<(), StoreError> {
    let (select, from) = json_rows(backend, columns);
    let sql = format!("DELETE FROM {table} WHERE ({key}) IN (SELECT {select} FROM {from})");
    execute_json_rows(conn, &sql, columns, rows).await
}

/// The select list and the `FROM` of the rows a statement of [`insert_rows`] or
/// [`delete_rows`] carries: `$1` is the JSON rows, then one parameter per same-value column.
fn json_rows(backend: Backend, columns: &[Col<'_>]) -> (String, &'static str) {
    let mut select = Vec::with_capacity(columns.len());
    let (mut field, mut param) = (0, 1);
    for column in columns {
        select.push(match (column, backend) {
            (Col::Text, Backend::Sqlite) => format!("r.value ->> {field}"),
            (Col::Text, Backend::Postgres) => format!("r ->> {field}"),
            (Col::Int, Backend::Sqlite) => format!("r.value ->> {field}"),
            (Col::Int, Backend::Postgres) => format!("(r ->> {field})::bigint"),
            (Col::Hex, Backend::Sqlite) => format!("unhex(r.value ->> {field})"),
            (Col::Hex, Backend::Postgres) => format!("decode(r ->> {field}, 'hex')"),
            (Col::SameText(_) | Col::SameInt(_), _) => {
                param += 1;
                format!("${param}")
            }
        });
        if matches!(column, Col::Text | Col::Int | Col::Hex) {
            field += 1;
        }
    }
    let from = match backend {
        Backend::Sqlite => "json_each($1) AS r",
        Backend::Postgres => "jsonb_array_elements($1::jsonb) AS r",
    };
    (select.join(", "), from)
}

/// Runs `sql` once per [`JSON_ROWS`] rows, binding them as [`json_rows`] reads them.
async fn execute_json_rows<R: Serialize>(
    conn: &mut AnyConnection,
    sql: &str,
    columns: &[Col<'_>],
    rows: &[R],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(JSON_ROWS) {
        let json = serde_json::to_string(chunk)
            .map_err(|e| StoreError::Query(sqlx::Error::Encode(e.into())))?;
        let mut query = sqlx::query(AssertSqlSafe(sql.to_string())).bind(json);
        for column in columns {
            query = match *column {
                Col::SameText(value) => query.bind(value),
                Col::SameInt(value) => query.bind(value),
                Col::Text | Col::Int | Col::Hex => query,
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Puts a SQLite database in WAL mode, unless it is already. Setting the mode takes the
/// database for itself, and another process migrating it may hold it: SQLite does not wait
/// for that, so this does, for as long as the busy timeout.
async fn set_wal(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match sqlx::query("PRAGMA journal_mode = WAL").execute(pool).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e))
                if e.message().contains("locked") && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The file a `sqlite:` URL names; `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or(rest);
    (!file.is_empty() && !file.contains(":memory:")).then_some(file)
}

/// Creates an empty database file readable by its owner alone (0600) when there is none:
/// SQLite would create it with the process's umask, and a container often has none (0644).
/// SQLite gives the `-wal` and `-shm` files the database file's permissions.
/// Set to `allow` to open a SQLite database through a symbolic link.
pub const SYMLINK_ENV: &str = "ROSTERD_DATABASE_SYMLINK";

/// A database path that is a symbolic link is refused (unless [`SYMLINK_ENV`] allows it):
/// the file would be created, or its mode kept, wherever the link points.
fn refuse_symlink(file: &std::path::Path) -> std::io::Result<()> {
    let is_link = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && std::env::var(SYMLINK_ENV).as_deref() != Ok("allow") {
        return Err(std::io::Error::other(format!(
            "{} is a symbolic link; give the file's own path, or set {SYMLINK_ENV}=allow",
            file.display()
        )));
    }
    Ok(())
}

/// The database and its `-wal`, `-shm` and `-journal` files, readable by their owner only:
/// a file made by an older version (or by hand) with a wider mode is narrowed, and says so.
/// SQLite creates the others with the database's mode.
fn make_private(file: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let path = std::path::Path::new(&name);
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
                tracing::info!(
                    file = %path.display(),
                    "narrowed the database file's mode from {mode:o} to {:o}: it holds who has access to what",
                    mode & 0o700
                );
            }
        }
    }
    Ok(())
}

fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    // `sqlite_file` gives no file for `:memory:` or an empty path.
    if file.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        // Another process made it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://data/r.db?mode=rwc"),
            Some("data/r.db")
        );
        assert_eq!(sqlite_file("sqlite:r.db"), Some("r.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
