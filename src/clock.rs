//! The one module that reads the wall clock. Everything else takes the date as a parameter.

use chrono::{DateTime, NaiveDate, Utc};

/// Today's date in UTC, the default evaluation date.
pub fn today_utc() -> NaiveDate {
    now_utc().date_naive()
}

/// An instant as the store keeps it: RFC 3339 in UTC, to the second.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The current instant in UTC.
pub fn now_utc() -> DateTime<Utc> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, since_epoch.subsec_nanos()).unwrap_or_default()
}
