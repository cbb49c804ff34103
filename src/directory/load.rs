//! Reading an HR export into a [`Snapshot`].
//!
//! Bad values never stop a load: each is reported with its row and column and the value is then
//! missing. Rows without a usable key are rejected and reported. Only a file that cannot be read
//! at all, lacks mapped columns, or has more bad rows than the configured share fails the load.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::reuse::{LoadMemo, Loaded, Reuse};
use super::typing::{excerpt, holds_nul, parse_json, TextCodes, NUL_VALUE};
use super::{ColumnBuilder, Schema, Snapshot, SnapshotBuilder, Value, WorkerId, MISSING};
use crate::config::{DirectoryConfig, SourceFormat};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read HR export `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{source_name}: {message}")]
    Malformed {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: missing column{} {}\nhelp: the file has the columns: {}",
        if missing.len() == 1 { "" } else { "s" },
        backticked(missing), backticked(available))]
    MissingColumns {
        source_name: String,
        missing: Vec<String>,
        available: Vec<String>,
    },
    #[error("{}: {bad} of {rows} rows are bad or rejected ({:.1}%), more than the allowed {max_percent}%\n{}",
        report.source, percent(*bad, *rows), first_issues(report))]
    TooManyBadRows {
        bad: usize,
        rows: usize,
        max_percent: f64,
        report: Box<LoadReport>,
    },
}

/// The longest CSV header line, in bytes.
const MAX_HEADER_BYTES: usize = 1 << 20;

fn backticked(names: &[String]) -> String {
    const SHOWN: usize = 40;
    let mut out: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{}`", excerpt(n)))
        .collect();
    if names.len() > SHOWN {
        out.push(format!("and {} more", names.len() - SHOWN));
    }
    out.join(", ")
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn first_issues(report: &LoadReport) -> String {
    const SHOWN: usize = 10;
    let mut out: Vec<String> = report
        .issues
        .iter()
        .take(SHOWN)
        .map(|i| format!("  {i}"))
        .collect();
    if report.issues.len() > SHOWN {
        out.push(format!("  ... and {} more", report.issues.len() - SHOWN));
    }
    out.join("\n")
}

/// Where in the export a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// A CSV line, 1-based, counting the header.
    Line(u64),
    /// A Workday `Report_Entry` element, 0-based as in JSON paths.
    Entry(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::Entry(i) => write!(f, "Report_Entry[{i}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A value that does not parse as its type; it is missing instead.
    BadValue,
    /// A row whose shape is wrong (field count); rejected.
    MalformedRow,
    /// A row with an empty key; rejected.
    EmptyKey,
    /// A row whose key holds a control character; rejected.
    BadKey,
    /// A row whose key an earlier row already had; rejected, the earlier row is kept.
    DuplicateKey,
    /// Two or more workers share an email; entries cannot name them by it.
    DuplicateEmail,
    /// A manager reference to a key that no worker has.
    UnknownManager,
    /// A worker named as their own manager; treated as having no manager.
    SelfManager,
    /// Workers whose manager chain loops.
    ManagerCycle,
}

impl IssueKind {
    /// Issues that make a row count as bad for the load's failsafe.
    fn is_bad_row(self) -> bool {
        matches!(
            self,
            IssueKind::BadValue
                | IssueKind::MalformedRow
                | IssueKind::EmptyKey
                | IssueKind::BadKey
                | IssueKind::DuplicateKey
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadIssue {
    pub kind: IssueKind,
    /// The row, when the issue belongs to one.
    pub place: Option<Place>,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(place) = self.place {
            write!(f, "{place}: ")?;
        }
        if let Some(column) = &self.column {
            write!(f, "column `{column}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What a load found: counts and every issue, in file order.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub source: String,
    pub rows: usize,
    pub workers: usize,
    pub issues: Vec<LoadIssue>,
}

impl LoadReport {
    pub fn count(&self, kind: IssueKind) -> usize {
        self.issues.iter().filter(|i| i.kind == kind).count()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} rows, {} workers, {} issue{}",
            self.source,
            self.rows,
            self.workers,
            self.issues.len(),
            if self.issues.len() == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            writeln!(f, "  {}: {issue}", self.source)?;
        }
        Ok(())
    }
}

/// Loads the export file that `config` names (`fetch::load` also reads URLs).
pub fn load(config: &DirectoryConfig) -> Result<(Snapshot, LoadReport), DirectoryError> {
    let Some(path) = &config.source.file else {
        return Err(DirectoryError::Malformed {
            source_name: "directory.source".into(),
            message: "not a file source".into(),
        });
    };
    let text = read_text(path)?;
    let schema = Arc::new(Schema::from_config(config));
    load_from_str(
        &text,
        config.source.format(),
        &path.display().to_string(),
        schema,
        config.max_bad_rows_percent,
    )
}

fn read_text(path: &Path) -> Result<String, DirectoryError> {
    std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads an export held in memory; `source_name` names it in messages.
pub fn load_from_str(
    text: &str,
    format: SourceFormat,
    source_name: &str,
    schema: Arc<Schema>,
    max_bad_rows_percent: f64,
) -> Result<(Snapshot, LoadReport), DirectoryError> {
    load_from(
        text,
        format,
        source_name,
        schema,
        max_bad_rows_percent,
        None,
    )
    .map(|loaded| (loaded.snapshot, loaded.report))
}

/// [`load_from_str`], from `earlier` when there is one: the snapshot this process loaded
/// last (of the same schema, from a CSV export) and what its load left. A row whose digest
/// is its worker's earlier row's, and which had no bad value, then takes that row's values
/// without being typed. The snapshot and the report are those [`load_from_str`] gives;
/// `earlier` keeps its values, in the dictionaries the new snapshot grew from its own.
pub fn load_from(
    text: &str,
    format: SourceFormat,
    source_name: &str,
    schema: Arc<Schema>,
    max_bad_rows_percent: f64,
    earlier: Option<(&mut Snapshot, LoadMemo)>,
) -> Result<Loaded, DirectoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut earlier = earlier
        .filter(|(snapshot, memo)| format == SourceFormat::Csv && memo.resumes(snapshot, &schema));
    let mut rows = RowSink::new(&schema);
    let reading = match &mut earlier {
        Some((snapshot, memo)) => {
            rows.rows = SnapshotBuilder::resume(snapshot, std::mem::take(&mut memo.indices));
            let reuse = Reuse::new(snapshot, &memo.flawed);
            read_csv(text, source_name, &schema, &mut rows, Some(&reuse))
        }
        None => match format {
            SourceFormat::Csv => read_csv(text, source_name, &schema, &mut rows, None),
            SourceFormat::WorkdayJson => read_workday_json(text, source_name, &schema, &mut rows),
        },
    };
    let RowSink {
        rows: builder,
        places,
        mut issues,
        read,
        flawed,
        reused,
        ..
    } = rows;
    let (snapshot, indices) = builder.finish_indexed();
    // Given back before anything can fail.
    if let Some((earlier, _)) = earlier {
        earlier.share_dictionaries(&snapshot);
    }
    reading?;
    check_emails(&snapshot, &places, &mut issues);
    check_managers(&snapshot, &places, &mut issues);
    let report = LoadReport {
        source: source_name.to_string(),
        rows: read,
        workers: snapshot.len(),
        issues,
    };
    let bad: HashSet<Place> = report
        .issues
        .iter()
        .filter(|i| i.kind.is_bad_row())
        .filter_map(|i| i.place)
        .collect();
    if percent(bad.len(), report.rows) > max_bad_rows_percent {
        return Err(DirectoryError::TooManyBadRows {
            bad: bad.len(),
            rows: report.rows,
            max_percent: max_bad_rows_percent,
            report: Box::new(report),
        });
    }
    Ok(Loaded {
        snapshot,
        report,
        memo: LoadMemo {
            indices,
            flawed,
            reused,
        },
    })
}

impl std::hash::Hash for Place {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Place::Line(n) => (0u8, *n).hash(state),
            Place::Entry(i) => (1u8, *i as u64).hash(state),
        }
    }
}

/// Collects typed rows, rejecting those without a usable key.
struct RowSink {
    key: usize,
    /// Each attribute's column, for issues.
    columns: Vec<String>,
    rows: SnapshotBuilder,
    places: Vec<Place>,
    /// Key (by its code in the key column) → the place of the row that has it.
    seen: rustc_hash::FxHashMap<u32, Place>,
    issues: Vec<LoadIssue>,
    read: usize,
    /// By worker: its row had a bad value ([`LoadMemo`]'s).
    flawed: Vec<bool>,
    /// Rows that took an earlier snapshot's values.
    reused: usize,
    /// A row's codes, taken from an earlier snapshot.
    codes: Vec<u32>,
}

impl RowSink {
    fn new(schema: &Arc<Schema>) -> Self {
        RowSink {
            key: schema.key(),
            columns: schema.attrs().iter().map(|a| a.column.clone()).collect(),
            rows: SnapshotBuilder::new(Arc::clone(schema)),
            places: Vec::new(),
            seen: rustc_hash::FxHashMap::default(),
            issues: Vec::new(),
            read: 0,
            flawed: Vec::new(),
            reused: 0,
            codes: Vec::new(),
        }
    }

    fn issue(&mut self, kind: IssueKind, place: Place, column: Option<&str>, message: String) {
        self.issues.push(LoadIssue {
            kind,
            place: Some(place),
            column: column.map(str::to_string),
            message,
        });
    }

    /// A NUL character cannot be stored (PostgreSQL's text cannot hold it) nor shown: a value
    /// with one is a bad value, on both backends alike. The key is checked on its own.
    fn without_nul(&mut self, place: Place, row: &mut [Option<Value>]) {
        for (i, value) in row.iter_mut().enumerate() {
            if i != self.key && value.as_ref().is_some_and(holds_nul) {
                *value = None;
                let column = self.columns[i].clone();
                self.issue(
                    IssueKind::BadValue,
                    place,
                    Some(&column),
                    NUL_VALUE.to_string(),
                );
            }
        }
    }

    /// A row of values in schema order (the Workday JSON reader's).
    fn push(&mut self, place: Place, mut row: Vec<Option<Value>>, key_column: &str) {
        self.without_nul(place, &mut row);
        let codes: Vec<u32> = row
            .into_iter()
            .enumerate()
            .map(|(attr, v)| v.map_or(MISSING, |v| self.rows.intern(attr, v)))
            .collect();
        if let Some(key) = self.accepted_key(place, &codes, key_column) {
            self.rows.push_codes(&codes, 0);
            self.rows.forget_hashes();
            self.accepted(key, place);
        }
    }

    /// A row is kept: its bad values, if any, were the last issues reported.
    fn accepted(&mut self, key: u32, place: Place) {
        self.seen.insert(key, place);
        self.places.push(place);
        let flawed = self
            .issues
            .last()
            .is_some_and(|i| i.place == Some(place) && i.kind == IssueKind::BadValue);
        self.flawed.push(flawed);
    }

    /// A row whose digest is worker `earlier`'s row's in `snapshot`: its codes are that
    /// row's (the builder grows that snapshot's dictionaries).
    fn push_earlier(
        &mut self,
        place: Place,
        (snapshot, earlier): (&Snapshot, WorkerId),
        hash: u128,
        key_column: &str,
    ) {
        let mut codes = std::mem::take(&mut self.codes);
        codes.clear();
        let width = snapshot.schema().attrs().len();
        codes.extend((0..width).map(|a| snapshot.column(a).codes()[earlier]));
        self.reused += 1;
        self.push_codes(place, &codes, hash, key_column);
        self.codes = codes;
    }

    /// A row of codes from [`SnapshotBuilder::intern`], with the digest of its text (the
    /// CSV reader's: no value is copied for a row whose values were seen before).
    fn push_codes(&mut self, place: Place, codes: &[u32], hash: u128, key_column: &str) {
        if let Some(key) = self.accepted_key(place, codes, key_column) {
            self.rows.push_codes(codes, hash);
            self.accepted(key, place);
        }
    }

    /// The row's key code, when the row is kept: an empty key, a key with a control character
    /// and a key seen before reject the row, and say so.
    fn accepted_key(&mut self, place: Place, codes: &[u32], key_column: &str) -> Option<u32> {
        let code = codes[self.key];
        let key = match self.rows.value(self.key, code) {
            Some(Value::Str(k)) if code != MISSING => k,
            _ => {
                let msg = "empty key: row rejected".to_string();
                self.issue(IssueKind::EmptyKey, place, Some(key_column), msg);
                return None;
            }
        };
        if let Some(c) = key.chars().find(|c| c.is_control()) {
            // Keys name workers in URLs, logs and both databases (PostgreSQL text cannot
            // hold NUL at all): a key is printable or not a key.
            let msg = format!(
                "the key holds a control character (U+{:04X}): row rejected",
                u32::from(c)
            );
            self.issue(IssueKind::BadKey, place, Some(key_column), msg);
            return None;
        }
        if let Some(first) = self.seen.get(&code) {
            let msg = format!(
                "duplicate key `{}`, first seen at {first}: row rejected",
                excerpt(key)
            );
            self.issue(IssueKind::DuplicateKey, place, Some(key_column), msg);
            return None;
        }
        Some(code)
    }
}

fn read_csv(
    text: &str,
    source_name: &str,
    schema: &Schema,
    sink: &mut RowSink,
    reuse: Option<&Reuse<'_>>,
) -> Result<(), DirectoryError> {
    let malformed = |message: String| DirectoryError::Malformed {
        source_name: source_name.to_string(),
        message,
    };
    // The header names columns: a megabyte of it is not a CSV export, and reading it as one
    // would copy it several times over.
    let header_bytes = text.find('\n').unwrap_or(text.len());
    if header_bytes > MAX_HEADER_BYTES {
        return Err(malformed(format!(
            "line 1: the header line is {header_bytes} bytes, more than the limit of {MAX_HEADER_BYTES}; is this a CSV export?"
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let indices = column_indices(schema, &headers, source_name)?;
    let key_column = schema.attr(schema.key()).column.clone();
    let mut texts: Vec<TextCodes> = schema
        .attrs()
        .iter()
        .map(|_| TextCodes::default())
        .collect();
    let mut batch = Vec::new();
    loop {
        let read = read_batch(&mut reader, &mut batch).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(format!("line {line}: {e}"))
        })?;
        if read == 0 {
            return Ok(());
        }
        let records = &batch[..read];
        let whole: Vec<bool> = records.iter().map(|r| r.len() == headers.len()).collect();
        // The rows an earlier snapshot has, by their digests: the others are typed.
        let (hashes, earlier) = match reuse {
            Some(reuse) => {
                let built = &sink.rows;
                let found = crate::halves::map_halves(records.len(), |range| {
                    let records = &records[range.clone()];
                    let hashes = digests(records, &whole[range], &indices);
                    let earlier = reuse.rows((records, &hashes), indices[schema.key()], built);
                    hashes.into_iter().zip(earlier).collect()
                });
                let (hashes, earlier) = found.into_iter().unzip();
                (Some(hashes), earlier)
            }
            None => (None, vec![None; records.len()]),
        };
        let to_type: Vec<bool> = (whole.iter().zip(&earlier))
            .map(|(&whole, earlier)| whole && earlier.is_none())
            .collect();
        let typed = type_batch(
            schema,
            (&indices, records, &to_type),
            hashes,
            &mut texts,
            &mut sink.rows,
        );
        for (r, record) in records.iter().enumerate() {
            let place = Place::Line(record.position().map_or(0, |p| p.line()));
            sink.read += 1;
            if !whole[r] {
                let msg = format!(
                    "has {} fields where the header has {}: row rejected",
                    record.len(),
                    headers.len()
                );
                sink.issue(IssueKind::MalformedRow, place, None, msg);
                continue;
            }
            if let (Some(reuse), Some(o)) = (reuse, earlier[r]) {
                let row = (reuse.snapshot(), o);
                sink.push_earlier(place, row, typed.hashes[r], &key_column);
                continue;
            }
            for (a, reason) in typed.bad_values(r) {
                let column = &schema.attrs()[a].column;
                sink.issue(IssueKind::BadValue, place, Some(column), reason.clone());
            }
            sink.push_codes(place, typed.codes(r), typed.hashes[r], &key_column);
        }
    }
}

/// Rows read and typed together.
const BATCH_ROWS: usize = 4096;

/// Reads up to [`BATCH_ROWS`] records into `batch` (reusing its records): how many.
fn read_batch(
    reader: &mut csv::Reader<&[u8]>,
    batch: &mut Vec<csv::ByteRecord>,
) -> Result<usize, csv::Error> {
    let mut read = 0;
    while read < BATCH_ROWS {
        if batch.len() == read {
            batch.push(csv::ByteRecord::new());
        }
        if !reader.read_byte_record(&mut batch[read])? {
            break;
        }
        read += 1;
    }
    Ok(read)
}

/// A batch's rows typed: each row's codes in schema order, the bad values by row and
/// attribute, and each row's digest.
struct Typed {
    width: usize,
    codes: Vec<u32>,
    bad: Vec<(usize, usize, String)>,
    hashes: Vec<u128>,
}

impl Typed {
    fn codes(&self, row: usize) -> &[u32] {
        &self.codes[row * self.width..(row + 1) * self.width]
    }

    /// Row `row`'s bad values, by attribute, with why.
    fn bad_values(&self, row: usize) -> impl Iterator<Item = (usize, &String)> {
        let from = self.bad.partition_point(|&(r, _, _)| r < row);
        self.bad[from..]
            .iter()
            .take_while(move |&&(r, _, _)| r == row)
            .map(|(_, a, reason)| (*a, reason))
    }
}

/// Types a batch's `whole` records (those with every field, and not taken from an earlier
/// snapshot), the first half of the attributes on a thread of its own and the rest, with
/// the rows' digests unless they are `hashes` already, on this one: a column's dictionary
/// and texts are only ever touched by one of them. The results are as if typed row by row.
fn type_batch(
    schema: &Schema,
    (indices, records, whole): (&[usize], &[csv::ByteRecord], &[bool]),
    hashes: Option<Vec<u128>>,
    texts: &mut [TextCodes],
    rows: &mut SnapshotBuilder,
) -> Typed {
    let attrs = schema.attrs();
    let width = attrs.len();
    let split = width / 2;
    let key = schema.key();
    let (texts_a, texts_b) = texts.split_at_mut(split);
    let (columns_a, columns_b) = rows.columns_mut().split_at_mut(split);
    let half = |from: usize, texts: &mut [TextCodes], columns: &mut [ColumnBuilder]| {
        let n = texts.len();
        let mut codes = vec![MISSING; records.len() * n];
        let mut bad = Vec::new();
        for (r, record) in records.iter().enumerate().filter(|&(r, _)| whole[r]) {
            for (i, (text, column)) in texts.iter_mut().zip(columns.iter_mut()).enumerate() {
                let a = from + i;
                match text.code(&attrs[a], a == key, &record[indices[a]], column) {
                    Ok(code) => codes[r * n + i] = code,
                    Err(reason) => bad.push((r, a, reason)),
                }
            }
        }
        (codes, bad)
    };
    let (((codes_b, bad_b), hashes), (codes_a, mut bad)) = crate::halves::join(
        || {
            let second = half(split, texts_b, columns_b);
            let hashes = hashes.unwrap_or_else(|| digests(records, whole, indices));
            (second, hashes)
        },
        || half(0, texts_a, columns_a),
    );
    let mut codes = Vec::with_capacity(records.len() * width);
    for r in 0..records.len() {
        codes.extend_from_slice(&codes_a[r * split..(r + 1) * split]);
        codes.extend_from_slice(&codes_b[r * (width - split)..(r + 1) * (width - split)]);
    }
    // By row, then attribute: the order typing row by row gives.
    bad.extend(bad_b);
    bad.sort_by_key(|&(r, a, _)| (r, a));
    Typed {
        width,
        codes,
        bad,
        hashes,
    }
}

/// The digests of the `whole` records (0 for the others).
fn digests(records: &[csv::ByteRecord], whole: &[bool], indices: &[usize]) -> Vec<u128> {
    (records.iter().zip(whole))
        .map(|(record, &whole)| if whole { digest(record, indices) } else { 0 })
        .collect()
}

/// The digest of a row's mapped fields, in the attributes' order.
fn digest(record: &csv::ByteRecord, indices: &[usize]) -> u128 {
    let mut digest = siphasher::sip128::SipHasher13::new();
    for &i in indices {
        std::hash::Hasher::write(&mut digest, &record[i]);
        // Never in UTF-8: fields cannot run into each other.
        std::hash::Hasher::write_u8(&mut digest, 0xff);
    }
    siphasher::sip128::Hasher128::finish128(&digest).into()
}

/// For each attribute, the index of its column in `headers`.
fn column_indices(
    schema: &Schema,
    headers: &[String],
    source_name: &str,
) -> Result<Vec<usize>, DirectoryError> {
    let mut missing = Vec::new();
    let indices = schema
        .attrs()
        .iter()
        .map(|attr| {
            headers
                .iter()
                .position(|h| *h == attr.column)
                .unwrap_or_else(|| {
                    missing.push(attr.column.clone());
                    0
                })
        })
        .collect();
    if missing.is_empty() {
        Ok(indices)
    } else {
        missing.dedup();
        Err(DirectoryError::MissingColumns {
            source_name: source_name.to_string(),
            missing,
            available: headers.to_vec(),
        })
    }
}

fn read_workday_json(
    text: &str,
    source_name: &str,
    schema: &Schema,
    sink: &mut RowSink,
) -> Result<(), DirectoryError> {
    let malformed = |message: String| DirectoryError::Malformed {
        source_name: source_name.to_string(),
        message,
    };
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "line {} column {}: invalid JSON: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let entries = doc
        .get("Report_Entry")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            malformed("expected a Workday report: an object with a `Report_Entry` list".into())
        })?;
    // A column is missing when no entry has it: Workday leaves out fields that are empty.
    let mut present: Vec<String> = Vec::new();
    let mut present_set = HashSet::new();
    for entry in entries {
        if let Some(obj) = entry.as_object() {
            for k in obj.keys() {
                if present_set.insert(k.as_str()) {
                    present.push(k.clone());
                }
            }
        }
    }
    if !entries.is_empty() {
        column_indices(schema, &present, source_name)?;
    }
    let key_column = schema.attr(schema.key()).column.clone();
    for (i, entry) in entries.iter().enumerate() {
        let place = Place::Entry(i);
        sink.read += 1;
        let Some(obj) = entry.as_object() else {
            let msg = "is not an object: row rejected".to_string();
            sink.issue(IssueKind::MalformedRow, place, None, msg);
            continue;
        };
        let row = schema
            .attrs()
            .iter()
            .map(|attr| match obj.get(&attr.column) {
                None => None,
                Some(v) => parse_json(attr, v).unwrap_or_else(|reason| {
                    sink.issue(IssueKind::BadValue, place, Some(&attr.column), reason);
                    None
                }),
            })
            .collect();
        sink.push(place, row, &key_column);
    }
    Ok(())
}

fn check_emails(snapshot: &Snapshot, places: &[Place], issues: &mut Vec<LoadIssue>) {
    let column = &snapshot.schema().attr(snapshot.schema().email()).column;
    let mut first: rustc_hash::FxHashMap<Cow<'_, str>, usize> = Default::default();
    first.reserve(snapshot.len());
    for w in 0..snapshot.len() {
        let Some(email) = snapshot.email(w) else {
            continue;
        };
        // Most emails are lower case already: they are not copied.
        let lower = match email
            .bytes()
            .any(|b| !b.is_ascii() || b.is_ascii_uppercase())
        {
            true => Cow::Owned(email.to_lowercase()),
            false => Cow::Borrowed(email),
        };
        match first.get(&lower) {
            None => {
                first.insert(lower, w);
            }
            Some(&f) => issues.push(LoadIssue {
                kind: IssueKind::DuplicateEmail,
                place: Some(places[w]),
                column: Some(column.clone()),
                message: format!(
                    "email `{email}` is also held by `{}` ({}): entries cannot name either by email",
                    snapshot.key(f),
                    places[f]
                ),
            }),
        }
    }
}

fn check_managers(snapshot: &Snapshot, places: &[Place], issues: &mut Vec<LoadIssue>) {
    let Some(manager_attr) = snapshot.schema().manager() else {
        return;
    };
    let column = snapshot.schema().attr(manager_attr).column.clone();
    let references = snapshot.manager_references();
    for (w, &place) in places.iter().enumerate() {
        let Some(Value::Str(reference)) = snapshot.get(manager_attr, w) else {
            continue;
        };
        let (kind, message) = match references[w] {
            None => (
                IssueKind::UnknownManager,
                format!(
                    "manager `{}` is not a worker in this export",
                    excerpt(reference)
                ),
            ),
            Some(m) if m == w => (
                IssueKind::SelfManager,
                "names the worker as their own manager: treated as no manager".to_string(),
            ),
            Some(_) => continue,
        };
        issues.push(LoadIssue {
            kind,
            place: Some(place),
            column: Some(column.clone()),
            message,
        });
    }
    for cycle in manager_cycles(snapshot.managers()) {
        let keys: Vec<&str> = cycle.iter().map(|&w| snapshot.key(w)).collect();
        issues.push(LoadIssue {
            kind: IssueKind::ManagerCycle,
            place: Some(places[cycle[0]]),
            column: Some(column.clone()),
            message: format!("manager cycle: {} -> {}", keys.join(" -> "), keys[0]),
        });
    }
}

/// Every cycle in the manager graph, each once, starting at its first worker in export order.
pub(crate) fn manager_cycles(managers: &[Option<usize>]) -> Vec<Vec<usize>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; managers.len()];
    let mut cycles = Vec::new();
    let mut path = Vec::new();
    for start in 0..managers.len() {
        let mut w = start;
        path.clear();
        while state[w] == NEW {
            state[w] = ON_PATH;
            path.push(w);
            match managers[w] {
                Some(m) => w = m,
                None => break,
            }
        }
        if state[w] == ON_PATH && managers[w].is_some() {
            if let Some(pos) = path.iter().position(|&p| p == w) {
                let mut cycle = path[pos..].to_vec();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, &c)| c)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                cycles.push(cycle);
            }
        }
        for &p in &path {
            state[p] = DONE;
        }
    }
    cycles
}
