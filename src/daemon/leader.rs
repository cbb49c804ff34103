//! Leadership: which of several `rosterd run` processes does the scheduled work.
//!
//! On PostgreSQL every process keeps one connection of its own (the lock session) and tries,
//! every `leader_poll_seconds`, to take a session-level advisory lock on it. The holder leads;
//! the others serve the API on standby. When the leader dies its connection closes,
//! PostgreSQL releases the lock, and the next standby to try takes it.
//!
//! A leader that lives but hangs (stopped, starved of CPU, swapping) would keep the lock for
//! as long as it hangs, so the leader also renews a **lease** on its lock session every poll.
//! A standby that finds the lease older than `leader_lease_polls` polls (by the server's
//! clock) ends the leader's lock session and takes over with a new epoch. The old leader,
//! should it wake, sends nothing more: it stops sending one poll before its lease could run
//! out (by its own monotonic clock, which runs on while the process is stopped), and its
//! writes are fenced by the epoch.
//!
//! The lock session runs on a thread and runtime of its own, so that work that holds the
//! main runtime's threads (a big evaluation) cannot delay a renewal and cost the leadership.
//! On SQLite there is one process per database file, and it leads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::Connection;

use super::{Job, Shared};
use crate::store::{Backend, Store, StoreError, LEADER_LOCK};

/// Whether this process leads; read by the work loop and the API.
#[derive(Debug, Default)]
pub struct Leadership {
    leading: AtomicBool,
}

impl Leadership {
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    fn set(&self, leading: bool) -> bool {
        self.leading.swap(leading, Ordering::SeqCst)
    }
}

/// Takes and keeps the leadership until `stop` (see the module's words); resolves when it
/// has let go. A process that takes it records a new leadership epoch (which fences off
/// every earlier leader's writes) and asks for a sync at once, so that whatever the previous
/// leader left in the outbox goes out.
pub fn spawn(
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    if shared.store.backend() == Backend::Sqlite {
        shared.leadership.set(true);
        tracing::info!("leading (SQLite: one process per database)");
        shared.request(Job::Sync);
        let _ = done.send(());
        return finished;
    }
    let thread = std::thread::Builder::new()
        .name("rosterd-leadership".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(keep(shared, stop)),
                Err(e) => {
                    tracing::error!("cannot start the leadership's runtime; standing by: {e}")
                }
            }
            let _ = done.send(());
        });
    if let Err(e) = thread {
        tracing::error!("cannot start the leadership's thread; standing by: {e}");
    }
    finished
}

async fn keep(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let holder = format!(
        "{} pid {}",
        hostname().unwrap_or_else(|| "?".into()),
        std::process::id()
    );
    let mut session: Option<Session> = None;
    loop {
        let config = shared.config();
        let every = Duration::from_secs_f64(config.daemon.leader_poll_seconds);
        let lease = every * config.daemon.leader_lease_polls;
        let looked = tokio::select! {
            looked = look(&shared.store, &mut session, config.database.expose(), &holder, every, lease) => looked,
            _ = stop.changed() => break,
        };
        let holds = matches!(looked, Ok(Look::Holds));
        match looked {
            Ok(Look::Took(epoch)) => {
                shared.leadership.set(true);
                tracing::info!(epoch, "leading: this process now runs the scheduled work");
                shared.request(Job::Sync);
            }
            Ok(Look::Holds) => {}
            Ok(Look::Other) => {
                if shared.leadership.set(false) {
                    shared.store.lose_leadership();
                    tracing::warn!("no longer leading");
                }
            }
            Ok(Look::Lost(why)) => {
                session = None;
                shared.store.lose_leadership();
                if shared.leadership.set(false) {
                    tracing::error!("stepping down: {why}");
                }
            }
            Err(e) => {
                session = None;
                if shared.leadership.set(false) {
                    shared.store.lose_leadership();
                    tracing::error!(
                        "stepping down: the connection that holds the leadership failed: {e}"
                    );
                } else if let StoreError::Conflict(why) = &e {
                    tracing::warn!("{why}");
                } else {
                    tracing::warn!("cannot reach the database to take the leadership: {e}");
                }
            }
        }
        // While it holds the lock the look itself waited one poll, on the server.
        if !holds {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
        }
    }
    // Dropping the session closes its connection, which releases the lock for a standby at
    // once (closing it politely could wait on a query cut short).
    drop(session);
    shared.store.lose_leadership();
    shared.leadership.set(false);
}

fn now() -> String {
    crate::clock::stamp(crate::clock::now_utc())
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// A connection of this process's own; while it leads, its epoch and until when its lease
/// lets it send.
struct Session {
    conn: sqlx::PgConnection,
    leading: Option<(i64, Instant)>,
}

impl Session {
    /// Connects, without slow-statement warnings (its wait is meant to be slow), and asks the
    /// server to end the session when the process stops answering: idle longer than a lease
    /// and a poll, its TCP peer gone, or (checked every quarter poll, even while it waits in
    /// `pg_sleep`) its client closed. So a leader that dies frees the lock within about a
    /// quarter poll, not when its wait ends. Servers older than PostgreSQL 14 have neither
    /// `idle_session_timeout` nor `client_connection_check_interval`; there the lease alone
    /// replaces a hung leader, and a dead one frees the lock when its wait ends.
    async fn connect(url: &str, every: Duration, lease: Duration) -> Result<Session, sqlx::Error> {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?
            .application_name("rosterd-leadership")
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::ZERO)
            .log_statements(tracing::log::LevelFilter::Off);
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        let idle = (lease + every).as_millis();
        let alive = lease.as_secs().max(1);
        let check = (every.as_millis() / 4).max(50);
        for setting in [
            format!("SET idle_session_timeout = {idle}"),
            format!("SET client_connection_check_interval = {check}"),
            format!("SET tcp_keepalives_idle = {alive}"),
            "SET tcp_keepalives_interval = 1".into(),
            "SET tcp_keepalives_count = 3".into(),
        ] {
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(setting.clone()))
                .execute(&mut conn)
                .await
            {
                tracing::debug!("the lock session keeps its default ({setting}): {e}");
            }
        }
        Ok(Session {
            conn,
            leading: None,
        })
    }
}

/// What one look at the lock found.
enum Look {
    /// This session took it just now, as this epoch.
    Took(i64),
    /// This session holds it, renewed its lease and is alive (after waiting one poll on the
    /// server).
    Holds,
    /// Another session holds it.
    Other,
    /// This process can no longer count on leading, and why.
    Lost(String),
}

/// One look. When leading: renews the lease, then waits one poll inside the server, which
/// fails at once if the session ends. Otherwise: takes the lock when it is free, or when
/// the leader's lease has run out (ending that leader's lock session first).
async fn look(
    store: &Store,
    session: &mut Option<Session>,
    url: &str,
    holder: &str,
    every: Duration,
    lease: Duration,
) -> Result<Look, StoreError> {
    let s = match session {
        Some(s) => s,
        None => session.insert(Session::connect(url, every, lease).await?),
    };
    // A run may send until one poll before a standby could take over.
    let valid = lease.saturating_sub(every);
    if let Some((epoch, until)) = s.leading {
        if Instant::now() > until {
            return Ok(Look::Lost(format!(
                "its lease (epoch {epoch}) ran out before it was renewed: the process was stopped or starved for more than {:.1} s",
                valid.as_secs_f64()
            )));
        }
        let started = Instant::now();
        if !store
            .renew_lease(&mut s.conn, epoch, started + valid)
            .await?
        {
            return Ok(Look::Lost(format!(
                "its lease (epoch {epoch}) is no longer this session's: another process took over"
            )));
        }
        s.leading = Some((epoch, started + valid));
        sqlx::query("SELECT pg_sleep($1)")
            .bind(every.as_secs_f64())
            .execute(&mut s.conn)
            .await?;
        return Ok(Look::Holds);
    }
    let mut took = try_lock(&mut s.conn).await?;
    if !took {
        if let Some((epoch, pid, age)) = Store::end_expired_lease(&mut s.conn, lease).await? {
            tracing::warn!(
                epoch,
                pid,
                "the leader has not renewed its lease for {age:.1} s (leader_lease_polls × leader_poll_seconds is {:.1} s): ending its lock session to take over",
                lease.as_secs_f64()
            );
            // The lock is free once the ended session's server process has exited.
            let deadline = Instant::now() + every;
            while !took && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                took = try_lock(&mut s.conn).await?;
            }
        }
    }
    if !took {
        return Ok(Look::Other);
    }
    // Leading without an epoch would write unfenced: on an error the caller drops the
    // session, which lets go of the lock.
    let started = Instant::now();
    let epoch = store
        .take_leadership_on(&mut s.conn, holder, &now(), started + valid, lease)
        .await?;
    s.leading = Some((epoch, started + valid));
    Ok(Look::Took(epoch))
}

async fn try_lock(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(conn)
        .await
}
