//! Cron schedules in a time zone: the common five-field form, or the `cron` crate's form
//! with seconds (and an optional year).

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: FixedOffset,
}

impl Schedule {
    /// `expr` in five fields (`min hour dom month dow`) or six/seven (seconds first, year
    /// last); `zone` is `UTC` or an offset such as `+02:00`.
    pub fn parse(expr: &str, zone: &str) -> Result<Schedule, String> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_string(),
            _ => {
                return Err(format!(
                    "`{expr}` has {fields} fields\nhelp: use five (`*/15 * * * *`), or six with seconds first (`0 */15 * * * *`)"
                ))
            }
        };
        let cron = cron::Schedule::from_str(&full).map_err(|e| format!("`{expr}`: {e}"))?;
        let zone = parse_zone(zone)?;
        if cron
            .after(&Utc::now().with_timezone(&zone))
            .next()
            .is_none()
        {
            return Err(format!("`{expr}` never fires again"));
        }
        Ok(Schedule { cron, zone })
    }

    /// The first time strictly after `now` that the schedule fires.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&now.with_timezone(&self.zone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

fn parse_zone(zone: &str) -> Result<FixedOffset, String> {
    if zone.eq_ignore_ascii_case("utc") || zone == "Z" {
        return FixedOffset::east_opt(0).ok_or_else(|| "no UTC offset".to_string());
    }
    let bad = || {
        format!("time zone `{zone}`: use `UTC` or a fixed offset such as `+02:00` (named zones are not supported yet)")
    };
    let (sign, rest) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, s).unwrap()
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let s = Schedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(s.next_after(at(10, 7, 30)), Some(at(10, 15, 0)));
        assert_eq!(s.next_after(at(10, 15, 0)), Some(at(10, 30, 0)));
    }

    #[test]
    fn seconds_form_and_offsets_are_honoured() {
        let s = Schedule::parse("*/5 * * * * *", "UTC").unwrap();
        assert_eq!(s.next_after(at(10, 0, 1)), Some(at(10, 0, 5)));
        // 03:30 at +02:00 is 01:30 UTC.
        let s = Schedule::parse("30 3 * * *", "+02:00").unwrap();
        assert_eq!(s.next_after(at(0, 0, 0)), Some(at(1, 30, 0)));
    }

    #[test]
    fn bad_schedules_say_why() {
        let e = Schedule::parse("* * *", "UTC").unwrap_err();
        assert!(e.contains("3 fields"), "{e}");
        let e = Schedule::parse("61 * * * *", "UTC").unwrap_err();
        assert!(e.contains("`61 * * * *`"), "{e}");
        let e = Schedule::parse("* * * * *", "Europe/Paris").unwrap_err();
        assert!(e.contains("fixed offset"), "{e}");
    }
}
