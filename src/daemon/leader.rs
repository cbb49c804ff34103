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

/// Takes and keeps the leadership until `stop`; a process that takes it asks for a sync at
/// once, so that whatever the previous leader left in the outbox goes out.
pub async fn keep(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    if shared.store.backend() == Backend::Sqlite {
        shared.leadership.set(true);
        tracing::info!("leading (SQLite: one process per database)");
        shared.request(Job::Sync);
        return;
    }
    let mut session: Option<Session> = None;
    loop {
        let config = shared.config();
        match try_lead(&mut session, config.database.expose()).await {
            Ok(true) => {
                if !shared.leadership.set(true) {
                    tracing::info!("leading: this process now runs the scheduled work");
                    shared.request(Job::Sync);
                }
            }
            Ok(false) => {
                if shared.leadership.set(false) {
                    tracing::warn!("no longer leading");
                }
            }
            Err(e) => {
                session = None;
                if shared.leadership.set(false) {
                    tracing::error!(
                        "stepping down: the connection that holds the leadership failed: {e}"
                    );
                } else {
                    tracing::warn!("cannot reach the database to take the leadership: {e}");
                }
            }
        }
        let every = Duration::from_secs_f64(config.daemon.leader_poll_seconds);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
    if let Some(s) = session {
        // Closing the session releases the lock for a standby at once.
        let _ = s.conn.close().await;
    }
    shared.leadership.set(false);
}

/// A connection of this process's own, and whether its session holds the lock.
struct Session {
    conn: sqlx::PgConnection,
    holds: bool,
}

/// One look: takes the lock when it is free, or checks that the session holding it is alive.
async fn try_lead(session: &mut Option<Session>, url: &str) -> Result<bool, sqlx::Error> {
    let s = match session {
        Some(s) => s,
        None => session.insert(Session {
            conn: sqlx::PgConnection::connect(url).await?,
            holds: false,
        }),
    };
    if s.holds {
        // The lock lives as long as the session: a live session still holds it.
        sqlx::query("SELECT 1").execute(&mut s.conn).await?;
        return Ok(true);
    }
    s.holds = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut s.conn)
        .await?;
    Ok(s.holds)
}
