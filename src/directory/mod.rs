//! The HR directory: the typed schema of worker attributes, and a [`Snapshot`] of all workers
//! as one export described them.
//!
//! - `load`: CSV / Workday RaaS JSON → snapshot, with a report of every bad value.
//! - `generate`: a deterministic synthetic organisation for tests, the sample and benchmarks.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use chrono::NaiveDate;

use crate::config::DirectoryConfig;

mod column;
pub mod generate;
mod load;
mod persist;
mod reuse;
mod typing;

pub use column::{Column, ColumnBuilder, DictIndex, MISSING};
pub use load::{load, load_from, load_from_str, DirectoryError, IssueKind, LoadIssue, LoadReport};
pub use persist::{checksum, diff_rows, ChangeKind, WorkerChange};
pub use reuse::{LoadMemo, Loaded};
pub use typing::{parse_text, MAX_FIELD_BYTES};

pub use crate::names::IS_MANAGER;

/// Index of an attribute in the [`Schema`].
pub type AttrId = usize;
/// Index of a worker in a [`Snapshot`].
pub type WorkerId = usize;

pub use crate::names::AttrType;

/// A present attribute value. A missing value is `None` wherever values are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    List(Vec<String>),
}

impl fmt::Display for Value {
    /// Renders the value as a literal of the rules language would write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "{d}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item:?}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Value {
    /// The value as JSON, for `--format json` output.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::from(s.as_str()),
            Value::Num(n) => serde_json::Value::from(*n),
            Value::Bool(b) => serde_json::Value::from(*b),
            Value::Date(d) => serde_json::Value::from(d.to_string()),
            Value::List(items) => serde_json::Value::from(items.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub ty: AttrType,
    /// The export column the value is read from.
    pub column: String,
    /// Separator of list elements inside one text field.
    pub separator: String,
    /// chrono format of dates that are not `YYYY-MM-DD`.
    pub date_format: Option<String>,
}

/// The typed attributes a snapshot has, and which of them play the roles of key, email and
/// manager reference.
#[derive(Debug, Clone)]
pub struct Schema {
    attrs: Vec<Attribute>,
    by_name: HashMap<String, AttrId>,
    key: AttrId,
    email: AttrId,
    manager: Option<AttrId>,
    /// Attributes that make up a worker's name in listings, e.g. first and last name.
    name: Vec<AttrId>,
}

impl Schema {
    /// Builds the schema from a validated config (which guarantees the roles name attributes).
    pub fn from_config(dir: &DirectoryConfig) -> Self {
        let attrs: Vec<Attribute> = dir
            .attributes
            .iter()
            .map(|(name, a)| Attribute {
                name: name.clone(),
                ty: a.ty,
                column: a.column.clone(),
                separator: a.separator.clone().unwrap_or_else(|| ";".to_string()),
                date_format: a.format.clone(),
            })
            .collect();
        let mut schema = Self::new(attrs, &dir.key, &dir.email, dir.manager.as_deref())
            .unwrap_or_else(|| unreachable!("config validation checks the attribute roles"));
        schema.name = dir.name.iter().filter_map(|n| schema.lookup(n)).collect();
        schema
    }

    /// A schema over `attrs`; `None` when a role names an attribute that is not there.
    pub fn new(
        attrs: Vec<Attribute>,
        key: &str,
        email: &str,
        manager: Option<&str>,
    ) -> Option<Self> {
        let by_name: HashMap<String, AttrId> = attrs
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        let key = *by_name.get(key)?;
        let email = *by_name.get(email)?;
        let manager = match manager {
            Some(m) => Some(*by_name.get(m)?),
            None => None,
        };
        Some(Schema {
            attrs,
            by_name,
            key,
            email,
            manager,
            name: Vec::new(),
        })
    }

    pub fn attrs(&self) -> &[Attribute] {
        &self.attrs
    }

    pub fn attr(&self, id: AttrId) -> &Attribute {
        &self.attrs[id]
    }

    pub fn lookup(&self, name: &str) -> Option<AttrId> {
        self.by_name.get(name).copied()
    }

    pub fn key(&self) -> AttrId {
        self.key
    }

    pub fn email(&self) -> AttrId {
        self.email
    }

    pub fn manager(&self) -> Option<AttrId> {
        self.manager
    }

    /// Every name an expression may use as an attribute, for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.attrs
            .iter()
            .map(|a| a.name.as_str())
            .chain(std::iter::once(IS_MANAGER))
    }
}

/// All workers of one export, typed. Values are stored column by column, dictionary-encoded,
/// so that an evaluator can scan one attribute over all workers.
#[derive(Debug, Clone)]
pub struct Snapshot {
    schema: Arc<Schema>,
    /// One column per attribute.
    columns: Vec<Column>,
    len: usize,
    /// The lookups and the chart are built on first use: a selection seldom needs them.
    /// Workers by their keys' hashes: the keys themselves are the key column's, not copied.
    by_key: OnceLock<hashbrown::HashTable<u32>>,
    /// Lower-cased email → worker; emails held by several workers are left out.
    by_email: OnceLock<HashMap<String, WorkerId>>,
    /// Each worker's manager, when the reference names a worker of this snapshot.
    managers: OnceLock<Vec<Option<WorkerId>>>,
    /// A digest of each worker's row as the export had it (CSV loads only): two snapshots
    /// that both have them find the workers that changed by comparing these.
    row_hashes: Option<Arc<Vec<u128>>>,
}

/// The hash a snapshot finds a worker's key by.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// How a snapshot's workers relate to an earlier snapshot's ([`Snapshot::align`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alignment {
    /// By worker: its index in the earlier snapshot, `None` for a worker new to it.
    pub old: Vec<Option<WorkerId>>,
    /// The workers that are new or whose values differ, in order.
    pub changed: Vec<WorkerId>,
    /// Each worker is at its earlier index (the earlier snapshot may have more after them).
    pub same_order: bool,
}

/// Builds a snapshot row by row, encoding each value into its column as it comes, so that a
/// large export is never held as rows.
pub struct SnapshotBuilder {
    schema: Arc<Schema>,
    columns: Vec<ColumnBuilder>,
    /// Each row's digest, while every row pushed has one.
    hashes: Option<Vec<u128>>,
}

impl SnapshotBuilder {
    pub fn new(schema: Arc<Schema>) -> Self {
        let columns = (0..schema.attrs.len())
            .map(|_| ColumnBuilder::default())
            .collect();
        SnapshotBuilder {
            schema,
            columns,
            hashes: Some(Vec::new()),
        }
    }

    /// Goes on building from `earlier`'s dictionaries, indexed by `indices` (its load's):
    /// its codes are valid in the new snapshot, whose dictionaries only grow. `earlier` is
    /// left without dictionaries until [`Snapshot::share_dictionaries`] gives them back.
    pub(super) fn resume(earlier: &mut Snapshot, indices: Vec<DictIndex>) -> Self {
        // The keys are found while the dictionaries are lent.
        earlier.keys();
        let columns = (earlier.columns.iter_mut().zip(indices))
            .map(|(column, index)| ColumnBuilder::resume(column.lend_dict(), index))
            .collect();
        SnapshotBuilder {
            schema: Arc::clone(&earlier.schema),
            columns,
            hashes: Some(Vec::new()),
        }
    }

    /// A row of values in schema order. Rows must have distinct, present keys (the loader
    /// rejects the others).
    pub fn push(&mut self, row: Vec<Option<Value>>) {
        debug_assert_eq!(row.len(), self.columns.len());
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
        }
        self.hashes = None;
    }

    /// Rows pushed from now on have no digest: the snapshot will have none.
    pub fn forget_hashes(&mut self) {
        self.hashes = None;
    }

    /// The code of `value` in attribute `attr`'s dictionary, for [`SnapshotBuilder::push_codes`].
    pub fn intern(&mut self, attr: AttrId, value: Value) -> u32 {
        self.columns[attr].intern(value)
    }

    /// The columns being built, in schema order, to intern values into.
    pub(crate) fn columns_mut(&mut self) -> &mut [ColumnBuilder] {
        &mut self.columns
    }

    /// The value of a code [`SnapshotBuilder::intern`] gave.
    pub fn value(&self, attr: AttrId, code: u32) -> Option<&Value> {
        self.columns[attr].value(code)
    }

    /// A row of codes in schema order ([`MISSING`] for a missing value), with the digest of
    /// the row's text; the same conditions as [`SnapshotBuilder::push`].
    pub fn push_codes(&mut self, codes: &[u32], hash: u128) {
        debug_assert_eq!(codes.len(), self.columns.len());
        for (column, &code) in self.columns.iter_mut().zip(codes) {
            column.push_code(code);
        }
        if let Some(hashes) = &mut self.hashes {
            hashes.push(hash);
        }
    }

    /// Manager references to unknown keys and to the worker itself are dropped.
    pub fn finish(self) -> Snapshot {
        self.finish_indexed().0
    }

    /// The snapshot, and its dictionaries' indices for [`SnapshotBuilder::resume`].
    pub(super) fn finish_indexed(self) -> (Snapshot, Vec<DictIndex>) {
        let (columns, indices) = self
            .columns
            .into_iter()
            .map(ColumnBuilder::finish_indexed)
            .unzip();
        let mut snapshot = Snapshot::from_columns(self.schema, columns);
        snapshot.row_hashes = self
            .hashes
            .filter(|h| h.len() == snapshot.len)
            .map(Arc::new);
        (snapshot, indices)
    }
}

/// What [`Snapshot::changed_from_digests`] finds: the workers who joined or changed, and
/// the keys of the stored rows to compare (those who changed or left).
pub type ChangedRows = (Vec<WorkerId>, Vec<String>);

impl Snapshot {
    /// The snapshot of these workers only, in this order (a part of the organisation, for
    /// incremental evaluation). Manager references to workers left out are dropped.
    pub fn select(&self, workers: &[WorkerId]) -> Snapshot {
        let columns = self.columns.iter().map(|c| c.select(workers)).collect();
        Snapshot::from_columns(Arc::clone(&self.schema), columns)
    }

    fn from_columns(schema: Arc<Schema>, columns: Vec<Column>) -> Snapshot {
        Snapshot {
            len: columns[schema.key].codes().len(),
            schema,
            columns,
            by_key: OnceLock::new(),
            by_email: OnceLock::new(),
            managers: OnceLock::new(),
            row_hashes: None,
        }
    }

    /// Takes `later`'s dictionaries, which [`SnapshotBuilder::resume`] grew from this
    /// snapshot's: this snapshot's values stay what they were.
    pub(super) fn share_dictionaries(&mut self, later: &Snapshot) {
        for (column, grown) in self.columns.iter_mut().zip(&later.columns) {
            column.share_dict(grown);
        }
    }

    /// Each worker's row digest, when the snapshot has them.
    pub(super) fn hashes(&self) -> Option<&[u128]> {
        self.row_hashes.as_deref().map(Vec::as_slice)
    }

    fn keys(&self) -> &hashbrown::HashTable<u32> {
        self.by_key.get_or_init(|| {
            let mut table = hashbrown::HashTable::with_capacity(self.len);
            for w in 0..self.len {
                let hash_of = |&o: &u32| key_hash(self.key(o as usize));
                table.insert_unique(key_hash(self.key(w)), w as u32, hash_of);
            }
            table
        })
    }

    /// [`Snapshot::by_key`], reading each worker's key with `key_of` (while the snapshot's
    /// dictionaries are lent, from the load they are lent to).
    pub(super) fn by_key_with<'a>(
        &self,
        key: &str,
        key_of: impl Fn(WorkerId) -> &'a str,
    ) -> Option<WorkerId> {
        let found = self
            .keys()
            .find(key_hash(key), |&w| key_of(w as usize) == key);
        found.map(|&w| w as usize)
    }

    fn emails(&self) -> &HashMap<String, WorkerId> {
        self.by_email.get_or_init(|| {
            let mut by_email = HashMap::new();
            let mut shared = Vec::new();
            for w in 0..self.len {
                if let Some(email) = self.email(w) {
                    let email = email.to_lowercase();
                    if by_email.insert(email.clone(), w).is_some() {
                        shared.push(email);
                    }
                }
            }
            for email in shared {
                by_email.remove(&email);
            }
            by_email
        })
    }

    /// The workers whose values differ from `prev`'s, when both have the same workers in the
    /// same order; `None` when they do not. [`Snapshot::align`] also relates other orders.
    pub fn changed_since(&self, prev: &Snapshot) -> Option<Vec<WorkerId>> {
        self.align(prev)
            .filter(|a| a.same_order && prev.len == self.len)
            .map(|a| a.changed)
    }

    /// How this snapshot's workers relate to `prev`'s (what incremental evaluation needs):
    /// each one's place in `prev`, and those that are new or whose values differ. Rows are
    /// compared by their digests when both snapshots have them, else value by value. `None`
    /// when the two have different attributes.
    pub fn align(&self, prev: &Snapshot) -> Option<Alignment> {
        // A separator or a date format changed types the same text differently.
        if self.schema.attrs != prev.schema.attrs {
            return None;
        }
        let same_order = self.len <= prev.len && (0..self.len).all(|w| self.key(w) == prev.key(w));
        let old: Vec<Option<WorkerId>> = if same_order {
            (0..self.len).map(Some).collect()
        } else {
            (0..self.len).map(|w| prev.by_key(self.key(w))).collect()
        };
        let hashes = match (&self.row_hashes, &prev.row_hashes) {
            (Some(now), Some(then)) => Some((now, then)),
            _ => None,
        };
        let differs = |w: WorkerId, o: WorkerId| match hashes {
            Some((now, then)) => now[w] != then[o],
            None => (self.columns.iter().zip(&prev.columns))
                .any(|(now, then)| now.get(w) != then.get(o)),
        };
        let changed = (0..self.len)
            .filter(|&w| old[w].is_none_or(|o| differs(w, o)))
            .collect();
        Some(Alignment {
            old,
            changed,
            same_order,
        })
    }

    /// How this snapshot's row digests were made, when it has them: digests of another form
    /// are not compared with them ([`Snapshot::changed_from_digests`]). The same text is
    /// typed the same way only by the same mapping and the same version of rosterd.
    pub fn digest_form(&self) -> Option<String> {
        self.row_hashes.as_ref()?;
        Some(format!(
            "csv; rosterd {}; key {}; {:?}",
            env!("CARGO_PKG_VERSION"),
            self.schema.key,
            self.schema.attrs
        ))
    }

    /// Each worker's key and row digest, when it has them.
    pub fn row_digests(&self) -> Option<impl Iterator<Item = (&str, u128)> + '_> {
        let hashes = self.row_hashes.as_ref()?;
        Some((0..self.len).map(|w| (self.key(w), hashes[w])))
    }

    /// The workers whose rows differ from a stored snapshot's, given that snapshot's keys and
    /// row digests (made in `form`; `stored` gives each to the visitor it is handed): the new
    /// or changed workers, and the keys of the stored rows to compare (those of the changed
    /// workers and of those who left). `None` when this snapshot has no digests or they were
    /// made in another form.
    pub fn changed_from_digests<E>(
        &self,
        form: &str,
        stored: impl FnOnce(&mut dyn FnMut(&str, u64)) -> Result<(), E>,
    ) -> Result<Option<ChangedRows>, E> {
        let Some(hashes) = self.row_hashes.as_ref() else {
            return Ok(None);
        };
        if self.digest_form().as_deref() != Some(form) {
            return Ok(None);
        }
        // By worker: the store has its row, with the same digest.
        let mut same = vec![false; self.len];
        let mut keys = Vec::new();
        stored(&mut |key, digest| match self.by_key(key) {
            // The store keeps a digest's low 8 bytes.
            Some(w) if hashes[w] as u64 == digest => same[w] = true,
            _ => keys.push(key.to_string()),
        })?;
        let changed = (0..self.len).filter(|&w| !same[w]).collect();
        Ok(Some((changed, keys)))
    }

    /// Builds a snapshot from rows of values in schema order; see [`SnapshotBuilder`].
    pub fn from_rows(schema: Arc<Schema>, rows: Vec<Vec<Option<Value>>>) -> Self {
        let mut builder = SnapshotBuilder::new(schema);
        for row in rows {
            builder.push(row);
        }
        builder.finish()
    }

    pub fn column(&self, attr: AttrId) -> &Column {
        &self.columns[attr]
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, attr: AttrId, worker: WorkerId) -> Option<&Value> {
        self.columns[attr].get(worker)
    }

    pub fn key(&self, worker: WorkerId) -> &str {
        match self.get(self.schema.key, worker) {
            Some(Value::Str(s)) => s,
            _ => "",
        }
    }

    pub fn email(&self, worker: WorkerId) -> Option<&str> {
        match self.get(self.schema.email, worker) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn by_key(&self, key: &str) -> Option<WorkerId> {
        self.by_key_with(key, |w| self.key(w))
    }

    /// Case-insensitive; `None` also when several workers share the email.
    pub fn by_email(&self, email: &str) -> Option<WorkerId> {
        self.emails().get(&email.to_lowercase()).copied()
    }

    /// A worker named by key, or else by email: how people name workers on the command line
    /// and in bare-string person entries.
    pub fn find(&self, key_or_email: &str) -> Option<WorkerId> {
        self.by_key(key_or_email)
            .or_else(|| self.by_email(key_or_email))
    }

    pub fn manager(&self, worker: WorkerId) -> Option<WorkerId> {
        self.managers()[worker]
    }

    /// Manager references to unknown keys and to the worker itself count as none.
    pub fn managers(&self) -> &[Option<WorkerId>] {
        self.managers.get_or_init(|| {
            let references = self.manager_references();
            (references.iter().enumerate())
                .map(|(w, &r)| r.filter(|&m| m != w))
                .collect()
        })
    }

    /// By worker: the worker its manager reference names, when it names one of this
    /// snapshot (the worker itself included). Each distinct reference is looked up once:
    /// a million workers have a few ten thousand managers.
    pub(crate) fn manager_references(&self) -> Vec<Option<WorkerId>> {
        let Some(m) = self.schema.manager else {
            return vec![None; self.len];
        };
        let column = &self.columns[m];
        let mut found: Vec<Option<Option<WorkerId>>> = vec![None; column.dict().len()];
        (column.codes().iter())
            .map(|&code| {
                let at = found.get_mut(code as usize)?;
                *at.get_or_insert_with(|| match &column.dict()[code as usize] {
                    Value::Str(k) => self.by_key(k),
                    _ => None,
                })
            })
            .collect()
    }

    /// The worker's name from the `name` attributes, when the config names them.
    pub fn name(&self, worker: WorkerId) -> Option<String> {
        let parts: Vec<&str> = self
            .schema
            .name
            .iter()
            .filter_map(|&a| match self.get(a, worker) {
                Some(Value::Str(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// A short human label: `E001234 (ada@example.com)`, or `E001234 Ada Lovelace
    /// (ada@example.com)` when the config names the name attributes.
    pub fn label(&self, worker: WorkerId) -> String {
        let mut out = String::new();
        self.write_label(worker, &mut out);
        out
    }

    /// [`Snapshot::label`] into `out`, for callers that write millions and reuse a buffer.
    pub fn write_label(&self, worker: WorkerId, out: &mut String) {
        use std::fmt::Write as _;
        let key = self.key(worker);
        let _ = match (self.name(worker), self.email(worker)) {
            (Some(name), Some(email)) => write!(out, "{key} {name} ({email})"),
            (None, Some(email)) => write!(out, "{key} ({email})"),
            (Some(name), None) => write!(out, "{key} {name}"),
            (None, None) => write!(out, "{key}"),
        };
    }
}
