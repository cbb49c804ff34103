//! Leadership: which of several `rosterd run` processes does the scheduled work.
//!
//! On PostgreSQL every process keeps one connection of its own and tries, every
//! `leader_poll_seconds`, to take a session-level advisory lock on it. The holder leads; the
//! others serve the API on standby. When the leader dies its connection closes, PostgreSQL
//! releases the lock, and the next standby to try takes it: a failover takes at most one
//! poll interval after the server notices the connection is gone. A leader that can no longer
//! reach the server on its connection steps down at once, since it cannot know whether it
//! still holds the lock. On SQLite there is one process per database file, and it leads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;

use super::{Job, Shared};
use crate::store::Backend;

/// The advisory lock's key: "rosterd" in ASCII, so that it is recognisable in `pg_locks`.
const LOCK_KEY: i64 = 0x0072_6f73_7465_7264;

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

/// Takes and keeps the leadership until `stop`; a process that takes it records a new
/// leadership epoch (which fences off every earlier leader's writes) and asks for a sync at
/// once, so that whatever the previous leader left in the outbox goes out.
///
/// While it leads, the lock's session waits in `pg_sleep` on the server, so a session that
/// ends (the server terminated it, the connection dropped) is noticed at once, not at the
/// next poll: the process steps down and its run in flight stops before its next request.
pub async fn keep(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    if shared.store.backend() == Backend::Sqlite {
        shared.leadership.set(true);
        tracing::info!("leading (SQLite: one process per database)");
        shared.request(Job::Sync);
        return;
    }
    let holder = format!(
        "{} pid {}",
        hostname().unwrap_or_else(|| "?".into()),
        std::process::id()
    );
    let mut session: Option<Session> = None;
    loop {
        let config = shared.config();
        let every = Duration::from_secs_f64(config.daemon.leader_poll_seconds);
        let looked = tokio::select! {
            looked = try_lead(&mut session, config.database.expose(), every) => looked,
            _ = stop.changed() => break,
        };
        let holds = matches!(looked, Ok(Look::Holds));
        match looked {
            Ok(Look::Took) => match shared.store.take_leadership(&holder, &now()).await {
                Ok(epoch) => {
                    shared.leadership.set(true);
                    tracing::info!(epoch, "leading: this process now runs the scheduled work");
                    shared.request(Job::Sync);
                }
                Err(e) => {
                    // Leading without an epoch would write unfenced: let go of the lock.
                    tracing::error!(
                        "took the leadership lock but cannot record the epoch; letting go: {e}"
                    );
                    session = None;
                }
            },
            Ok(Look::Holds) => {}
            Ok(Look::Other) => {
                if shared.leadership.set(false) {
                    shared.store.lose_leadership();
                    tracing::warn!("no longer leading");
                }
            }
            Err(e) => {
                session = None;
                if shared.leadership.set(false) {
                    shared.store.lose_leadership();
                    tracing::error!(
                        "stepping down: the connection that holds the leadership failed: {e}"
                    );
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

/// A connection of this process's own, and whether its session holds the lock.
struct Session {
    conn: sqlx::PgConnection,
    holds: bool,
}

/// What one look at the lock found.
enum Look {
    /// This session took it just now.
    Took,
    /// This session holds it and is alive (after waiting one poll on the server).
    Holds,
    /// Another session holds it.
    Other,
}

/// One look: takes the lock when it is free; when this session holds it, waits one poll
/// inside the server, which fails at once if the session ends.
async fn try_lead(
    session: &mut Option<Session>,
    url: &str,
    every: Duration,
) -> Result<Look, sqlx::Error> {
    let s = match session {
        Some(s) => s,
        None => {
            use std::str::FromStr;
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?
                .application_name("rosterd-leadership");
            session.insert(Session {
                conn: sqlx::PgConnection::connect_with(&options).await?,
                holds: false,
            })
        }
    };
    if s.holds {
        // The lock lives as long as the session: a live session still holds it.
        sqlx::query("SELECT pg_sleep($1)")
            .bind(every.as_secs_f64())
            .execute(&mut s.conn)
            .await?;
        return Ok(Look::Holds);
    }
    s.holds = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut s.conn)
        .await?;
    Ok(if s.holds { Look::Took } else { Look::Other })
}
