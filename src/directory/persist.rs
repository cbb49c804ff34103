//! A snapshot as stored rows (worker key → attributes as JSON), back again, and the diff
//! between two snapshots (who joined, who left, which attributes changed).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use super::{AttrType, Schema, Snapshot, Value, WorkerId};

crate::text::stored_text! {
    /// How a worker differs between a snapshot and the one before it.
    pub enum ChangeKind ("snapshot change") {
        Joined = "joined",
        Left = "left",
        Changed = "changed",
    }
}

/// What changed for one worker between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerChange {
    pub key: String,
    pub change: ChangeKind,
    /// For `changed`: the attribute, and its old and new values as JSON text.
    pub attribute: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

impl Snapshot {
    /// Each worker's key and attributes as a JSON object (missing values left out), in the
    /// snapshot's order.
    pub fn to_rows(&self) -> Vec<(String, String)> {
        let writer = RowWriter::new(self, self.len());
        crate::halves::map_halves(self.len(), |workers| {
            workers.map(|w| writer.row(self, w)).collect()
        })
    }

    /// [`Snapshot::to_rows`] of just these workers, in this order.
    pub fn rows_of(&self, workers: &[WorkerId]) -> Vec<(String, String)> {
        let writer = RowWriter::new(self, workers.len());
        workers.iter().map(|&w| writer.row(self, w)).collect()
    }

    /// Rebuilds a snapshot from stored rows. Attributes the schema no longer has are ignored,
    /// and new ones are missing; a stored value that no longer fits its type is an error.
    pub fn from_rows_json(
        schema: Arc<Schema>,
        rows: &[(String, String)],
    ) -> Result<Snapshot, String> {
        let mut values = Vec::with_capacity(rows.len());
        for (key, json) in rows {
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(json).map_err(|e| format!("stored worker `{key}`: {e}"))?;
            let row = schema
                .attrs()
                .iter()
                .map(|attr| match obj.get(&attr.name) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(v) => from_json(attr.ty, v).map(Some).ok_or_else(|| {
                        format!(
                            "stored worker `{key}`: `{}` is not a {}",
                            attr.name, attr.ty
                        )
                    }),
                })
                .collect::<Result<Vec<_>, String>>()?;
            values.push(row);
        }
        Ok(Snapshot::from_rows(schema, values))
    }
}

/// The text serde_json gives a map of the attributes (names in order, compact), written
/// straight: no map is built per worker, and no value per attribute.
struct RowWriter {
    /// Attribute ids by name.
    order: Vec<usize>,
    /// Their names, as JSON strings.
    names: Vec<String>,
    /// In `order`'s order, for an attribute whose distinct values are few beside the rows to
    /// write: each value's JSON text, by its code. A department is written once, not once per
    /// worker.
    texts: Vec<Option<Vec<String>>>,
}

impl RowWriter {
    /// A writer for `rows` rows of `snapshot`: dictionaries of at most a quarter as many
    /// values are written out once.
    fn new(snapshot: &Snapshot, rows: usize) -> RowWriter {
        let attrs = snapshot.schema().attrs();
        let mut order: Vec<usize> = (0..attrs.len()).collect();
        order.sort_by(|&a, &b| attrs[a].name.cmp(&attrs[b].name));
        let names = order
            .iter()
            .map(|&a| serde_json::Value::from(attrs[a].name.as_str()).to_string())
            .collect();
        let texts = order
            .iter()
            .map(|&a| {
                let dict = snapshot.column(a).dict();
                (dict.len() * 4 <= rows).then(|| {
                    dict.iter()
                        .map(|v| {
                            let mut text = String::new();
                            push_json(&mut text, v);
                            text
                        })
                        .collect()
                })
            })
            .collect();
        RowWriter {
            order,
            names,
            texts,
        }
    }

    fn row(&self, snapshot: &Snapshot, w: WorkerId) -> (String, String) {
        let mut json = String::with_capacity(512);
        json.push('{');
        for ((name, &a), texts) in self.names.iter().zip(&self.order).zip(&self.texts) {
            let column = snapshot.column(a);
            let code = column.codes()[w];
            if code == super::column::MISSING {
                continue;
            }
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(name);
            json.push(':');
            match texts {
                Some(texts) => json.push_str(&texts[code as usize]),
                None => push_json(&mut json, &column.dict()[code as usize]),
            }
        }
        json.push('}');
        (snapshot.key(w).to_string(), json)
    }
}

/// Appends `value` as serde_json writes [`Value::to_json`] (a test holds them equal).
fn push_json(out: &mut String, value: &Value) {
    use std::fmt::Write;
    match value {
        Value::Str(s) => push_json_str(out, s),
        Value::Num(n) => out.push_str(&serde_json::Value::from(*n).to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => {
            out.push('"');
            let _ = write!(out, "{d}");
            out.push('"');
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, item);
            }
            out.push(']');
        }
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes: `"`, `\\` and the control
/// characters, those with a short form by it.
fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if short.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

fn from_json(ty: AttrType, v: &serde_json::Value) -> Option<Value> {
    match ty {
        AttrType::String => v.as_str().map(|s| Value::Str(s.to_string())),
        AttrType::Number => v.as_f64().map(Value::Num),
        AttrType::Bool => v.as_bool().map(Value::Bool),
        AttrType::Date => v
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(Value::Date),
        AttrType::List => v.as_array().map(|items| {
            Value::List(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
            )
        }),
    }
}

/// The differences from `old` rows to `new` rows (both as [`Snapshot::to_rows`] makes them),
/// ordered by worker key.
pub fn diff_rows(old: &[(String, String)], new: &[(String, String)]) -> Vec<WorkerChange> {
    // Rows are compared as text first; only a worker whose row differs is parsed. Most
    // workers are the same from one export to the next.
    let old_rows: std::collections::HashMap<&str, &str> =
        old.iter().map(|(k, j)| (k.as_str(), j.as_str())).collect();
    let new_keys: std::collections::HashSet<&str> = new.iter().map(|(k, _)| k.as_str()).collect();
    let parse = |json: &str| -> BTreeMap<String, serde_json::Value> {
        serde_json::from_str(json).unwrap_or_default()
    };
    let mut out = Vec::new();
    let change = |key: &str,
                  change,
                  attribute: Option<&str>,
                  old: Option<&serde_json::Value>,
                  new: Option<&serde_json::Value>| WorkerChange {
        key: key.to_string(),
        change,
        attribute: attribute.map(str::to_string),
        old_value: old.map(ToString::to_string),
        new_value: new.map(ToString::to_string),
    };
    for (key, _) in old.iter().filter(|(k, _)| !new_keys.contains(k.as_str())) {
        out.push(change(key, ChangeKind::Left, None, None, None));
    }
    for (key, json) in new {
        match old_rows.get(key.as_str()) {
            None => out.push(change(key, ChangeKind::Joined, None, None, None)),
            Some(before) if *before == json.as_str() => {}
            Some(before) => {
                let (before, after) = (parse(before), parse(json));
                let names: std::collections::BTreeSet<&String> =
                    before.keys().chain(after.keys()).collect();
                for name in names {
                    let (b, a) = (before.get(name), after.get(name));
                    if b != a {
                        out.push(change(key, ChangeKind::Changed, Some(name), b, a));
                    }
                }
            }
        }
    }
    // By key, then attribute, as before: a worker's changes stay together.
    out.sort_by(|a, b| (&a.key, &a.attribute).cmp(&(&b.key, &b.attribute)));
    out
}

/// The SHA-256 of an export's bytes, in hex: identical exports have identical checksums.
pub fn checksum(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::generate;

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let date = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        let values = [
            Value::Str("plain".into()),
            Value::Str("quote \" back \\ slash / é ✓".into()),
            Value::Str("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} end".into()),
            Value::Str(String::new()),
            Value::Num(1.0),
            Value::Num(-0.25),
            Value::Num(1e21),
            Value::Num(f64::NAN),
            Value::Bool(false),
            Value::Date(date),
            Value::List(vec!["a\"b".into(), String::new(), "c".into()]),
            Value::List(Vec::new()),
        ];
        for value in &values {
            let mut text = String::new();
            push_json(&mut text, value);
            assert_eq!(text, value.to_json().to_string(), "{value:?}");
        }
    }

    #[test]
    fn rows_round_trip_through_json() {
        let workers = generate::generate(300, 5);
        let mut csv = Vec::new();
        generate::write_csv(&workers, &mut csv).unwrap();
        let schema = Arc::new(generate::schema());
        let text = String::from_utf8(csv).unwrap();
        let (snap, _) = crate::directory::load_from_str(
            &text,
            crate::config::SourceFormat::Csv,
            "w.csv",
            schema.clone(),
            5.0,
        )
        .unwrap();
        let rows = snap.to_rows();
        for (key, json) in &rows {
            // Exactly serde_json's text of the map: rows stored before stay comparable.
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(&value.to_string(), json, "{key}");
        }
        let back = Snapshot::from_rows_json(schema, &rows).unwrap();
        assert_eq!(back.to_rows(), rows);
        assert_eq!(back.managers(), snap.managers());
    }

    #[test]
    fn changed_since_names_the_changed_workers_of_the_same_population() {
        let schema = Arc::new(generate::schema());
        let load_as = |schema: &Arc<Schema>, workers: &[generate::Worker]| {
            let mut csv = Vec::new();
            generate::write_csv(workers, &mut csv).unwrap();
            let text = String::from_utf8(csv).unwrap();
            crate::directory::load_from_str(
                &text,
                crate::config::SourceFormat::Csv,
                "w.csv",
                schema.clone(),
                5.0,
            )
            .unwrap()
            .0
        };
        let load = |workers: &[generate::Worker]| load_as(&schema, workers);
        let mut workers = generate::generate(200, 5);
        let before = load(&workers);
        workers[7].department = "Somewhere Else".into();
        workers[150].status = "Terminated".into();
        let after = load(&workers);
        assert_eq!(after.changed_since(&before), Some(vec![7, 150]));
        assert_eq!(before.changed_since(&before), Some(vec![]));
        workers.swap(3, 4);
        assert_eq!(load(&workers).changed_since(&before), None);
        workers.pop();
        assert_eq!(load(&workers).changed_since(&before), None);

        // Rows that moved, left or joined: each worker's earlier place, and the new ones.
        let moved = load(&workers).align(&before).unwrap();
        assert!(!moved.same_order);
        assert_eq!(moved.old[3], Some(4));
        assert_eq!(moved.old[4], Some(3));
        assert_eq!(moved.old.len(), 199);
        assert_eq!(moved.changed, vec![7, 150], "moving a row is no change");
        let mut joined = generate::generate(201, 5);
        joined[200].id = "NEW-1".into();
        workers.push(joined.pop().unwrap());
        let grown = load(&workers).align(&before).unwrap();
        assert_eq!(grown.old[199], None);
        assert_eq!(grown.changed, vec![7, 150, 199]);
        // Without row digests (a snapshot read back from the store), values are compared.
        let stored = Snapshot::from_rows_json(schema.clone(), &before.to_rows()).unwrap();
        assert_eq!(load(&workers).align(&stored).unwrap(), grown);
        assert_eq!(stored.digest_form(), None);

        // From the digests stored with the earlier snapshot: the same workers, and the keys of
        // the stored rows to compare (the changed ones, and the one who left).
        let digests: Vec<(String, u64)> = before
            .row_digests()
            .unwrap()
            .map(|(key, digest)| (key.to_string(), digest as u64))
            .collect();
        let form = before.digest_form().unwrap();
        let stored = |visit: &mut dyn FnMut(&str, u64)| {
            digests.iter().for_each(|(key, digest)| visit(key, *digest));
            Ok::<_, ()>(())
        };
        let (changed, keys) = load(&workers)
            .changed_from_digests(&form, stored)
            .unwrap()
            .unwrap();
        assert_eq!(changed, grown.changed);
        let left = before.key(199);
        assert_eq!(keys, [before.key(7), before.key(150), left]);
        // Digests made under another mapping are not compared: the same text may be typed
        // differently (here, dates read with an explicit format).
        let mut attrs = schema.attrs.clone();
        for a in attrs.iter_mut().filter(|a| a.ty == AttrType::Date) {
            a.date_format = Some("%Y-%m-%d".into());
        }
        let other = Arc::new(Schema::new(attrs, "worker_id", "email", Some("manager_id")).unwrap());
        let reread = load_as(&other, &workers);
        assert_ne!(reread.digest_form().unwrap(), form);
        assert_eq!(reread.changed_from_digests(&form, stored), Ok(None));
        assert_eq!(reread.align(&before), None);
    }

    #[test]
    fn diff_names_joiners_leavers_and_changed_attributes() {
        let old = vec![
            ("A".to_string(), r#"{"d":"X","n":1}"#.to_string()),
            ("B".to_string(), "{}".to_string()),
        ];
        let new = vec![
            ("A".to_string(), r#"{"d":"Y","n":1,"t":"new"}"#.to_string()),
            ("C".to_string(), "{}".to_string()),
        ];
        let d = diff_rows(&old, &new);
        let shown: Vec<String> = d
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:?} {:?} {:?}",
                    c.key, c.change, c.attribute, c.old_value, c.new_value
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                r#"A changed Some("d") Some("\"X\"") Some("\"Y\"")"#,
                r#"A changed Some("t") None Some("\"new\"")"#,
                "B left None None None",
                "C joined None None None",
            ]
        );
    }
}
