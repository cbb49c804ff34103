//! Typing an export's field texts into values: the same rules for CSV and Workday JSON,
//! and for the values rule tests write (`parse_text`).

use chrono::NaiveDate;

use super::{AttrType, Attribute, ColumnBuilder, Value, MISSING};

/// The longest value a field may hold, in bytes. Longer ones are bad values: no attribute
/// a rule reads is that long, and quoting or copying it costs memory out of proportion.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

/// At most this many characters of a value are quoted in a message.
const QUOTED_CHARS: usize = 60;

/// The first characters of `text`, for a message; marked with `…` where cut.
pub(super) fn excerpt(text: &str) -> String {
    crate::text::shorten(text, QUOTED_CHARS)
}

/// One column's field texts and what each became: a text is parsed and checked once, however
/// many rows have it. A column whose texts are mostly distinct (keys, emails, names) stops
/// keeping them, so that they are not held twice.
#[derive(Default)]
pub(super) struct TextCodes {
    seen: rustc_hash::FxHashMap<Box<str>, Result<u32, String>>,
    rows: usize,
    distinct_mostly: bool,
}

impl TextCodes {
    /// The code of the field `raw` of attribute `attr` in its `column`, or why it is bad.
    pub(super) fn code(
        &mut self,
        attr: &Attribute,
        is_key: bool,
        raw: &[u8],
        column: &mut ColumnBuilder,
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
            Some(v) => Ok(column.intern(v)),
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

pub(super) const NUL_VALUE: &str = "the value holds a NUL character: value treated as missing";

pub(super) fn holds_nul(value: &Value) -> bool {
    match value {
        Value::Str(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(|s| s.contains('\0')),
        _ => false,
    }
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

pub(super) fn parse_json(attr: &Attribute, v: &serde_json::Value) -> Result<Option<Value>, String> {
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

/// `head` when it is `YYYY-MM-DD` in digits and a real date, as `%Y-%m-%d` reads it: most
/// of an export's dates are distinct (hire dates), so each is parsed, and chrono's format
/// parser took a tenth of loading an export. `None` for anything else, which chrono reads.
fn iso_date(head: &str) -> Option<NaiveDate> {
    let b = head.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        (digits.iter()).try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..10])?)
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
            iso_date(head)
                .or_else(|| NaiveDate::parse_from_str(head, "%Y-%m-%d").ok())
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

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    /// The quick reading of `YYYY-MM-DD` gives what chrono's `%Y-%m-%d` gives, or leaves
    /// the text to it.
    #[test]
    fn iso_dates_read_as_chrono_reads_them() {
        let texts = [
            "2021-03-04",
            "2020-02-29",
            "2021-02-29",
            "2021-13-01",
            "2021-00-10",
            "2021-04-31",
            "0001-01-01",
            "9999-12-31",
            "2021-3-04",
            "2021/03/04",
            "20210304",
            "2021-03-0a",
            "+202-03-04",
            "2021-03-4 ",
            " 2021-03-4",
            "２021-03-04",
        ];
        for text in texts {
            let chrono = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
            if let Some(quick) = super::iso_date(text) {
                assert_eq!(Some(quick), chrono, "{text}");
            }
            let date = super::parse_date(text, None).ok();
            let expected = chrono.filter(|_| text.len() == 10);
            assert_eq!(date, expected, "{text}");
        }
        assert_eq!(
            super::iso_date("2021-03-04"),
            NaiveDate::from_ymd_opt(2021, 3, 4)
        );
        assert_eq!(super::iso_date("2021-02-29"), None);
    }
}
