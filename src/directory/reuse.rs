//! What a load leaves for loading the export's next version in the same process (the
//! daemon's runs): a row whose digest is its worker's earlier row's takes that row's codes,
//! so that only the rows that changed are typed ([`super::load_from`]).
//!
//! The snapshot loaded so is the one a load from nothing gives, but for dictionary entries
//! that no worker has any more (the values of rows that changed or left). The daemon checks
//! it against a load from nothing every `daemon.full_evaluation_every` runs, and then goes
//! on from that one, whose dictionaries have no such entries.

use super::{DictIndex, LoadReport, Schema, Snapshot, SnapshotBuilder, Value, WorkerId};

/// What a load leaves for [`super::load_from`] to go on from its snapshot.
#[derive(Debug, Default)]
pub struct LoadMemo {
    /// Each column's dictionary index.
    pub(super) indices: Vec<DictIndex>,
    /// By worker: its row had a bad value. Such a row is typed again, so that the next load
    /// reports it again.
    pub(super) flawed: Vec<bool>,
    /// How many rows the load took from an earlier snapshot without typing them.
    pub(super) reused: usize,
}

impl LoadMemo {
    /// Whether a load of `schema` can go on from `snapshot`, the one this memo's load made:
    /// the same attributes typed the same way, with the rows' digests.
    pub(super) fn resumes(&self, snapshot: &Snapshot, schema: &Schema) -> bool {
        let earlier = snapshot.schema();
        snapshot.hashes().is_some()
            && earlier.attrs() == schema.attrs()
            && earlier.key() == schema.key()
            && self.indices.len() == schema.attrs().len()
            && self.flawed.len() == snapshot.len()
    }

    /// How many rows the load that left this took from an earlier snapshot without typing
    /// them.
    pub fn reused(&self) -> usize {
        self.reused
    }
}

/// What [`super::load_from`] gives.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub report: LoadReport,
    /// For the next load to go on from this one's snapshot.
    pub memo: LoadMemo,
}

/// The earlier snapshot a load goes on from, while its dictionaries are lent to the load.
pub(super) struct Reuse<'a> {
    snapshot: &'a Snapshot,
    hashes: &'a [u128],
    flawed: &'a [bool],
}

impl<'a> Reuse<'a> {
    /// `snapshot` has its rows' digests ([`LoadMemo::resumes`] checked it); without them no
    /// row would be taken.
    pub(super) fn new(snapshot: &'a Snapshot, flawed: &'a [bool]) -> Self {
        Reuse {
            hashes: snapshot.hashes().unwrap_or_default(),
            snapshot,
            flawed,
        }
    }

    pub(super) fn snapshot(&self) -> &'a Snapshot {
        self.snapshot
    }

    /// By record: the earlier worker whose row it is, when its key (the field at `key`) is
    /// that worker's, its digest (`hashes`, 0 for a record not to read) is that row's, and
    /// that row had no bad value.
    /// `rows` holds the dictionaries the earlier snapshot lent.
    pub(super) fn rows(
        &self,
        (records, hashes): (&[csv::ByteRecord], &[u128]),
        key: usize,
        rows: &SnapshotBuilder,
    ) -> Vec<Option<WorkerId>> {
        let key_attr = self.snapshot.schema().key();
        let keys = self.snapshot.column(key_attr).codes();
        let key_of = |o: WorkerId| match rows.value(key_attr, keys[o]) {
            Some(Value::Str(k)) => k.as_str(),
            _ => "",
        };
        // Exports keep their order: the worker after the last one found is tried first,
        // which spares most lookups by key (each one a cache miss at a million workers).
        let mut next = None;
        (records.iter().zip(hashes))
            .map(|(record, &hash)| {
                let key = std::str::from_utf8(record.get(key)?).ok()?.trim();
                let o = next
                    .filter(|&o| o < keys.len() && key_of(o) == key)
                    .or_else(|| self.snapshot.by_key_with(key, key_of))?;
                next = Some(o + 1);
                (hash != 0 && self.hashes.get(o) == Some(&hash) && !self.flawed[o]).then_some(o)
            })
            .collect()
    }
}

impl Snapshot {
    /// Where this snapshot differs from `other`: its workers, their values in order, and
    /// their rows' digests (at most ten differences are named). What a load that went on
    /// from an earlier snapshot is checked with, against a load from nothing.
    pub fn differences(&self, other: &Snapshot) -> Vec<String> {
        const NAMED: usize = 10;
        if self.len() != other.len() {
            return vec![format!("{} workers, not {}", self.len(), other.len())];
        }
        let attrs = self.schema().attrs();
        let mut out = Vec::new();
        for w in 0..self.len() {
            for (a, attr) in attrs.iter().enumerate() {
                if self.get(a, w) != other.get(a, w) && out.len() < NAMED {
                    out.push(format!("worker {w} (`{}`): `{}`", self.key(w), attr.name));
                }
            }
        }
        if self.hashes() != other.hashes() {
            out.push("the rows' digests".to_string());
        }
        out
    }
}
