//! The store and the evaluation cycle, one suite on both backends: snapshots and their diff,
//! the directory failsafe, runs, the audit and history.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::BTreeMap;

use common::{Install, TestDb};
use rosterd::cycle::Outcome;
use rosterd::store::{SnapshotStatus, Store};

const SECURITY: &str = "groups:
  - name: security
    kind: hybrid
    rule: division == \"Security\"
    include:
      - email: ea@example.com
        reason: Executive assistant to the CISO
        ticket: AR-1234
        expires: 2026-03-31
  - name: engineering
    kind: managed
    rule: division == \"Engineering\"
";

fn applied(outcome: &Outcome) -> (usize, usize) {
    match outcome {
        Outcome::Applied { added, removed, .. } => (*added, *removed),
        Outcome::Held { reason, .. } => panic!("held: {reason}"),
    }
}

/// A group's members, read both ways the store offers (row by row, and aggregated per
/// group), which must agree.
async fn members(store: &Store, group: &str) -> Vec<String> {
    let rows: Vec<String> = store
        .memberships()
        .await
        .unwrap()
        .get(group)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let aggregated: Vec<String> = store
        .member_keys()
        .await
        .unwrap()
        .get(group)
        .map(|m| m.iter().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        rows, aggregated,
        "group `{group}`: member_keys agrees with memberships"
    );
    rows
}

/// Sets `column` of worker `key` in the export.
fn set(install: &Install, key: &str, column: usize, value: &str) {
    install.edit_export(|line| {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        if fields[0] == key {
            fields[column] = value.to_string();
        }
        Some(fields.join(","))
    });
}

const DIVISION: usize = 3;
const STATUS: usize = 10;

on_both_backends!(
    migrations_apply_and_are_idempotent,
    fresh_database_opened_at_once_migrates_once,
    identical_export_costs_nothing,
    unchanged_inputs_are_not_evaluated_again,
    plan_treats_an_unmigrated_database_as_empty,
    snapshot_diff_is_recorded,
    truncated_export_is_held_until_approved,
    empty_export_is_held,
    unreadable_export_keeps_the_last_good_snapshot,
    history_answers_at_five_dates,
    plan_after_one_rule_change_shows_exactly_that_groups_changes,
    removed_group_members_leave_with_that_reason,
    migration_6_carries_every_membership_and_audit_row,
    forty_runs_read_back_through_checkpoints_and_snapshot_differences,
    console_sign_ins_finish_once_and_sessions_end,
    a_push_hold_is_approved_once,
    an_access_request_is_decided_once_and_keeps_its_history,
    unreadable_guardrail_violations_are_an_error,
    the_worker_numbering_reads_back_whatever_its_keys_hold,
    snapshot_rows_read_the_same_packed_or_as_text,
);

/// Snapshot rows are written as LZ4 blocks (migration 20); chunks written as text before
/// read the same, and a damaged block is a damaged store, never fewer workers.
async fn snapshot_rows_read_the_same_packed_or_as_text(db: TestDb) {
    use sqlx::Row;
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let id = store.snapshots(1).await.unwrap()[0].id;
    let packed = store.snapshot_workers(id).await.unwrap();
    assert!(packed.len() > 5, "{packed:?}");
    let chunks =
        sqlx::query("SELECT chunk, rows, packed FROM snapshot_rows WHERE snapshot_id = $1")
            .bind(id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(!chunks.is_empty());
    for chunk in &chunks {
        let text: String = chunk.try_get(1).unwrap();
        assert_eq!(text, "", "a packed chunk holds no text");
        let bytes: Vec<u8> = chunk.try_get(2).unwrap();
        let text =
            String::from_utf8(lz4_flex::block::decompress_size_prepended(&bytes).unwrap()).unwrap();
        assert!(text.lines().count() > 5, "{text}");
        sqlx::query("UPDATE snapshot_rows SET rows = $1, packed = NULL WHERE snapshot_id = $2 AND chunk = $3")
            .bind(text)
            .bind(id)
            .bind(chunk.try_get::<i64, _>(0).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert_eq!(store.snapshot_workers(id).await.unwrap(), packed, "as text");
    sqlx::query("UPDATE snapshot_rows SET packed = $1 WHERE snapshot_id = $2")
        .bind(vec![200u8, 1, 0, 0, 7, 7])
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    let error = store.snapshot_workers(id).await.unwrap_err().to_string();
    assert!(
        error.contains("packed chunk") && error.contains("damaged"),
        "{error}"
    );
}

/// The numbering is read as one row of every key; a key holding the separator between them
/// (a control character an export may still carry) is read row by row, to the same result.
async fn the_worker_numbering_reads_back_whatever_its_keys_hold(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let before = store.worker_ids().await.unwrap();
    assert!(before.len() > 5, "the run numbered its workers");
    let keys: Vec<String> = (0..before.len() as u32)
        .map(|id| before.key(id).unwrap().to_string())
        .collect();
    assert_eq!(before.id(&keys[3]), Some(3));
    for (offset, key) in ["E9\u{1f}1", "E9\u{1f}"].iter().enumerate() {
        sqlx::query("INSERT INTO workers (id, worker_key) VALUES ($1, $2)")
            .bind((keys.len() + offset) as i64)
            .bind(*key)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let after = store.worker_ids().await.unwrap();
    assert_eq!(after.len(), keys.len() + 2);
    for (id, key) in keys.iter().enumerate() {
        assert_eq!(after.id(key), Some(id as u32), "{key}");
    }
    assert_eq!(after.id("E9\u{1f}1"), Some(keys.len() as u32));
    assert_eq!(after.key(keys.len() as u32 + 1), Some("E9\u{1f}"));
    // A gap in the ids is a damaged store, whichever way it is read.
    sqlx::query("DELETE FROM workers WHERE id = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let error = store.worker_ids().await.unwrap_err().to_string();
    assert!(error.contains("out of order"), "{error}");
}

/// Stored guardrail violations that cannot be read are an error, never "none": read as an
/// empty list they would release the holds the broken guardrails put on pushes.
async fn unreadable_guardrail_violations_are_an_error(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let none: Vec<serde_json::Value> = store.current_violations().await.unwrap();
    assert!(none.is_empty());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&install.db.url)
        .await
        .unwrap();
    sqlx::query("UPDATE runs SET violations = '[{\"guardrail\": ' WHERE status = 'succeeded'")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store
        .current_violations::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the guardrail violations of the last run"),
        "{err}"
    );
    store.close().await;
}

/// Two approvals of one hold at once (two people, or the CLI and the console): one approves
/// it, the other is told it is approved already; neither overwrites the other's name.
async fn a_push_hold_is_approved_once(db: TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let hold = rosterd::store::PushHold {
        id: 0,
        target: "app".into(),
        group: "sales".into(),
        reason: "the push would remove 40 of 44 members".into(),
        to_add: 0,
        to_remove: 40,
        members_in_target: 44,
        status: rosterd::store::HoldStatus::Held,
        created_at: "2026-12-06T00:00:00Z".into(),
        approved_at: None,
        approved_by: None,
    };
    let id = store
        .hold_push(&hold, "2026-12-06T00:00:00Z")
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.approve_push_hold(id, "2026-12-06T01:00:00Z", "alice"),
        store.approve_push_hold(id, "2026-12-06T01:00:00Z", "bob"),
    );
    let (won, lost) = match (a, b) {
        (Ok(h), Err(e)) | (Err(e), Ok(h)) => (h, e),
        other => panic!("one approval must win: {other:?}"),
    };
    assert_eq!(won.status, rosterd::store::HoldStatus::Approved);
    assert!(lost.to_string().contains("is approved, not held"), "{lost}");
    let stored = store.push_holds(None).await.unwrap();
    assert_eq!(stored[0].approved_by, won.approved_by);
    let missing = store
        .approve_push_hold(id + 1, "x", "carol")
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains(&format!("no push hold {}", id + 1)),
        "{missing}"
    );
    store.close().await;
}

/// An access request: one pending request per worker and group; of two approvers at once
/// one claims it; a released claim can be taken again; every change of state is kept, in
/// order; a denied request cannot be approved after.
async fn an_access_request_is_decided_once_and_keeps_its_history(db: TestDb) {
    use rosterd::store::{NewRequest, RequestEvent, RequestFilter, RequestLanding, RequestState};
    let store = Store::open(&db.url).await.unwrap();
    let new = NewRequest {
        group: "figma-admins".into(),
        list: "members".into(),
        worker: "W0042".into(),
        worker_email: Some("pat.lee@example.com".into()),
        worker_name: Some("Pat Lee".into()),
        requested_by: "oidc:pat (pat.lee@example.com)".into(),
        requester_subject: "pat".into(),
        requester_email: Some("pat.lee@example.com".into()),
        justification: "Runs the design system audit".into(),
        until: "2027-01-31".into(),
    };
    let id = store
        .create_request(&new, "2026-12-07T10:00:00Z")
        .await
        .unwrap();
    let again = store
        .create_request(&new, "2026-12-07T10:01:00Z")
        .await
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains(&format!("request {id} already asks for W0042")),
        "{again}"
    );
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T11:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let (a, b) = tokio::join!(
        store.claim_request(id, "alice", now),
        store.claim_request(id, "bob", now),
    );
    let (won, lost) = match (a, b) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        other => panic!("one claim must win: {other:?}"),
    };
    let winner = won.deciding_by.clone().unwrap();
    assert!(
        lost.to_string()
            .contains(&format!("{winner} is deciding request {id} now")),
        "{lost}"
    );
    // The approval did not land: the request is pending again, and the other may decide.
    store.release_request(id).await.unwrap();
    store.claim_request(id, "bob", now).await.unwrap();
    let landing = RequestLanding {
        branch: "rosterd/figma-admins/w0042".into(),
        commit: "0123abcd".into(),
        direct_commit: false,
        link: None,
    };
    let approved = RequestEvent {
        at: "2026-12-07T11:00:01Z".into(),
        state: RequestState::Approved,
        by: "bob".into(),
        note: "ok for the audit".into(),
    };
    store
        .move_request(id, &[RequestState::Pending], &approved, Some(&landing))
        .await
        .unwrap();
    let denied = RequestEvent {
        state: RequestState::Denied,
        by: "carol".into(),
        ..approved.clone()
    };
    let late = store
        .move_request(id, &[RequestState::Pending], &denied, None)
        .await
        .unwrap_err();
    assert!(
        late.to_string().contains(&format!(
            "request {id} is approved, so it cannot become denied"
        )),
        "{late}"
    );
    for (at, state) in [
        ("2026-12-07T12:00:00Z", RequestState::Merged),
        ("2026-12-07T12:00:00Z", RequestState::InForce),
    ] {
        let e = RequestEvent {
            at: at.into(),
            state,
            by: "rosterd".into(),
            note: String::new(),
        };
        store
            .move_request(
                id,
                &[RequestState::Approved, RequestState::Merged],
                &e,
                None,
            )
            .await
            .unwrap();
    }
    let stored = store.access_request(id).await.unwrap().unwrap();
    assert_eq!(stored.state, RequestState::InForce);
    assert_eq!(
        stored.decided_by.as_deref(),
        Some("bob"),
        "a later move keeps the decider"
    );
    assert_eq!(stored.comment.as_deref(), Some("ok for the audit"));
    assert_eq!(stored.branch.as_deref(), Some("rosterd/figma-admins/w0042"));
    assert_eq!(stored.deciding_by, None);
    let history: Vec<RequestState> = store
        .request_events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        history,
        [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Merged,
            RequestState::InForce
        ]
    );
    // While it grants, nobody asks for the same again; others are listed by filter.
    assert!(store
        .create_request(&new, "2026-12-07T13:00:00Z")
        .await
        .is_err());
    let other = store
        .create_request(
            &NewRequest {
                worker: "W0043".into(),
                requester_subject: "sam".into(),
                ..new.clone()
            },
            "2026-12-07T13:00:00Z",
        )
        .await
        .unwrap();
    let pending = store
        .access_requests(
            &RequestFilter {
                states: &[RequestState::Pending],
                ..RequestFilter::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), [other]);
    let pats = store
        .access_requests(
            &RequestFilter {
                requester_subject: Some("pat"),
                ..RequestFilter::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(pats.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    store.close().await;
}

/// The console's sign-in state: a login is taken once and only before it expires; a
/// session is found by its hash until it expires or is signed out.
async fn console_sign_ins_finish_once_and_sessions_end(db: TestDb) {
    use rosterd::store::{ConsoleLogin, ConsoleSession};
    let store = Store::open(&db.url).await.unwrap();
    let login = ConsoleLogin {
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        return_to: "/groups/sales".into(),
    };
    let (t0, t1, t2) = (
        "2026-11-26T10:00:00Z",
        "2026-11-26T10:05:00Z",
        "2026-11-26T10:20:00Z",
    );
    store
        .begin_console_login("state-a", &login, t0, "2026-11-26T10:10:00Z")
        .await
        .unwrap();
    store
        .begin_console_login("state-b", &login, t0, "2026-11-26T10:10:00Z")
        .await
        .unwrap();
    assert_eq!(
        store.take_console_login("state-a", t1).await.unwrap(),
        Some(login.clone())
    );
    assert_eq!(
        store.take_console_login("state-a", t1).await.unwrap(),
        None,
        "a sign-in finishes once"
    );
    assert_eq!(
        store.take_console_login("state-b", t2).await.unwrap(),
        None,
        "an expired sign-in does not finish"
    );
    let session = ConsoleSession {
        subject: "ada".into(),
        email: Some("ada@example.com".into()),
        name: None,
        claim_groups: vec!["corpsec".into(), "it".into()],
        csrf_token: "csrf".into(),
        expires_at: "2026-11-26T18:00:00Z".into(),
        id_token: Some(rosterd::secret::Secret::new("eyJ.an-id-token.sig")),
        groups_elsewhere: true,
    };
    store
        .create_console_session("hash-1", &session, t0)
        .await
        .unwrap();
    assert_eq!(
        store.console_session("hash-1", t1).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.console_session("hash-2", t1).await.unwrap(), None);
    assert_eq!(
        store
            .console_session("hash-1", "2026-11-26T18:00:01Z")
            .await
            .unwrap(),
        None,
        "an expired session is no session"
    );
    store.end_console_session("hash-1").await.unwrap();
    assert_eq!(
        store.console_session("hash-1", t1).await.unwrap(),
        None,
        "signed out"
    );
}

async fn migrations_apply_and_are_idempotent(db: TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    store.migrate(&db.url).await.unwrap();
    let again = Store::open(&db.url).await.unwrap();
    assert!(again.memberships().await.unwrap().is_empty());
    assert!(again.runs(10).await.unwrap().is_empty());
}

/// Same export, rules, config and date as the last succeeded run: the run is recorded and
/// nothing is evaluated. A change to any of them evaluates again.
async fn unchanged_inputs_are_not_evaluated_again(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    let evaluated = |r: &rosterd::store::RunInfo| {
        !r.message
            .as_deref()
            .unwrap_or("")
            .contains("nothing was evaluated")
    };
    assert_eq!(applied(&install.run(&store, "2026-01-10").await), (7, 0));
    let before = members(&store, "security").await;
    assert_eq!(applied(&install.run(&store, "2026-01-10").await), (0, 0));
    let runs = store.runs(1).await.unwrap();
    assert!(!evaluated(&runs[0]), "{:?}", runs[0]);
    assert_eq!(runs[0].status, rosterd::store::RunStatus::Succeeded);
    assert_eq!(
        runs[0].memberships, 7,
        "it carries the memberships it stands for"
    );
    assert_eq!(members(&store, "security").await, before);

    // Another date, another rule file, another config: each is evaluated.
    install.run(&store, "2026-01-11").await;
    assert!(evaluated(&store.runs(1).await.unwrap()[0]));
    install.run(&store, "2026-01-11").await;
    assert!(!evaluated(&store.runs(1).await.unwrap()[0]));
    install.write_rule(
        "security.yaml",
        &format!("{SECURITY}\n# a comment changes the file\n"),
    );
    install.run(&store, "2026-01-11").await;
    assert!(evaluated(&store.runs(1).await.unwrap()[0]));
    let config = std::fs::read_to_string(install.path("rosterd.yaml")).unwrap();
    std::fs::write(
        install.path("rosterd.yaml"),
        format!("{config}\n# edited\n"),
    )
    .unwrap();
    install.run(&store, "2026-01-11").await;
    assert!(evaluated(&store.runs(1).await.unwrap()[0]));
    // A new export is a new snapshot, evaluated.
    install.edit_export(|line| Some(line.replace("Security Engineer", "Security Lead")));
    install.run(&store, "2026-01-11").await;
    assert!(evaluated(&store.runs(1).await.unwrap()[0]));
}

/// `plan` neither migrates nor writes; against a database that exists but holds no tables
/// (a new PostgreSQL database, an empty SQLite file) it plans from an empty store.
async fn plan_treats_an_unmigrated_database_as_empty(db: TestDb) {
    if let Some(file) = db.url.strip_prefix("sqlite://") {
        std::fs::write(file, b"").unwrap();
    }
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(install.path("rosterd.yaml"))
        .args(["--as-of", "2026-01-10", "plan"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("compared with an empty store: every member joins"),
        "{stdout}"
    );
    assert!(stdout.contains("Plan: 7 to join, 0 to leave"), "{stdout}");
    // And it is still unmigrated: a plan writes nothing.
    let store = Store::connect(&install.db.url).await.unwrap();
    assert!(!store.has_schema().await.unwrap());
    store.close().await;
}

/// Several processes starting on one fresh database (a daemon and a CLI, or two daemons in
/// HA) must not apply a migration twice.
async fn fresh_database_opened_at_once_migrates_once(db: TestDb) {
    let (a, b, c) = tokio::join!(
        Store::open(&db.url),
        Store::open(&db.url),
        Store::open(&db.url)
    );
    for store in [a, b, c] {
        assert!(store.unwrap().runs(1).await.unwrap().is_empty());
    }
}

async fn identical_export_costs_nothing(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    assert_eq!(applied(&install.run(&store, "2026-01-10").await), (7, 0));
    assert_eq!(applied(&install.run(&store, "2026-01-11").await), (0, 0));
    let snapshots = store.snapshots(10).await.unwrap();
    assert_eq!(snapshots.len(), 1, "the same export is stored once");
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.snapshot_id == Some(snapshots[0].id)));
    assert_eq!(runs[0].rules_digest, runs[1].rules_digest);
    assert_eq!(runs[0].rules_digest.as_ref().map(String::len), Some(64));
}

async fn snapshot_diff_is_recorded(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    set(&install, "W004", DIVISION, "Engineering");
    install.edit_export(|l| (!l.starts_with("W010,")).then(|| l.to_string()));
    let mut text = std::fs::read_to_string(install.path("workers.csv")).unwrap();
    text.push_str("W011,new@example.com,W006,Engineering,Engineering Platform,US,Software Engineer,3,2026-01-05,,Active,no,\n");
    std::fs::write(install.path("workers.csv"), text).unwrap();
    let (added, removed) = applied(&install.run(&store, "2026-01-11").await);
    assert_eq!(
        (added, removed),
        (2, 1),
        "W004 and W011 join engineering, W004 leaves security"
    );
    let current = store.current_snapshot().await.unwrap().unwrap();
    let changes: Vec<String> = store
        .snapshot_changes(current.id)
        .await
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?} {:?} {:?}",
                c.worker_key, c.change, c.attribute, c.old_value, c.new_value
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            r#"W004 changed Some("division") Some("\"Security\"") Some("\"Engineering\"")"#,
            "W010 left None None None",
            "W011 joined None None None",
        ]
    );
    let previous = store
        .snapshot(current.previous_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(previous.status, SnapshotStatus::Superseded);
}

async fn truncated_export_is_held_until_approved(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let before = store.memberships().await.unwrap();
    // A truncated export: only the header and the first three workers.
    let text = std::fs::read_to_string(install.path("workers.csv")).unwrap();
    std::fs::write(
        install.path("workers.csv"),
        text.lines().take(4).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    for _ in 0..2 {
        let Outcome::Held {
            snapshot_id,
            reason,
            ..
        } = install.run(&store, "2026-01-11").await
        else {
            panic!("a truncated export must be held");
        };
        assert!(
            reason.contains("the eligible population shrank from 9 to 3 workers (-66.7%)"),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("rosterd approve snapshot {snapshot_id}")),
            "{reason}"
        );
        assert_eq!(
            store.memberships().await.unwrap(),
            before,
            "nothing changes while held"
        );
        assert_eq!(store.current_snapshot().await.unwrap().unwrap().eligible, 9);
    }
    let held = store.snapshots(1).await.unwrap().remove(0);
    assert_eq!(held.status, SnapshotStatus::Held);
    assert_eq!(
        store.snapshots(10).await.unwrap().len(),
        2,
        "a held export is stored once"
    );
    store
        .approve_snapshot(held.id, "2026-01-11T10:00:00Z")
        .await
        .unwrap();
    assert!(
        store
            .approve_snapshot(held.id, "2026-01-11T10:00:00Z")
            .await
            .is_err(),
        "approving twice is refused"
    );
    let (_, removed) = applied(&install.run(&store, "2026-01-11").await);
    assert!(removed > 0);
    assert_eq!(store.current_snapshot().await.unwrap().unwrap().id, held.id);
    let runs = store.runs(10).await.unwrap();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["succeeded", "held", "held", "succeeded"]);
}

async fn empty_export_is_held(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.edit_export(|l| l.starts_with("id,").then(|| l.to_string()));
    let Outcome::Held { reason, .. } = install.run(&store, "2026-01-10").await else {
        panic!("an empty export must be held");
    };
    assert!(
        reason.starts_with("the export has no eligible workers"),
        "{reason}"
    );
    assert!(store.memberships().await.unwrap().is_empty());
}

async fn unreadable_export_keeps_the_last_good_snapshot(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    std::fs::remove_file(install.path("workers.csv")).unwrap();
    let outcome = install.run(&store, "2026-04-10").await;
    let Outcome::Applied {
        warning: Some(warning),
        removed,
        ..
    } = &outcome
    else {
        panic!("expected a run on the last good snapshot: {outcome:?}");
    };
    assert!(
        warning.contains("cannot read HR export")
            && warning.contains("evaluated the last good snapshot"),
        "{warning}"
    );
    assert_eq!(*removed, 1, "the EA's include entry expired on 2026-03-31");
    assert!(store.runs(1).await.unwrap()[0]
        .message
        .as_deref()
        .unwrap_or("")
        .contains("last good snapshot"));
}

/// Joins, leaves, an expiry and a rejoin over five runs, then `history` at five dates.
async fn history_answers_at_five_dates(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    // 2026-01-10: the Security division (W002, W004, W005) plus the EA (W003).
    install.run(&store, "2026-01-10").await;
    // 2026-02-10: W004 moves to Engineering and leaves.
    set(&install, "W004", DIVISION, "Engineering");
    install.run(&store, "2026-02-10").await;
    // 2026-04-10: the EA's include entry expired on 2026-03-31.
    install.run(&store, "2026-04-10").await;
    // 2026-05-10: W004 moves back and rejoins.
    set(&install, "W004", DIVISION, "Security");
    install.run(&store, "2026-05-10").await;
    // 2026-06-10: W005 is terminated.
    set(&install, "W005", STATUS, "Terminated");
    install.run(&store, "2026-06-10").await;

    let at = |date: &str| {
        let store = store.clone();
        let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        async move { store.members_at("security", date).await.unwrap() }
    };
    let expect = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, r)| (k.to_string(), r.to_string()))
            .collect()
    };
    assert!(at("2026-01-09").await.is_empty(), "before the first run");
    assert_eq!(
        at("2026-01-10").await,
        expect(&[
            ("W002", "rule"),
            ("W003", "include"),
            ("W004", "rule"),
            ("W005", "rule")
        ])
    );
    assert_eq!(
        at("2026-03-01").await,
        expect(&[("W002", "rule"), ("W003", "include"), ("W005", "rule")])
    );
    assert_eq!(
        at("2026-04-30").await,
        expect(&[("W002", "rule"), ("W005", "rule")])
    );
    assert_eq!(
        at("2026-05-10").await,
        expect(&[("W002", "rule"), ("W004", "rule"), ("W005", "rule")])
    );
    assert_eq!(
        at("2026-12-31").await,
        expect(&[("W002", "rule"), ("W004", "rule")])
    );

    let timeline: Vec<String> = store
        .worker_history("security", "W004")
        .await
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e.as_of,
                if e.added { "joined" } else { "left" },
                e.reason
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            "2026-01-10 joined rule",
            "2026-02-10 left rule_no_longer_matches",
            "2026-05-10 joined rule"
        ]
    );
    let last_reason = |worker: &'static str| {
        let store = store.clone();
        async move {
            store
                .worker_history("security", worker)
                .await
                .unwrap()
                .last()
                .unwrap()
                .reason
                .clone()
        }
    };
    assert_eq!(last_reason("W003").await, "expired");
    assert_eq!(last_reason("W005").await, "not_eligible");
    // The current memberships equal the audit replayed to the end.
    assert_eq!(members(&store, "security").await, ["W002", "W004"]);
}

async fn plan_after_one_rule_change_shows_exactly_that_groups_changes(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    install.write_rule(
        "security.yaml",
        &SECURITY.replace(
            "rule: division == \"Engineering\"",
            "rule: division == \"Engineering\" and remote",
        ),
    );
    let config = install.config();
    let rules = install.rules(&config);
    let (snapshot, _) = rosterd::directory::load(&config.directory).unwrap();
    let evaluation = rosterd::engine::evaluate(
        &snapshot,
        &rules,
        chrono::NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(),
    );
    let changes = rosterd::cycle::changes(
        &snapshot,
        &rules,
        &evaluation,
        &store.member_state().await.unwrap(),
    );
    let shown: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{} {}{} {}",
                c.group,
                if c.added { "+" } else { "-" },
                c.worker,
                c.reason
            )
        })
        .collect();
    // W006 and W007 are not remote; W009 is terminated and was never a member.
    assert_eq!(
        shown,
        [
            "engineering -W006 rule_no_longer_matches",
            "engineering -W007 rule_no_longer_matches"
        ]
    );
}

async fn removed_group_members_leave_with_that_reason(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let without_engineering = SECURITY
        .split("  - name: engineering")
        .next()
        .unwrap()
        .to_string();
    install.write_rule("security.yaml", &without_engineering);
    let (added, removed) = applied(&install.run(&store, "2026-01-11").await);
    assert_eq!((added, removed), (0, 3));
    let run = store.runs(1).await.unwrap().remove(0);
    let changes = store.run_changes(run.id).await.unwrap();
    assert!(
        changes
            .iter()
            .all(|c| c.group == "engineering" && c.reason == "group_removed"),
        "{changes:?}"
    );
    assert!(members(&store, "engineering").await.is_empty());
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let db = common::sqlite_db();
    let store = Store::open(&db.url).await.unwrap();
    let mode: String = sqlx::Row::get(
        &sqlx::query("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_run_records_the_rules_git_commit_and_digest() {
    let install = Install::new(common::sqlite_db(), &[("security.yaml", SECURITY)]);
    let rules = install.path("rules");
    let git = |args: &[&str]| common::git(&rules, args);
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "rules"]);
    let head = git(&["rev-parse", "HEAD"]);
    let store = install.store().await;
    install.run(&store, "2026-01-10").await;
    let first = store.runs(1).await.unwrap().remove(0);
    assert_eq!(first.rules_commit.as_deref(), Some(head.as_str()));
    install.write_rule(
        "extra.yaml",
        "groups:\n  - name: extra\n    kind: manual\n    members: [W001]\n",
    );
    install.run(&store, "2026-01-10").await;
    let second = store.runs(1).await.unwrap().remove(0);
    assert_ne!(
        first.rules_digest, second.rules_digest,
        "the digest covers uncommitted rule files"
    );
}

/// Forty runs, each changing a few workers: past the membership checkpoint interval and two
/// snapshot chains. After every run the stored members are exactly what the export
/// evaluates to, the current snapshot reads back exactly as loaded, and at the end `history`
/// answers for every run's date.
async fn forty_runs_read_back_through_checkpoints_and_snapshot_differences(db: TestDb) {
    let install = Install::new(db, &[("security.yaml", SECURITY)]);
    let store = install.store().await;
    let original = std::fs::read_to_string(install.path("workers.csv")).unwrap();
    let mut expected_at = Vec::new();
    for run in 0..40u32 {
        std::fs::write(install.path("workers.csv"), &original).unwrap();
        for (bit, key) in ["W004", "W006", "W007", "W008"].iter().enumerate() {
            if (run >> bit) & 1 == 1 {
                set(
                    &install,
                    key,
                    DIVISION,
                    if bit == 0 { "Engineering" } else { "Security" },
                );
            }
        }
        set(&install, "W005", 12, &format!("nick{run}"));
        if run % 3 == 1 {
            let extra = "W011,new@example.com,W006,Security,Security Operations,US,Engineer,3,2024-01-01,,Active,no,";
            let mut text = std::fs::read_to_string(install.path("workers.csv")).unwrap();
            text.push_str(extra);
            text.push('\n');
            std::fs::write(install.path("workers.csv"), text).unwrap();
        }
        let date = format!("2026-{:02}-{:02}", 1 + run / 28, 1 + run % 28);
        let outcome = install.run(&store, &date).await;
        applied(&outcome);

        let config = install.config();
        let rules = install.rules(&config);
        let (snapshot, _) = rosterd::directory::load(&config.directory).unwrap();
        let as_of = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap();
        let evaluation = rosterd::engine::evaluate(&snapshot, &rules, as_of);
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (g, group) in rules.groups().iter().enumerate() {
            let mut keys: Vec<String> = evaluation
                .members(g)
                .ones()
                .map(|w| snapshot.key(w).to_string())
                .collect();
            keys.sort();
            if !keys.is_empty() {
                want.insert(group.name.clone(), keys);
            }
        }
        let got: BTreeMap<String, Vec<String>> = store
            .member_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|(g, keys)| (g, keys.into_iter().collect()))
            .collect();
        assert_eq!(got, want, "run {run}");
        let current = store.current_snapshot().await.unwrap().unwrap();
        let mut rows = snapshot.to_rows();
        rows.sort();
        assert_eq!(
            store.snapshot_workers(current.id).await.unwrap(),
            rows,
            "run {run}"
        );
        expected_at.push((as_of, want));
    }
    let depths: Vec<i64> = store
        .snapshots(100)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|s| s.depth)
        .collect();
    assert_eq!(depths.iter().filter(|&&d| d == 0).count(), 3, "{depths:?}");
    assert!(
        depths.iter().all(|&d| d < rosterd::store::SNAPSHOT_CHAIN),
        "{depths:?}"
    );
    let checkpoints: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM group_checkpoints")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        0,
    );
    assert!(checkpoints > 0, "32 changes to a group make a checkpoint");
    // Retention with every snapshot and run old: the current snapshot and the chain it is
    // read through stay, the audit stays, the rest goes.
    let now = rosterd::clock::stamp(rosterd::clock::now_utc());
    let pruned = store.prune("9999-12-31", "9999-12-31", &now).await.unwrap();
    assert_eq!(
        pruned.snapshots, 32,
        "snapshots before the current chain's base (32)"
    );
    let current = store.current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.depth, 7);
    assert_eq!(
        store.snapshot_workers(current.id).await.unwrap().len(),
        10,
        "W011 is out"
    );
    let err = store.snapshot_workers(1).await.unwrap_err().to_string();
    assert!(err.contains("removed by retention"), "{err}");
    let runs = store.runs(100).await.unwrap();
    assert_eq!(runs.len() as u64, 40 - pruned.runs);
    for run in &runs[1..] {
        assert!(
            run.added + run.removed > 0,
            "run {} changed nothing and is kept",
            run.id
        );
    }
    for (as_of, want) in &expected_at {
        for group in ["security", "engineering"] {
            let got: Vec<String> = store
                .members_at(group, *as_of)
                .await
                .unwrap()
                .into_keys()
                .collect();
            assert_eq!(
                &got,
                want.get(group).unwrap_or(&Vec::new()),
                "{group} at {as_of}"
            );
        }
    }
}

/// Migration 6 replaces the row per membership (`memberships`, `membership_changes`) with
/// compact sets; rosterd carries a database written by migrations 1 to 5 over when it opens
/// it. Every membership (reason, run joined in), every audit row, what `history` answers at
/// each date, and the targets' state come through; a plan reads the old tables the same.
async fn migration_6_carries_every_membership_and_audit_row(db: TestDb) {
    let backend = if db.url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let earlier = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(&source).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().as_ref() < "0006" {
            std::fs::copy(source.join(&name), earlier.path().join(&name)).unwrap();
        }
    }
    let store = Store::connect(&db.url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
    migrator.run(store.pool()).await.unwrap();

    // Five runs over four groups and 60 workers, changes chosen by a fixed sequence, replayed
    // here into the state and the audit the old schema held.
    let mut seed: u64 = 7;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let reasons_in = ["rule", "rule", "include", "member"];
    let reasons_out = [
        "rule_no_longer_matches",
        "not_eligible",
        "expired",
        "exclude",
    ];
    let mut state: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
    let mut audit: BTreeMap<i64, Vec<(String, String, bool, String)>> = BTreeMap::new();
    // After each run: its date, and each group's members with their reasons.
    type Members = BTreeMap<String, BTreeMap<String, String>>;
    let mut at_dates: Vec<(String, Members)> = Vec::new();
    for run in 1..=5i64 {
        let as_of = format!("2026-01-{:02}", run * 3);
        sqlx::query(
            "INSERT INTO runs (id, kind, started_at, finished_at, status, as_of, group_count, \
             membership_count, added, removed) VALUES ($1, 'evaluate', 't', 't', 'succeeded', $2, 4, 0, 0, 0)",
        )
        .bind(run)
        .bind(&as_of)
        .execute(store.pool())
        .await
        .unwrap();
        for _ in 0..(if run == 1 { 150 } else { 25 }) {
            let group = format!("g{}", next(4));
            let worker = format!("W{:02}", next(60));
            // One change per worker and group in a run, as the cycle makes them.
            if audit
                .get(&run)
                .is_some_and(|c| c.iter().any(|o| o.0 == group && o.1 == worker))
            {
                continue;
            }
            let key = (group.clone(), worker.clone());
            let change = if state.remove(&key).is_some() {
                (
                    group,
                    worker,
                    false,
                    reasons_out[next(4) as usize].to_string(),
                )
            } else {
                let reason = reasons_in[next(4) as usize].to_string();
                state.insert(key, (reason.clone(), run));
                (group, worker, true, reason)
            };
            audit.entry(run).or_default().push(change);
        }
        let mut by_group: Members = BTreeMap::new();
        for ((g, w), (reason, _)) in &state {
            by_group
                .entry(g.clone())
                .or_default()
                .insert(w.clone(), reason.clone());
        }
        at_dates.push((as_of, by_group));
    }
    for (run, changes) in &audit {
        for (g, w, added, reason) in changes {
            sqlx::query(
                "INSERT INTO membership_changes (run_id, group_name, worker_key, action, reason) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(run)
            .bind(g)
            .bind(w)
            .bind(if *added { "added" } else { "removed" })
            .bind(reason)
            .execute(store.pool())
            .await
            .unwrap();
        }
    }
    for ((g, w), (reason, since)) in &state {
        sqlx::query("INSERT INTO memberships VALUES ($1, $2, $3, $4)")
            .bind(g)
            .bind(w)
            .bind(reason)
            .bind(since)
            .execute(store.pool())
            .await
            .unwrap();
    }
    // What a target confirmed, a row per member before migration 8: W01 is cached with the
    // id the group holds; W02 with another (the target re-created them), so the id held is
    // an old one; u-9 is no worker's.
    sqlx::query(
        "INSERT INTO target_members VALUES ('okta', 'g1', 'u-1', 'W01'), ('okta', 'g1', 'u-9', NULL), \
         ('okta', 'g1', 'u-2-old', 'W02')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO target_users VALUES ('okta', 'W01', 'a@x', 'u-1', 't'), ('okta', 'W02', 'b@x', 'u-2', 't')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    // A snapshot's workers, one row each before migration 7; chunks of lines after.
    sqlx::query(
        "INSERT INTO snapshots (id, source, fetched_at, checksum, row_count, worker_count, \
         eligible_count, issue_count, status) VALUES (1, 'w.csv', 't', 'c', 2, 2, 2, 0, 'current')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let workers = [
        (
            "W01".to_string(),
            r#"{"division":"Security","name":"Ann \"A\" Lee"}"#.to_string(),
        ),
        ("W02".to_string(), r#"{"division":"Sales"}"#.to_string()),
    ];
    for (key, json) in &workers {
        sqlx::query("INSERT INTO snapshot_workers VALUES (1, $1, $2)")
            .bind(key)
            .bind(json)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let expected: BTreeMap<String, BTreeMap<String, (String, i64)>> =
        state.iter().fold(BTreeMap::new(), |mut out, ((g, w), m)| {
            out.entry(g.clone())
                .or_default()
                .insert(w.clone(), m.clone());
            out
        });
    let as_read = |m: BTreeMap<String, BTreeMap<String, rosterd::store::Membership>>| {
        m.into_iter()
            .map(|(g, ms)| {
                let ms = ms
                    .into_iter()
                    .map(|(w, m)| (w, (m.reason, m.since_run)))
                    .collect();
                (g, ms)
            })
            .collect::<BTreeMap<String, BTreeMap<String, (String, i64)>>>()
    };
    // A plan does not migrate: it reads the old tables as they are.
    let before_carry = store.member_state_for_reading().await.unwrap();
    let total: u64 = before_carry.groups.values().map(|g| g.members.len()).sum();
    assert_eq!(total as usize, state.len());
    store.close().await;

    let store = Store::open(&db.url).await.unwrap();
    assert_eq!(as_read(store.memberships().await.unwrap()), expected);
    assert_eq!(store.snapshot_workers(1).await.unwrap(), workers);
    for (run, changes) in &audit {
        let mut want: Vec<_> = changes.clone();
        want.sort();
        let mut got: Vec<_> = store
            .run_changes(*run)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.group, c.worker, c.added, c.reason))
            .collect();
        got.sort();
        assert_eq!(got, want, "run {run}");
    }
    for (date, by_group) in &at_dates {
        let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        for g in ["g0", "g1", "g2", "g3"] {
            let want = by_group.get(g).cloned().unwrap_or_default();
            assert_eq!(
                store.members_at(g, date).await.unwrap(),
                want,
                "{g} at {date}"
            );
        }
    }
    let (g, w) = (audit[&1][0].0.clone(), audit[&1][0].1.clone());
    let history: Vec<(i64, bool, String)> = audit
        .iter()
        .flat_map(|(run, cs)| {
            cs.iter()
                .filter(|c| c.0 == g && c.1 == w)
                .map(move |c| (*run, c.2, c.3.clone()))
        })
        .collect();
    assert_eq!(
        store
            .worker_history(&g, &w)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.run_id, h.added, h.reason))
            .collect::<Vec<_>>(),
        history
    );
    let known = store.target_members("okta").await.unwrap();
    assert_eq!(
        known["g1"],
        BTreeMap::from([
            ("u-1".to_string(), Some("W01".to_string())),
            ("u-2-old".to_string(), Some("W02".to_string())),
            ("u-9".to_string(), None)
        ])
    );
    // One row for the pair: W01 by worker id; the old id and the stranger as foreign entries.
    let sets = store.target_sets("okta").await.unwrap();
    let w01 = store.worker_id("W01").await.unwrap().unwrap();
    assert_eq!(sets["g1"].workers.iter().collect::<Vec<_>>(), [w01]);
    assert_eq!(
        sets["g1"].foreign.keys().collect::<Vec<_>>(),
        ["u-2-old", "u-9"]
    );
    assert_eq!(store.target_member_counts("okta").await.unwrap()["g1"], 3);
    let sizes = store.group_sizes().await.unwrap();
    for (g, members) in &expected {
        assert_eq!(sizes.get(g), Some(&members.len()), "{g}");
    }
    // The old tables are gone, and opening again carries nothing twice.
    assert!(sqlx::query("SELECT 1 FROM memberships")
        .fetch_all(store.pool())
        .await
        .is_err());
    store.close().await;
    let store = Store::open(&db.url).await.unwrap();
    assert_eq!(as_read(store.memberships().await.unwrap()), expected);
}

/// PostgreSQL over TLS, the server's certificate verified against the CA the test script
/// made (`sslmode=verify-full&sslrootcert=...`, as the ops guide shows); without that CA the
/// same server is refused.
#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let Ok(ca) = std::env::var("ROSTERD_TEST_POSTGRES_CA") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ROSTERD_TEST_POSTGRES_CA is not set: run the suite with scripts/test"
        );
        eprintln!("ROSTERD_TEST_POSTGRES_CA is not set: skipping the TLS test");
        return;
    };
    let url = db.url.replace("@127.0.0.1:", "@localhost:");
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    let store = Store::open(&verified).await.unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&verified).await.unwrap();
    let row: (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(row.0, "the session is not encrypted");
    pool.close().await;
    // The same server, without its CA: the certificate is not trusted.
    let err = Store::open(&format!("{url}?sslmode=verify-full"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cert") || err.contains("TLS") || err.contains("tls"),
        "{err}"
    );
    assert!(!err.contains("sslrootcert="), "{err}");
}

/// Fencing in the store (PostgreSQL, where several daemons share a database): a run's writes
/// carry the leadership epoch its process held when it started. Once another process takes
/// the leadership, they are refused in the same transaction, though the first process has
/// not noticed yet; a process that lost the leadership writes nothing at all.
#[tokio::test]
async fn a_superseded_leaders_run_writes_nothing() {
    let Some(db) = common::postgres_db().await else {
        return;
    };
    let a = Store::open(&db.url).await.unwrap();
    let b = Store::open(&db.url).await.unwrap();
    let now = "2026-11-26T12:00:00Z";
    let user = |id: &str| {
        vec![(
            "W1".to_string(),
            "w1@example.com".to_string(),
            Some(id.to_string()),
        )]
    };
    assert_eq!(a.take_leadership("a", now).await.unwrap(), 1);
    let run = a.fenced();
    run.save_target_users("app", &user("u1"), &[], now)
        .await
        .unwrap();
    assert_eq!(b.take_leadership("b", now).await.unwrap(), 2);
    let refused = run
        .save_target_users("app", &user("u2"), &[], now)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, rosterd::store::StoreError::Fenced { mine: 1, .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("the database is at epoch 2"),
        "{refused}"
    );
    // What b writes goes through, and a's refused write left nothing.
    b.fenced()
        .save_target_users("app", &user("u3"), &[], now)
        .await
        .unwrap();
    let cached = b.target_users("app").await.unwrap();
    assert_eq!(cached["W1"].user_id.as_deref(), Some("u3"));
    // A process that lost the leadership before its run started writes nothing.
    a.lose_leadership();
    assert!(a
        .fenced()
        .save_target_users("app", &user("u4"), &[], now)
        .await
        .is_err());
    // The CLI's store is not fenced.
    a.save_target_users("app", &user("u5"), &[], now)
        .await
        .unwrap();
    a.close().await;
    b.close().await;
}

/// The sample organisation (config, export, rules) in a temporary folder, on SQLite.
/// The config of an install in `dir` and its rules, loaded as a process does.
fn config_and_rules(
    dir: &std::path::Path,
) -> (
    std::sync::Arc<rosterd::config::Config>,
    std::sync::Arc<rosterd::rules::RuleSet>,
) {
    let config = rosterd::config::Config::load(&dir.join("rosterd.yaml")).unwrap();
    let schema = rosterd::directory::Schema::from_config(&config.directory);
    let rules = rosterd::rules::load(
        &config.rules.dir,
        &rosterd::rules::Context::from_config(&config, &schema),
    )
    .unwrap();
    (std::sync::Arc::new(config), std::sync::Arc::new(rules))
}

fn sample_install() -> (tempfile::TempDir, TestDb) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_db();
    let config: String = std::fs::read_to_string(root.join("rosterd.yaml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("database:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        format!("database: {}\n{config}", db.url),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sample")).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(root.join("rules"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    (dir, db)
}

/// Every group's stored members, by key.
async fn stored_members(store: &Store) -> BTreeMap<String, Vec<String>> {
    let state = store.member_state().await.unwrap();
    state
        .groups
        .iter()
        .map(|(name, g)| {
            let mut keys: Vec<String> = g
                .members
                .iter()
                .map(|id| state.workers.key(id).unwrap().to_string())
                .collect();
            keys.sort();
            (name.clone(), keys)
        })
        .collect()
}

/// A run that evaluates from what the run before it kept (as the daemon's do) stores exactly
/// what a run of a fresh process stores, along a chain of HR changes: the same membership
/// changes, members and snapshot differences, and the state it keeps in memory is the one the
/// store gives back (checkpoints included). One in three is also checked in full.
#[tokio::test]
async fn a_run_from_what_the_last_one_kept_stores_what_a_cold_run_stores() {
    use rand::SeedableRng as _;
    let (warm_dir, warm_db) = sample_install();
    let (cold_dir, cold_db) = sample_install();
    let warm_store = Store::open(&warm_db.url).await.unwrap();
    let cold_store = Store::open(&cold_db.url).await.unwrap();
    let inputs_of = config_and_rules;
    let mut rows = common::hr::sample_rows();
    let mut gone = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut warm = rosterd::cycle::Warm::new(3);
    // The rules are loaded once, as the daemon holds them between runs.
    let (warm_config, warm_rules) = inputs_of(warm_dir.path());
    let mut history = Vec::new();
    let (mut checkpoints, mut checkpointed) = (BTreeMap::new(), false);
    // Cold runs that compared only the workers their change could reach (engine::reach).
    let mut reached = Vec::new();
    for step in 0..40 {
        if step > 0 {
            for _ in 0..rand::Rng::random_range(&mut rng, 4..=12) {
                history.push(common::hr::change(&mut rows, &mut gone, &mut rng));
            }
        }
        let text = common::hr::csv_text(&rows);
        for dir in [&warm_dir, &cold_dir] {
            std::fs::write(dir.path().join("sample/workers.csv"), &text).unwrap();
        }
        let (cold_config, cold_rules) = inputs_of(cold_dir.path());
        let inputs = |config, rules| rosterd::cycle::Inputs {
            config,
            rules,
            as_of: common::hr::as_of(),
            now: rosterd::clock::now_utc(),
            kind: "sync",
        };
        let kept = rosterd::cycle::run_warm(
            &inputs(warm_config.clone(), warm_rules.clone()),
            &warm_store,
            &mut warm,
        )
        .await
        .unwrap_or_else(|e| panic!("step {step}: {e}\n{}", history.join("\n")));
        // The cold store finds the changed rows by the digests stored with the snapshot in
        // force, and on every third step compares every row (its digests deleted).
        if step % 3 == 2 {
            let pool = sqlx::AnyPool::connect(&cold_db.url).await.unwrap();
            sqlx::query("DELETE FROM snapshot_digests")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let cold = rosterd::cycle::run(&inputs(cold_config, cold_rules), &cold_store)
            .await
            .unwrap();
        let counts = |o: &Outcome| match o {
            Outcome::Applied {
                added,
                removed,
                memberships,
                snapshot_id,
                ..
            } => (*added, *removed, *memberships, *snapshot_id),
            Outcome::Held { .. } => panic!("step {step}: held\n{}", history.join("\n")),
        };
        // The state the warm run keeps is the one the store gives back.
        let (state, _, _) = warm.kept_state().expect("a kept state");
        let read = warm_store.member_state().await.unwrap();
        assert_eq!(state.last_run, read.last_run, "step {step}");
        assert_eq!(state.workers.len(), read.workers.len(), "step {step}");
        assert!(
            state.groups == read.groups,
            "step {step}: the kept state differs from the stored one"
        );
        // What a push reads: the same from what was kept as from the store.
        let kept_desired =
            rosterd::push::Desired::from_kept_or_store(&warm, &warm_store, &warm_config)
                .await
                .unwrap();
        let read_desired = rosterd::push::Desired::from_store(&warm_store, &warm_config)
            .await
            .unwrap();
        assert!(
            kept_desired.members == read_desired.members,
            "step {step}: desired members"
        );
        let attributes = rosterd::push::match_attributes(&warm_config);
        assert!(!attributes.is_empty());
        for attribute in &attributes {
            for id in 0..read.workers.len() as u32 {
                assert_eq!(
                    kept_desired.match_value(attribute, id),
                    read_desired.match_value(attribute, id),
                    "step {step}: {attribute} of worker {id}"
                );
            }
        }
        for (name, group) in &read.groups {
            let before = checkpoints.insert(name.clone(), group.since_checkpoint);
            checkpointed |= before.is_some_and(|b| b > group.since_checkpoint);
        }
        if let Outcome::Applied {
            compared: Some(n), ..
        } = cold
        {
            reached.push((step, n));
        }
        let (k, c) = (counts(&kept), counts(&cold));
        assert_eq!(k, c, "step {step}:\n{}", history.join("\n"));
        assert_eq!(
            stored_members(&warm_store).await,
            stored_members(&cold_store).await,
            "step {step}"
        );
        if let (Some(a), Some(b)) = (k.3, c.3) {
            let digests = cold_store.snapshot_digests(b).await.unwrap();
            let digests = digests.expect("the digests of the snapshot in force");
            let workers = cold_store.snapshot_workers(b).await.unwrap();
            let mut keys: Vec<String> = digests
                .decode()
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            assert!(
                keys.iter().eq(workers.iter().map(|(k, _)| k)),
                "step {step}: a digest for each worker of the snapshot in force"
            );
            let changes = |s: Vec<rosterd::store::SnapshotChange>| -> Vec<String> {
                s.iter()
                    .map(|c| {
                        format!(
                            "{} {} {:?} {:?} {:?}",
                            c.worker_key, c.change, c.attribute, c.old_value, c.new_value
                        )
                    })
                    .collect()
            };
            assert_eq!(
                changes(warm_store.snapshot_changes(a).await.unwrap()),
                changes(cold_store.snapshot_changes(b).await.unwrap()),
                "step {step}: the snapshot's changes"
            );
            assert_eq!(
                warm_store.snapshot_workers(a).await.unwrap(),
                cold_store.snapshot_workers(b).await.unwrap(),
                "step {step}: the snapshot's workers"
            );
        }
    }
    assert!(history.len() >= 20);
    assert!(
        checkpointed,
        "a group's changes were folded into a checkpoint on the way"
    );
    assert_eq!(
        warm.incremental_runs(),
        39,
        "every run after the first evaluated from the one before"
    );
    // Their loads typed only the rows that changed, but on the checked runs (every third),
    // which go on from a load from nothing.
    let rows = (common::hr::sample_rows().len() - 1) as u64;
    assert!(
        warm.reused_rows() > 20 * (rows - 30),
        "{} rows taken from the kept snapshots",
        warm.reused_rows()
    );
    // Every step but the first, those after the digests were deleted, and those whose
    // snapshot was stored whole (the chain's end) found the changed rows by their digests.
    assert!(
        reached.len() >= 20,
        "the cold runs compared everyone too often: {reached:?}"
    );
    let workers = common::hr::sample_rows().len() - 1;
    assert!(
        reached.iter().all(|&(_, n)| n < workers),
        "{reached:?} of {workers}"
    );
}

/// A run that finds the export unchanged keeps what the run before it kept: the stored
/// memberships (which a run that kept none reads while the export loads) and the
/// evaluation, so that the run after it goes on from them.
#[tokio::test]
async fn an_unchanged_run_keeps_what_the_last_one_kept() {
    use rand::SeedableRng as _;
    let (dir, db) = sample_install();
    let store = Store::open(&db.url).await.unwrap();
    let export = dir.path().join("sample/workers.csv");
    let (config, rules) = config_and_rules(dir.path());
    let inputs = rosterd::cycle::Inputs {
        config,
        rules,
        as_of: common::hr::as_of(),
        now: rosterd::clock::now_utc(),
        kind: "sync",
    };
    let mut rows = common::hr::sample_rows();
    let mut warm = rosterd::cycle::Warm::new(0);
    std::fs::write(&export, common::hr::csv_text(&rows)).unwrap();
    for _ in 0..2 {
        let outcome = rosterd::cycle::run_warm(&inputs, &store, &mut warm)
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
        let (state, _, _) = warm.kept_state().expect("a kept state");
        let stored = store.member_state().await.unwrap();
        assert_eq!(state.last_run, stored.last_run);
        assert!(state.groups == stored.groups);
    }
    assert_eq!(warm.incremental_runs(), 0);
    // A few workers changed: evaluated from what was kept, compared with the kept state.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..5 {
        common::hr::change(&mut rows, &mut Vec::new(), &mut rng);
    }
    std::fs::write(&export, common::hr::csv_text(&rows)).unwrap();
    let after = rosterd::cycle::run_warm(&inputs, &store, &mut warm)
        .await
        .unwrap();
    assert!(matches!(after, Outcome::Applied { .. }), "{after:?}");
    assert_eq!(warm.incremental_runs(), 1);
    let (state, _, _) = warm.kept_state().expect("a kept state");
    let stored = store.member_state().await.unwrap();
    assert_eq!(state.last_run, stored.last_run);
    assert!(state.groups == stored.groups);
}

/// A run that fails after the run that vouches for the stored state ends the vouching: the
/// next cold run compares everyone (so that a check that found a difference is not failed
/// again by every run after it), and the succeeded run after that vouches again.
#[tokio::test]
async fn a_failed_run_ends_what_the_last_succeeded_run_vouched_for() {
    use rand::SeedableRng as _;
    let (dir, db) = sample_install();
    let store = Store::open(&db.url).await.unwrap();
    let export = dir.path().join("sample/workers.csv");
    let mut rows = common::hr::sample_rows();
    let mut gone = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (config, rules) = config_and_rules(dir.path());
    let inputs = || rosterd::cycle::Inputs {
        config: config.clone(),
        rules: rules.clone(),
        as_of: common::hr::as_of(),
        now: rosterd::clock::now_utc(),
        kind: "sync",
    };
    let mut step = |rows: &mut Vec<Vec<String>>| {
        for _ in 0..3 {
            common::hr::change(rows, &mut gone, &mut rng);
        }
        std::fs::write(&export, common::hr::csv_text(rows)).unwrap();
    };
    let compared = |o: Outcome| match o {
        Outcome::Applied { compared, .. } => compared,
        Outcome::Held { .. } => panic!("held"),
    };
    std::fs::write(&export, common::hr::csv_text(&rows)).unwrap();
    assert_eq!(
        compared(rosterd::cycle::run(&inputs(), &store).await.unwrap()),
        None
    );
    step(&mut rows);
    let vouched = compared(rosterd::cycle::run(&inputs(), &store).await.unwrap());
    assert!(vouched.is_some_and(|n| n < rows.len()), "{vouched:?}");
    // An export that does not load: the run fails, and is recorded as failed.
    std::fs::write(&export, "Employee_ID\n\"unterminated\n").unwrap();
    rosterd::cycle::run(&inputs(), &store).await.unwrap_err();
    assert_eq!(
        store.runs(1).await.unwrap()[0].status,
        rosterd::store::RunStatus::Failed
    );
    step(&mut rows);
    assert_eq!(
        compared(rosterd::cycle::run(&inputs(), &store).await.unwrap()),
        None,
        "the run after a failed one compares everyone"
    );
    step(&mut rows);
    let again = compared(rosterd::cycle::run(&inputs(), &store).await.unwrap());
    assert!(again.is_some(), "a succeeded run vouches again");
}
