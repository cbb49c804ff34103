//! Reading an HR export into a [`Snapshot`].
//!
//! Bad values never stop a load: each is reported with its row and column and the value is then
//! missing. Rows without a usable key are rejected and reported. Only a file that cannot be read
//! at all, lacks mapped columns, or has more bad rows than the configured share fails the load.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use super::{AttrType, Attribute, Schema, Snapshot, SnapshotBuilder, Value, MISSING};
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

/// The longest value a field may hold, in bytes. Longer ones are bad values: no attribute
/// a rule reads is that long, and quoting or copying it costs memory out of proportion.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

/// The longest CSV header line, in bytes.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// At most this many characters of a value are quoted in a message.
const QUOTED_CHARS: usize = 60;

/// The first characters of `text`, for a message; marked with `…` where cut.
fn excerpt(text: &str) -> String {
    crate::text::shorten(text, QUOTED_CHARS)
}

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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = RowSink::new(&schema);
    match format {
        SourceFormat::Csv => read_csv(text, source_name, &schema, &mut rows)?,
        SourceFormat::WorkdayJson => read_workday_json(text, source_name, &schema, &mut rows)?,
    }
    let RowSink {
        rows: builder,
        places,
        mut issues,
        read,
        ..
    } = rows;
    let snapshot = builder.finish();
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
    Ok((snapshot, report))
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
            self.seen.insert(key, place);
            self.places.push(place);
        }
    }

    /// A row of codes from [`SnapshotBuilder::intern`], with the digest of its text (the
    /// CSV reader's: no value is copied for a row whose values were seen before).
    fn push_codes(&mut self, place: Place, codes: &[u32], hash: u128, key_column: &str) {
        if let Some(key) = self.accepted_key(place, codes, key_column) {
            self.rows.push_codes(codes, hash);
            self.seen.insert(key, place);
            self.places.push(place);
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
    let mut record = csv::ByteRecord::new();
    let mut texts: Vec<TextCodes> = schema
        .attrs()
        .iter()
        .map(|_| TextCodes::default())
        .collect();
    let mut codes = vec![MISSING; schema.attrs().len()];
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(malformed(format!("line {line}: {e}")));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let place = Place::Line(line);
        sink.read += 1;
        if record.len() != headers.len() {
            let msg = format!(
                "has {} fields where the header has {}: row rejected",
                record.len(),
                headers.len()
            );
            sink.issue(IssueKind::MalformedRow, place, None, msg);
            continue;
        }
        let mut digest = siphasher::sip128::SipHasher13::new();
        for (a, (attr, &i)) in schema.attrs().iter().zip(&indices).enumerate() {
            let raw = &record[i];
            std::hash::Hasher::write(&mut digest, raw);
            // Never in UTF-8: fields cannot run into each other.
            std::hash::Hasher::write_u8(&mut digest, 0xff);
            codes[a] = match texts[a].code(a, attr, a == sink.key, raw, &mut sink.rows) {
                Ok(code) => code,
                Err(reason) => {
                    sink.issue(IssueKind::BadValue, place, Some(&attr.column), reason);
                    MISSING
                }
            };
        }
        let hash = siphasher::sip128::Hasher128::finish128(&digest).into();
        sink.push_codes(place, &codes, hash, &key_column);
    }
    Ok(())
}

/// One column's field texts and what each became: a text is parsed and checked once, however
/// many rows have it. A column whose texts are mostly distinct (keys, emails, names) stops
/// keeping them, so that they are not held twice.
#[derive(Default)]
struct TextCodes {
    seen: rustc_hash::FxHashMap<Box<str>, Result<u32, String>>,
    rows: usize,
    distinct_mostly: bool,
}

impl TextCodes {
    /// The code of the field `raw` of attribute `attr` (number `a`), or why it is bad.
    fn code(
        &mut self,
        a: usize,
        attr: &Attribute,
        is_key: bool,
        raw: &[u8],
        rows: &mut SnapshotBuilder,
    ) -> Result<u32, String> {
        // A field of a text is text: the CSV reader splits at ASCII bytes only.
        let raw = std::str::from_utf8(raw)
            .map_err(|_| "the value is not UTF-8: value treated as missing".to_string())?;
        self.rows += 1;
        if let Some(known) = self.seen.get(raw) {
            return known.clone();
        }
        let result = parse_text(attr, raw).and_then(|value| match value {
            None => Ok(MISSING),
            // A NUL character cannot be stored (PostgreSQL's text cannot hold it) nor shown:
            // a value with one is a bad value. The key is checked on its own.
            Some(v) if !is_key && holds_nul(&v) => Err(NUL_VALUE.to_string()),
            Some(v) => Ok(rows.intern(a, v)),
        });
        if !self.distinct_mostly {
            self.seen.insert(raw.into(), result.clone());
            if self.rows >= 1024 && self.seen.len() * 2 > self.rows {
                self.distinct_mostly = true;
                self.seen = rustc_hash::FxHashMap::default();
            }
        }
        result
    }
}

const NUL_VALUE: &str = "the value holds a NUL character: value treated as missing";

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::Str(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(|s| s.contains('\0')),
        _ => false,
    }
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

/// `Err` when `raw` is longer than [`MAX_FIELD_BYTES`].
fn within_field_limit(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_FIELD_BYTES {
        return Err(format!(
            "the value is {} bytes, more than the limit of {MAX_FIELD_BYTES}: value treated as missing",
            raw.len()
        ));
    }
    Ok(())
}

/// Parses one text field; `Ok(None)` is an empty (missing) value, `Err` says why it is bad.
pub fn parse_text(attr: &Attribute, raw: &str) -> Result<Option<Value>, String> {
    within_field_limit(raw)?;
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value = match attr.ty {
        AttrType::String => Value::Str(text.to_string()),
        AttrType::Number => Value::Num(parse_number(text)?),
        AttrType::Bool => Value::Bool(parse_bool(text)?),
        AttrType::Date => Value::Date(parse_date(text, attr.date_format.as_deref())?),
        AttrType::List => {
            let items: Vec<String> = text
                .split(attr.separator.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(items)
        }
    };
    Ok(Some(value))
}

fn parse_json(attr: &Attribute, v: &serde_json::Value) -> Result<Option<Value>, String> {
    use serde_json::Value as J;
    match (attr.ty, v) {
        (_, J::Null) => Ok(None),
        (_, J::String(s)) => parse_text(attr, s),
        (AttrType::Number, J::Number(n)) => n
            .as_f64()
            .map(|n| Some(Value::Num(n)))
            .ok_or_else(|| format!("bad number `{n}`: value treated as missing")),
        (AttrType::String, J::Number(n)) => Ok(Some(Value::Str(n.to_string()))),
        (AttrType::Bool, J::Bool(b)) => Ok(Some(Value::Bool(*b))),
        (AttrType::String, J::Bool(b)) => Ok(Some(Value::Str(b.to_string()))),
        (AttrType::List, J::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    J::String(s) => {
                        within_field_limit(s)?;
                        if !s.trim().is_empty() {
                            out.push(s.trim().to_string());
                        }
                    }
                    J::Null => {}
                    J::Number(n) => out.push(n.to_string()),
                    other => {
                        return Err(format!(
                        "expected a list of strings, found an element {}: value treated as missing",
                        json_kind(other)
                    ))
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::List(out)))
        }
        (ty, other) => Err(format!(
            "expected {ty}, found {}: value treated as missing",
            json_kind(other)
        )),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn parse_number(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("bad number `{}`: value treated as missing", excerpt(text)))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!(
            "bad bool `{}`: expected true/false, yes/no, y/n or 1/0: value treated as missing",
            excerpt(text)
        )),
    }
}

/// `YYYY-MM-DD`, optionally followed by a time or a UTC offset as Workday writes them
/// (`2021-03-04-08:00`, `2021-03-04T09:00:00Z`); or the configured chrono format.
fn parse_date(text: &str, format: Option<&str>) -> Result<NaiveDate, String> {
    let parsed = match format {
        Some(f) => NaiveDate::parse_from_str(text, f).ok(),
        None => {
            let head = text.get(..10).unwrap_or(text);
            let rest = text.get(10..).unwrap_or("");
            let rest_ok = rest.is_empty() || rest.starts_with(['T', ' ', 'Z', '+', '-']);
            NaiveDate::parse_from_str(head, "%Y-%m-%d")
                .ok()
                .filter(|_| rest_ok && head.len() == 10)
        }
    };
    parsed.ok_or_else(|| {
        let expected = format.unwrap_or("YYYY-MM-DD");
        format!(
            "bad date `{}`: expected {expected}: value treated as missing",
            excerpt(text)
        )
    })
}

fn check_emails(snapshot: &Snapshot, places: &[Place], issues: &mut Vec<LoadIssue>) {
    let column = &snapshot.schema().attr(snapshot.schema().email()).column;
    let mut first: HashMap<String, usize> = HashMap::new();
    for w in 0..snapshot.len() {
        let Some(email) = snapshot.email(w) else {
            continue;
        };
        let lower = email.to_lowercase();
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
    for (w, &place) in places.iter().enumerate() {
        let Some(Value::Str(reference)) = snapshot.get(manager_attr, w) else {
            continue;
        };
        let (kind, message) = match snapshot.by_key(reference) {
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
