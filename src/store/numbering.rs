//! The worker numbering: every worker key the store has seen, numbered once (append-only,
//! dense from 0), so that a set of workers is a roaring bitmap of their ids. A run that
//! starts cold reads it whole: at a million workers that is one row and one buffer of keys,
//! not a million rows and two million strings.

use sqlx::{AnyConnection, Row};

use super::error::corrupt;
use super::StoreError;

/// The worker numbering: a worker's key and its id in every stored set.
#[derive(Debug, Clone, Default)]
pub struct WorkerIds {
    /// Every key in id order, one after another: a million keys are one allocation, not a
    /// million (the numbering is read whole by every run that starts cold).
    text: String,
    /// By id (ids are dense from 0): where its key ends in `text`; it starts where the one
    /// before ends.
    ends: Vec<usize>,
    /// The ids, found by their keys' hashes.
    index: hashbrown::HashTable<u32>,
}

/// The hash the numbering's index finds a key by.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// Key `id` of [`WorkerIds`]'s `text` and `ends`.
fn key_in<'a>(text: &'a str, ends: &[usize], id: u32) -> Option<&'a str> {
    let id = id as usize;
    let end = *ends.get(id)?;
    let start = if id == 0 { 0 } else { ends[id - 1] };
    text.get(start..end)
}

/// The hash of key `id`, to place it in the index as that grows.
fn hash_of(text: &str, ends: &[usize], id: u32) -> u64 {
    key_hash(key_in(text, ends, id).unwrap_or_default())
}

impl WorkerIds {
    pub fn key(&self, id: u32) -> Option<&str> {
        key_in(&self.text, &self.ends, id)
    }

    pub fn id(&self, key: &str) -> Option<u32> {
        self.id_hashed(key, key_hash(key))
    }

    /// The key of an id read from a stored set: one the numbering lacks is a damaged store.
    pub fn stored_key(&self, id: u32) -> Result<&str, StoreError> {
        self.key(id).ok_or_else(|| {
            corrupt(
                "the worker numbering",
                format!("worker id {id} is in a stored set but not numbered"),
            )
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Room for `keys` more keys of `bytes` in all.
    fn reserve(&mut self, keys: usize, bytes: usize) {
        let Self { text, ends, index } = self;
        text.reserve(bytes);
        ends.reserve(keys);
        index.reserve(keys, |&id| hash_of(text, ends, id));
    }

    /// The id of `key`, numbering it when it is new; new keys are what
    /// [`WorkerIds::since`] returns, for the run to store.
    pub fn number(&mut self, key: &str) -> u32 {
        let hash = key_hash(key);
        if let Some(id) = self.id_hashed(key, hash) {
            return id;
        }
        let id = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        self.text.push_str(key);
        self.ends.push(self.text.len());
        let Self { text, ends, index } = self;
        index.insert_unique(hash, id, |&id| hash_of(text, ends, id));
        id
    }

    fn id_hashed(&self, key: &str, hash: u64) -> Option<u32> {
        self.index
            .find(hash, |&id| self.key(id) == Some(key))
            .copied()
    }

    /// The workers numbered from id `from` on, with their ids.
    pub fn since(&self, from: usize) -> Vec<(u32, String)> {
        (from..self.len())
            .filter_map(|id| {
                let id = u32::try_from(id).ok()?;
                Some((id, self.key(id)?.to_string()))
            })
            .collect()
    }
}

/// Between the keys of [`read_worker_ids`]'s one row: a key holding it is read row by row.
const KEY_SEPARATOR: &str = "\u{1f}";

/// The worker numbering, read on `conn` (within a transaction, for the carry-over): as one
/// row of every key in id order, which costs a fraction of a row per worker (100,000 rows
/// through the driver take a quarter of a second). Ids are dense from 0, so a key's place is
/// its id; when the count or the highest id says otherwise, or a key holds the separator, the
/// numbering is read row by row, which names what is wrong.
pub(super) async fn read_worker_ids(conn: &mut AnyConnection) -> Result<WorkerIds, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*), MAX(id), string_agg(worker_key, $1 ORDER BY id) FROM workers",
    )
    .bind(KEY_SEPARATOR)
    .fetch_one(&mut *conn)
    .await?;
    let count: i64 = row.try_get(0)?;
    let highest: Option<i64> = row.try_get(1)?;
    let keys: Option<String> = row.try_get(2)?;
    let mut ids = WorkerIds::default();
    let Some(keys) = keys else {
        return if count == 0 {
            Ok(ids)
        } else {
            read_worker_ids_by_row(conn).await
        };
    };
    if highest != Some(count - 1) {
        return read_worker_ids_by_row(conn).await;
    }
    ids.reserve(usize::try_from(count).unwrap_or(0), keys.len());
    let mut pieces = 0;
    for key in keys.split(KEY_SEPARATOR) {
        ids.number(key);
        pieces += 1;
    }
    if pieces != count || ids.len() as i64 != count {
        // A key holding the separator, or two ids with one key: the row-by-row read reads
        // the first right and says which for the second.
        return read_worker_ids_by_row(conn).await;
    }
    Ok(ids)
}

/// [`read_worker_ids`], one row per worker.
async fn read_worker_ids_by_row(conn: &mut AnyConnection) -> Result<WorkerIds, StoreError> {
    let rows = sqlx::query("SELECT id, worker_key FROM workers ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let mut ids = WorkerIds::default();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let key: String = row.try_get(1)?;
        if id != ids.len() as i64 {
            return Err(corrupt(
                "the worker numbering",
                format!("id {id} is out of order"),
            ));
        }
        ids.number(&key);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::WorkerIds;

    #[test]
    fn numbering_keeps_ids_and_keys_both_ways_as_it_grows() {
        let mut ids = WorkerIds::default();
        let keys: Vec<String> = (0..10_000)
            .map(|i| format!("E{:07}", i * 7919 % 10_007))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(ids.number(key), i as u32, "{key}");
        }
        ids.reserve(5, 40);
        assert_eq!(ids.number(&keys[1234]), 1234, "a known key keeps its id");
        assert_eq!(ids.number(""), 10_000, "an empty key is a key");
        assert_eq!(ids.number("x\u{1f}y"), 10_001);
        assert_eq!(ids.len(), 10_002);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(ids.id(key), Some(i as u32));
            assert_eq!(ids.key(i as u32), Some(key.as_str()));
        }
        assert_eq!(ids.id(""), Some(10_000));
        assert_eq!(ids.id("E"), None);
        assert_eq!(ids.key(10_002), None);
        assert_eq!(
            ids.since(9_999),
            [
                (9_999, keys[9_999].clone()),
                (10_000, String::new()),
                (10_001, "x\u{1f}y".to_string())
            ]
        );
    }
}
