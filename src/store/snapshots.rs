//! HR snapshots: every export that was loaded, its workers, its diff against the previous one,
//! and the failsafe's holds.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::{Any, Row, Transaction};

use super::{insert_rows, Backend, Col, Store, StoreError};

use super::text::{ChangeKind, SnapshotStatus};

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub id: i64,
    pub source: String,
    pub fetched_at: String,
    pub checksum: String,
    pub rows: i64,
    pub workers: i64,
    pub eligible: i64,
    pub issues: i64,
    pub status: SnapshotStatus,
    pub hold_reason: Option<String>,
    pub previous_id: Option<i64>,
    /// Differences since the last snapshot stored whole; 0 when this one is.
    pub depth: i64,
    /// When retention removed its workers.
    pub pruned_at: Option<String>,
}

/// A snapshot to store with a run.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub source: String,
    pub fetched_at: String,
    pub checksum: String,
    pub rows: i64,
    pub workers: i64,
    pub eligible: i64,
    pub issues: i64,
    /// Why the failsafe holds it; `None` makes it current.
    pub hold_reason: Option<String>,
    /// Worker key → attributes as a JSON object: every worker when `base` is `None`, else
    /// only those who joined or changed since `base` (those who left are in `changes`).
    pub worker_rows: PackedRows,
    /// The snapshot this one is stored as a difference from, and that difference's depth.
    pub base: Option<(i64, i64)>,
    pub changes: Vec<SnapshotChange>,
    /// Its rows' digests (CSV exports), kept while it is the snapshot in force.
    pub digests: Option<RowDigests>,
}

/// The digest of each worker's row as the export had it, and how they were made (`form`):
/// a process that kept nothing from the run before finds the rows that changed by
/// comparing these with a new export's ([`Store::snapshot_digests`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowDigests {
    pub form: String,
    /// Per worker, front-coded: see [`RowDigests::encode`].
    pub bytes: Vec<u8>,
}

impl RowDigests {
    /// Each key is stored as the length of the prefix it shares with the key before it (one
    /// byte), the rest's length (LEB128) and the rest; each digest as its low 8 bytes. About
    /// 13 bytes a worker for keys like `E000123`.
    pub fn encode<'a>(form: String, rows: impl Iterator<Item = (&'a str, u128)>) -> RowDigests {
        let mut bytes = Vec::new();
        let mut last: &[u8] = &[];
        for (key, digest) in rows {
            let key = key.as_bytes();
            let shared = key
                .iter()
                .zip(last)
                .take(255)
                .take_while(|(a, b)| a == b)
                .count();
            bytes.push(shared as u8);
            let mut rest = key.len() - shared;
            loop {
                let byte = (rest & 0x7f) as u8;
                rest >>= 7;
                if rest == 0 {
                    bytes.push(byte);
                    break;
                }
                bytes.push(byte | 0x80);
            }
            bytes.extend_from_slice(&key[shared..]);
            bytes.extend_from_slice(&(digest as u64).to_le_bytes());
            last = key;
        }
        RowDigests { form, bytes }
    }

    /// Each worker's key and digest (its low 8 bytes), in the snapshot's order.
    pub fn decode(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        self.each(&mut |key, digest| out.push((key.to_string(), digest)))?;
        Ok(out)
    }

    /// [`RowDigests::decode`], a worker at a time, without a string made for each key (a
    /// million workers' keys, made and dropped, were a third of comparing with them).
    pub fn each(&self, visit: &mut dyn FnMut(&str, u64)) -> Result<(), StoreError> {
        let bad =
            |what: &str| super::error::corrupt("the row digests of the snapshot in force", what);
        let mut key: Vec<u8> = Vec::new();
        let mut rest = self.bytes.as_slice();
        while let Some((&shared, tail)) = rest.split_first() {
            let (mut len, mut shift, mut tail) = (0usize, 0u32, tail);
            loop {
                let (&byte, more) = tail
                    .split_first()
                    .filter(|_| shift < 35)
                    .ok_or_else(|| bad("a key's length is cut short"))?;
                len |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                tail = more;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let (suffix, tail) = tail
                .split_at_checked(len)
                .ok_or_else(|| bad("a key is cut short"))?;
            if usize::from(shared) > key.len() {
                return Err(bad("a key shares more than the key before it has"));
            }
            key.truncate(usize::from(shared));
            key.extend_from_slice(suffix);
            let text = std::str::from_utf8(&key).map_err(|_| bad("a key is not UTF-8"))?;
            let (digest, tail) = tail
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("a digest is cut short"))?;
            visit(text, u64::from_le_bytes(*digest));
            rest = tail;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{chunk_bytes, PackedRows, RowDigests, ROWS_PER_CHUNK};

    /// Rows packed from a slice and made a chunk at a time pack the same, in chunks of
    /// [`ROWS_PER_CHUNK`] (the last one short), and unpack to their lines.
    #[test]
    fn packed_rows_are_the_same_made_whole_or_a_chunk_at_a_time() {
        let n = ROWS_PER_CHUNK * 2 + 7;
        let row = |w: usize| (format!("E{w:07}"), format!("{{\"n\":{w},\"t\":\"a\\tb\"}}"));
        let rows: Vec<(String, String)> = (0..n).map(row).collect();
        let whole = PackedRows::pack(&rows);
        let made = PackedRows::pack_with(n, |range| range.map(row).collect());
        assert_eq!(whole, made);
        assert_eq!((whole.len(), whole.chunks.len()), (n, 3));
        let last = chunk_bytes(String::new(), whole.chunks.last().cloned(), 1).unwrap();
        let last = String::from_utf8(last).unwrap();
        let lines: Vec<&str> = last.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[6], format!("{}\t{}", rows[n - 1].0, rows[n - 1].1));
        assert!(PackedRows::pack(&[]).is_empty());
    }

    #[test]
    fn row_digests_read_back_as_written() {
        let long = "ÿ-long-".repeat(40);
        let keys = ["E000123", "E000124", "E000200", "", &long, &long, "E0"];
        let rows: Vec<(&str, u128)> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, (i as u128) << 70 | (0xfeed_0000 + i as u128)))
            .collect();
        let digests = RowDigests::encode("form".into(), rows.iter().copied());
        let back = digests.decode().unwrap();
        let expected: Vec<(String, u64)> = rows
            .iter()
            .map(|&(k, d)| (k.to_string(), d as u64))
            .collect();
        assert_eq!(back, expected);
        for cut in 1..digests.bytes.len() {
            let short = RowDigests {
                form: "form".into(),
                bytes: digests.bytes[..cut].to_vec(),
            };
            // Cut inside an entry it is an error; between two, the entries before the cut.
            match short.decode() {
                Ok(some) => assert!(some.len() < back.len() && back.starts_with(&some)),
                Err(e) => assert!(e.to_string().contains("cut short"), "cut at {cut}: {e}"),
            }
        }
    }
}

/// One difference between a snapshot and the one before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotChange {
    pub worker_key: String,
    pub change: ChangeKind,
    pub attribute: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

const COLUMNS: &str = "id, source, fetched_at, checksum, row_count, worker_count, eligible_count, \
                       issue_count, status, hold_reason, previous_id, depth, pruned_at";

/// Differences stored one after another before a snapshot is stored whole again: reading a
/// snapshot reads one whole snapshot and at most this many differences.
pub const SNAPSHOT_CHAIN: i64 = 16;

/// Workers per `snapshot_rows` row.
const ROWS_PER_CHUNK: usize = 10_000;

/// A snapshot's rows as they are stored: chunks of [`ROWS_PER_CHUNK`] workers, each the text
/// `key TAB json NEWLINE` per worker, packed as an LZ4 block. Made off the async runtime
/// (packing a million workers' rows takes a second of CPU), written by [`insert`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedRows {
    chunks: Vec<Vec<u8>>,
    len: usize,
}

impl PackedRows {
    /// Packs `rows` (worker key, attributes as JSON), the chunks on two threads.
    pub fn pack(rows: &[(String, String)]) -> PackedRows {
        let chunks: Vec<&[(String, String)]> = rows.chunks(ROWS_PER_CHUNK).collect();
        let chunks = crate::halves::map_halves(chunks.len(), |range| {
            range.map(|c| pack_chunk(chunks[c])).collect()
        });
        PackedRows {
            chunks,
            len: rows.len(),
        }
    }

    /// Packs the rows of `len` workers that `rows_of` makes, a chunk's range at a time (on
    /// two threads): only two chunks' rows exist at once.
    pub fn pack_with(
        len: usize,
        rows_of: impl Fn(std::ops::Range<usize>) -> Vec<(String, String)> + Sync,
    ) -> PackedRows {
        let count = len.div_ceil(ROWS_PER_CHUNK);
        let chunks = crate::halves::map_halves(count, |range| {
            range
                .map(|c| {
                    pack_chunk(&rows_of(
                        c * ROWS_PER_CHUNK..len.min((c + 1) * ROWS_PER_CHUNK),
                    ))
                })
                .collect()
        });
        PackedRows { chunks, len }
    }

    /// How many workers' rows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One chunk's rows as `key TAB json NEWLINE` lines, packed.
fn pack_chunk(rows: &[(String, String)]) -> Vec<u8> {
    let mut text = Vec::with_capacity(rows.iter().map(|(k, j)| k.len() + j.len() + 2).sum());
    for (key, json) in rows {
        text.extend_from_slice(key.as_bytes());
        text.push(b'\t');
        text.extend_from_slice(json.as_bytes());
        text.push(b'\n');
    }
    lz4_flex::block::compress_prepend_size(&text)
}

/// The bytes of a stored chunk, not checked as text: `rows`, or `packed` unpacked.
fn chunk_bytes(
    rows: String,
    packed: Option<Vec<u8>>,
    snapshot: i64,
) -> Result<Vec<u8>, StoreError> {
    let Some(packed) = packed else {
        return Ok(rows.into_bytes());
    };
    lz4_flex::block::decompress_size_prepended(&packed).map_err(|e| {
        super::error::corrupt(
            &format!("snapshot {snapshot}"),
            format!("a packed chunk of rows: {e}"),
        )
    })
}

fn info(row: &AnyRow) -> Result<SnapshotInfo, sqlx::Error> {
    Ok(SnapshotInfo {
        id: row.try_get::<i64, _>("id")?,
        source: row.try_get("source")?,
        fetched_at: row.try_get("fetched_at")?,
        checksum: row.try_get("checksum")?,
        rows: row.try_get::<i64, _>("row_count")?,
        workers: row.try_get::<i64, _>("worker_count")?,
        eligible: row.try_get::<i64, _>("eligible_count")?,
        issues: row.try_get::<i64, _>("issue_count")?,
        status: SnapshotStatus::parse(&row.try_get::<String, _>("status")?)?,
        hold_reason: row.try_get("hold_reason")?,
        previous_id: row.try_get("previous_id")?,
        depth: row.try_get::<i64, _>("depth")?,
        pruned_at: row.try_get("pruned_at")?,
    })
}

impl Store {
    pub async fn snapshot(&self, id: i64) -> Result<Option<SnapshotInfo>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM snapshots WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| info(&r)).transpose()?)
    }

    /// The snapshot evaluations use, if any was ever accepted.
    pub async fn current_snapshot(&self) -> Result<Option<SnapshotInfo>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM snapshots WHERE status = 'current' ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| info(&r)).transpose()?)
    }

    /// The newest snapshot of an export with this checksum.
    pub async fn snapshot_by_checksum(
        &self,
        checksum: &str,
    ) -> Result<Option<SnapshotInfo>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM snapshots WHERE checksum = $1 ORDER BY id DESC LIMIT 1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| info(&r)).transpose()?)
    }

    /// Newest first.
    pub async fn snapshots(&self, limit: i64) -> Result<Vec<SnapshotInfo>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM snapshots ORDER BY id DESC LIMIT $1");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(info).collect::<Result<_, _>>()?)
    }

    /// Worker key → attributes JSON, in key order: the last snapshot stored whole before it,
    /// with the differences since applied.
    pub async fn snapshot_workers(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.snapshot_workers_among(id, None).await
    }

    /// Snapshot `id`'s row digests, when it has them ([`RowDigests`]).
    pub async fn snapshot_digests(&self, id: i64) -> Result<Option<RowDigests>, StoreError> {
        let row = sqlx::query("SELECT form, digests FROM snapshot_digests WHERE snapshot_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(RowDigests {
                form: row.try_get(0)?,
                bytes: row.try_get(1)?,
            })
        })
        .transpose()
    }

    /// [`Store::snapshot_workers`], of only the workers `among` names when given.
    pub async fn snapshot_workers_among(
        &self,
        id: i64,
        among: Option<&std::collections::HashSet<&str>>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut chain = Vec::new();
        let mut at = id;
        loop {
            let info = self
                .snapshot(at)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no snapshot {at}")))?;
            if let Some(when) = &info.pruned_at {
                return Err(StoreError::NotFound(format!(
                    "the workers of snapshot {at} were removed by retention on {when}"
                )));
            }
            let (depth, previous) = (info.depth, info.previous_id);
            chain.push(info);
            match previous {
                Some(previous) if depth > 0 => at = previous,
                _ => break,
            }
        }
        let mut rows: BTreeMap<String, String> = BTreeMap::new();
        for info in chain.iter().rev() {
            if info.depth > 0 {
                let left = sqlx::query(
                    "SELECT worker_key FROM snapshot_changes WHERE snapshot_id = $1 AND change = 'left'",
                )
                .bind(info.id)
                .fetch_all(&self.pool)
                .await?;
                for row in left {
                    rows.remove(&row.try_get::<String, _>(0)?);
                }
            }
            let chunks =
                sqlx::query("SELECT rows, packed FROM snapshot_rows WHERE snapshot_id = $1")
                    .bind(info.id)
                    .fetch_all(&self.pool)
                    .await?;
            let corrupt =
                |what: &str| super::error::corrupt(&format!("snapshot {}", info.id), what);
            for chunk in chunks {
                let text = chunk_bytes(chunk.try_get(0)?, chunk.try_get(1)?, info.id)?;
                // As bytes: only the rows kept are checked as text (a run after a 1% change
                // keeps 1% of them, and checking every row was a tenth of reading them).
                let mut from = 0;
                for end in memchr::memchr_iter(b'\n', &text).chain([text.len()]) {
                    let line = &text[from..end];
                    from = end + 1;
                    if line.is_empty() && end == text.len() {
                        continue;
                    }
                    let tab = memchr::memchr(b'\t', line)
                        .ok_or_else(|| corrupt("a stored row has no key"))?;
                    let (key, json) = (&line[..tab], &line[tab + 1..]);
                    let key = std::str::from_utf8(key)
                        .map_err(|_| corrupt("a stored row's key is not UTF-8"))?;
                    if among.is_none_or(|keys| keys.contains(key)) {
                        let json = std::str::from_utf8(json)
                            .map_err(|_| corrupt("a stored row is not UTF-8"))?;
                        rows.insert(key.to_string(), json.to_string());
                    }
                }
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// Snapshot `id`'s changes from the one in force before it, by worker key. A snapshot
    /// made when none was in force stores no rows for them: every worker it has joined.
    pub async fn snapshot_changes(&self, id: i64) -> Result<Vec<SnapshotChange>, StoreError> {
        let stored = self.stored_snapshot_changes(id).await?;
        if !stored.is_empty() {
            return Ok(stored);
        }
        let first = self
            .snapshot(id)
            .await?
            .is_some_and(|s| s.previous_id.is_none());
        if !first {
            return Ok(stored);
        }
        let workers = self.snapshot_workers(id).await?;
        Ok(workers
            .into_iter()
            .map(|(key, _)| SnapshotChange {
                worker_key: key,
                change: ChangeKind::Joined,
                attribute: None,
                old_value: None,
                new_value: None,
            })
            .collect())
    }

    async fn stored_snapshot_changes(&self, id: i64) -> Result<Vec<SnapshotChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker_key, change, attribute, old_value, new_value FROM snapshot_changes \
             WHERE snapshot_id = $1 ORDER BY worker_key, attribute",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(SnapshotChange {
                    worker_key: r.try_get(0)?,
                    change: ChangeKind::parse(&r.try_get::<String, _>(1)?)?,
                    attribute: r.try_get(2)?,
                    old_value: r.try_get(3)?,
                    new_value: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Releases a held snapshot; the next run makes it current.
    pub async fn approve_snapshot(&self, id: i64, now: &str) -> Result<SnapshotInfo, StoreError> {
        let _writing = self.writing().await;
        let snapshot = self
            .snapshot(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no snapshot {id}")))?;
        if snapshot.status != SnapshotStatus::Held {
            return Err(StoreError::Conflict(format!(
                "snapshot {id} is {}, not held: there is nothing to approve",
                snapshot.status.as_str()
            )));
        }
        sqlx::query("UPDATE snapshots SET status = 'approved', approved_at = $1 WHERE id = $2 AND status = 'held'")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(SnapshotInfo {
            status: SnapshotStatus::Approved,
            ..snapshot
        })
    }
}

/// Stores `new` inside the run's transaction; a snapshot that is not held becomes current.
pub(super) async fn insert(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    new: &NewSnapshot,
) -> Result<i64, StoreError> {
    let current: Option<i64> =
        sqlx::query("SELECT id FROM snapshots WHERE status = 'current' ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<i64, _>("id"))
            .transpose()?;
    // A difference is from the snapshot it was made against; a whole snapshot names the
    // current one before it.
    let (previous, depth) = match new.base {
        Some((base, depth)) => (Some(base), depth),
        None => (current, 0),
    };
    let status = if new.hold_reason.is_some() {
        "held"
    } else {
        "current"
    };
    if status == "current" {
        sqlx::query("UPDATE snapshots SET status = 'superseded' WHERE status = 'current'")
            .execute(&mut **tx)
            .await?;
    }
    let row = sqlx::query(
        "INSERT INTO snapshots (source, fetched_at, checksum, row_count, worker_count, eligible_count, \
         issue_count, status, hold_reason, previous_id, depth) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&new.source)
    .bind(&new.fetched_at)
    .bind(&new.checksum)
    .bind(new.rows)
    .bind(new.workers)
    .bind(new.eligible)
    .bind(new.issues)
    .bind(status)
    .bind(new.hold_reason.as_deref())
    .bind(previous)
    .bind(depth)
    .fetch_one(&mut **tx)
    .await?;
    let id = row.try_get::<i64, _>("id")?;
    if status == "current" {
        // Only the snapshot in force is compared with.
        sqlx::query("DELETE FROM snapshot_digests")
            .execute(&mut **tx)
            .await?;
        if let Some(digests) = &new.digests {
            sqlx::query(
                "INSERT INTO snapshot_digests (snapshot_id, form, digests) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(&digests.form)
            .bind(&digests.bytes)
            .execute(&mut **tx)
            .await?;
        }
    }
    for (chunk, packed) in new.worker_rows.chunks.iter().enumerate() {
        sqlx::query(
            "INSERT INTO snapshot_rows (snapshot_id, chunk, rows, packed) VALUES ($1, $2, '', $3)",
        )
        .bind(id)
        .bind(chunk as i64)
        .bind(packed.as_slice())
        .execute(&mut **tx)
        .await?;
    }
    let changes: Vec<_> = new
        .changes
        .iter()
        .map(|c| {
            (
                &c.worker_key,
                c.change.as_str(),
                &c.attribute,
                &c.old_value,
                &c.new_value,
            )
        })
        .collect();
    insert_rows(
        tx,
        backend,
        "snapshot_changes (snapshot_id, worker_key, change, attribute, old_value, new_value)",
        &[
            Col::SameInt(id),
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
        ],
        "",
        &changes,
    )
    .await?;
    Ok(id)
}

/// Makes an approved snapshot current inside the run's transaction.
pub(super) async fn promote(tx: &mut Transaction<'_, Any>, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE snapshots SET status = 'superseded' WHERE status = 'current'")
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE snapshots SET status = 'current' WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub snapshots: u64,
    pub runs: u64,
}

impl Store {
    /// Removes the workers of superseded snapshots fetched before `snapshots_before`, and the
    /// runs started before `runs_before` that changed no membership. Kept whatever their age:
    /// the current, held and approved snapshots and every snapshot their differences are
    /// read through; the newest run and the newest that succeeded; every run with membership changes (the audit).
    pub async fn prune(
        &self,
        snapshots_before: &str,
        runs_before: &str,
        now: &str,
    ) -> Result<Pruned, StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        // Every snapshot's place in its chain, read once (a row per export that changed).
        let rows = sqlx::query(
            "SELECT id, depth, previous_id, status, fetched_at FROM snapshots WHERE pruned_at IS NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut links: BTreeMap<i64, (i64, Option<i64>)> = BTreeMap::new();
        let mut kept = Vec::new();
        let mut old = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            links.insert(id, (row.try_get(1)?, row.try_get(2)?));
            let status: String = row.try_get(3)?;
            let fetched_at: String = row.try_get(4)?;
            if status != "superseded" || fetched_at.as_str() >= snapshots_before {
                kept.push(id);
            } else {
                old.push(id);
            }
        }
        // The oldest snapshot a kept one is read through: the base of its chain.
        let mut floor = i64::MAX;
        for id in kept {
            let mut at = id;
            while let Some(&(depth, Some(previous))) = links.get(&at) {
                if depth == 0 {
                    break;
                }
                at = previous;
            }
            floor = floor.min(at);
        }
        let old: Vec<i64> = old.into_iter().filter(|&id| id < floor).collect();
        let mut pruned = Pruned::default();
        for id in old {
            sqlx::query("DELETE FROM snapshot_rows WHERE snapshot_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE snapshots SET pruned_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            pruned.snapshots += 1;
        }
        let runs = sqlx::query(
            "DELETE FROM runs WHERE started_at < $1 \
             AND id < (SELECT MAX(id) FROM runs) \
             AND id <> (SELECT COALESCE(MAX(id), 0) FROM runs WHERE status = 'succeeded') \
             AND NOT EXISTS (SELECT 1 FROM group_changes c WHERE c.run_id = runs.id)",
        )
        .bind(runs_before)
        .execute(&mut *tx)
        .await?;
        pruned.runs = runs.rows_affected();
        tx.commit().await?;
        Ok(pruned)
    }
}
