//! How a new snapshot is stored: only the rows that changed, found from the snapshot kept
//! in memory or by the row digests stored with the one in force; its base and depth (a
//! difference from the one in force, or whole); and its changes from it, worker by worker.

use super::warm::{self, Made};
use super::{off_runtime, Ahead, CycleError, Phase};
use crate::directory::{self, ChangeKind, Snapshot, WorkerId};
use crate::store::{RowDigests, SnapshotChange, Store, StoreError, SNAPSHOT_CHAIN};

/// A new snapshot's rows to compare with the one in force `current_id`: only the rows that
/// changed when the kept snapshot is that one, or when its stored row digests tell which.
/// `None` when no snapshot is in force: every worker joins, and the caller stores the
/// snapshot whole, packed from its columns a chunk at a time (a million workers' rows are
/// never all made at once).
pub(super) fn rows_to_store(
    snapshot: &Snapshot,
    made: &Made,
    current_id: Option<i64>,
    chain: Option<(i64, i64)>,
) -> Option<Rows> {
    current_id?;
    let phase = Phase::start();
    let rows = match made.earlier.as_ref() {
        Some(e) if Some(e.snapshot_id) == current_id => {
            let (before, after) = warm::changed_rows(e, snapshot);
            let changes = directory::diff_rows(&before, &after);
            let total = snapshot.len();
            Rows::Form(form_of(changes, &after, total, chain, || {
                snapshot.to_rows()
            }))
        }
        _ => Rows::All(snapshot.to_rows()),
    };
    phase.done("serialize the snapshot");
    Some(rows)
}

/// For a run that kept nothing of the snapshot in force but has the row digests stored with
/// it (`stored`): the rows to compare, found before the run evaluates, with the read of the
/// stored rows they are compared with started to run while it evaluates ([`Rows::Among`]).
/// At a million workers that read took longer than the evaluation.
pub(super) async fn changed_ahead(
    store: &Store,
    snapshot: Snapshot,
    stored: Option<(i64, RowDigests)>,
) -> Result<(Snapshot, Option<Rows>), StoreError> {
    let Some((id, digests)) = stored else {
        return Ok((snapshot, None));
    };
    let (snapshot, found) = off_runtime(move || {
        let phase = Phase::start();
        let found = changed_by_digests(&snapshot, &digests).map(|found| match found {
            Some((changed, keys)) => Ok((snapshot.rows_of(&changed), changed, keys)),
            None => Err(Rows::All(snapshot.to_rows())),
        });
        phase.done("serialize the snapshot");
        (snapshot, found)
    })
    .await;
    let rows = match found? {
        Ok((after, changed, keys)) => {
            let store = store.clone();
            let before = Ahead::start(
                "read the changed rows of the current snapshot (while the run evaluates)",
                async move {
                    let keys: std::collections::HashSet<&str> =
                        keys.iter().map(String::as_str).collect();
                    store.snapshot_workers_among(id, Some(&keys)).await
                },
            );
            Rows::Among {
                of: id,
                after,
                changed,
                before,
            }
        }
        Err(all) => all,
    };
    Ok((snapshot, Some(rows)))
}

/// The workers who changed or joined, and the keys of the stored rows to compare them with,
/// from the row digests stored with the snapshot in force: `None` when they cannot be
/// compared (made in another form), or when the difference would not be stored as one (half
/// the export or more changed).
fn changed_by_digests(
    snapshot: &Snapshot,
    digests: &RowDigests,
) -> Result<Option<directory::ChangedRows>, StoreError> {
    let found = snapshot.changed_from_digests(&digests.form, |visit| digests.each(visit))?;
    let Some((changed, keys)) = found else {
        return Ok(None);
    };
    if changed.len() * 2 > snapshot.len() {
        return Ok(None);
    }
    tracing::debug!(
        changed = changed.len(),
        workers = snapshot.len(),
        "found the rows that changed by their digests"
    );
    Ok(Some((changed, keys)))
}

/// A new snapshot's rows, to compare with the one in force.
pub(super) enum Rows {
    /// Every worker's.
    All(Vec<(String, String)>),
    /// The stored form already made from the rows of the workers who changed, joined or
    /// left ([`warm::changed_rows`]): the others are the same in both.
    Form(StoredForm),
    /// The rows of the workers who changed or joined, and the stored rows of snapshot `of`
    /// to compare them with (of those who changed or left), being read meanwhile: every
    /// other worker's row has the digest it had ([`changed_ahead`]).
    Among {
        of: i64,
        after: Vec<(String, String)>,
        changed: Vec<WorkerId>,
        before: Ahead<KeyedRows>,
    },
}

/// The rows a new snapshot is stored with, the snapshot it is a difference from (and the
/// depth of that difference), and its changes from the current one: stored as its
/// difference (the workers who joined or changed) unless the chain of differences is long or
/// the difference is most of the export; then whole. With [`Rows::Among`], also the
/// changed workers and the stored rows read for them (snapshot `of`'s, of the workers who
/// changed or left): what a cold run's reach needs.
pub(super) async fn stored_form(
    store: &Store,
    current: Option<&crate::store::SnapshotInfo>,
    rows: Rows,
    snapshot: &Snapshot,
) -> Result<(StoredForm, Option<EarlierRows>), CycleError> {
    let chain = chain_of(current);
    let phase = Phase::start();
    let (before, rows) = match (rows, current) {
        (Rows::Form(form), _) => return Ok((form, None)),
        (
            Rows::Among {
                of,
                after,
                changed,
                before,
            },
            _,
        ) => {
            let before = before.result().await?;
            phase.done("have the changed rows of the current snapshot");
            let changes = directory::diff_rows(&before, &after);
            let form = form_of(changes, &after, snapshot.len(), chain, || {
                snapshot.to_rows()
            });
            return Ok((form, Some((of, changed, before))));
        }
        (Rows::All(rows), Some(c)) => (store.snapshot_workers(c.id).await?, rows),
        (Rows::All(rows), None) => (Vec::new(), rows),
    };
    phase.done("read the current snapshot");
    Ok((
        off_runtime(move || {
            let phase = Phase::start();
            let changes = directory::diff_rows(&before, &rows);
            drop(before);
            let total = rows.len();
            let (changed, base) = changed_or_whole(&changes, &rows, total, chain);
            // Stored whole (a first snapshot, or a long chain): the rows themselves, not a copy.
            let form = (changed.unwrap_or(rows), base, snapshot_changes(changes));
            phase.done("compare with the current snapshot");
            form
        })
        .await,
        None,
    ))
}

/// How deep a new snapshot's difference would be, and from which snapshot: `None` when it
/// must be stored whole.
pub(super) fn chain_of(current: Option<&crate::store::SnapshotInfo>) -> Option<(i64, i64)> {
    current
        .filter(|c| c.depth + 1 < SNAPSHOT_CHAIN)
        .map(|c| (c.id, c.depth + 1))
}

/// [`stored_form`] from the changes already found: the `rows` that changed or joined (a
/// superset of them will do), stored as a difference from `chain` when they are at most half
/// of the `total` workers, else the rows `whole` gives.
fn form_of(
    changes: Vec<directory::WorkerChange>,
    rows: &[(String, String)],
    total: usize,
    chain: Option<(i64, i64)>,
    whole: impl FnOnce() -> Vec<(String, String)>,
) -> StoredForm {
    let (changed, base) = changed_or_whole(&changes, rows, total, chain);
    (
        changed.unwrap_or_else(whole),
        base,
        snapshot_changes(changes),
    )
}

/// The rows of the workers who joined or changed, and the base they are a difference from,
/// when they are at most half of the `total` workers and `chain` allows a difference; `None`
/// and no base when the snapshot is stored whole.
fn changed_or_whole(
    changes: &[directory::WorkerChange],
    rows: &[(String, String)],
    total: usize,
    chain: Option<(i64, i64)>,
) -> (Option<KeyedRows>, Option<(i64, i64)>) {
    // The workers who joined or changed, from the diff just made.
    let touched: std::collections::HashSet<&str> = changes
        .iter()
        .filter(|c| c.change != ChangeKind::Left)
        .map(|c| c.key.as_str())
        .collect();
    match chain {
        Some(base) if touched.len() * 2 <= total => {
            let changed = rows
                .iter()
                .filter(|(key, _)| touched.contains(key.as_str()))
                .cloned()
                .collect();
            (Some(changed), Some(base))
        }
        _ => (None, None),
    }
}

fn snapshot_changes(changes: Vec<directory::WorkerChange>) -> Vec<SnapshotChange> {
    changes
        .into_iter()
        .map(|c| SnapshotChange {
            worker_key: c.key,
            change: c.change,
            attribute: c.attribute,
            old_value: c.old_value,
            new_value: c.new_value,
        })
        .collect()
}

/// Workers' rows as the store keeps them: key, attributes as JSON.
pub(super) type KeyedRows = Vec<(String, String)>;

/// The snapshot, the changed workers and the stored rows [`stored_form`] read for them.
pub(super) type EarlierRows = (i64, Vec<WorkerId>, KeyedRows);

/// What [`stored_form`] gives: the rows, the base and depth, the changes.
pub(super) type StoredForm = (
    Vec<(String, String)>,
    Option<(i64, i64)>,
    Vec<SnapshotChange>,
);
