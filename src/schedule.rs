//! Cron schedules in a time zone: the common five-field form, or the `cron` crate's form
//! with seconds (and an optional year).

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: Zone,
}

/// Where the schedule's wall clock hangs: a fixed offset, or a named zone whose offset
/// follows daylight saving time (`30 3 * * *` in `Europe/Berlin` is 03:30 there all year).
#[derive(Debug, Clone, Copy)]
enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Schedule {
    /// `expr` in five fields (`min hour dom month dow`) or six/seven (seconds first, year
    /// last); `zone` is `UTC`, an offset such as `+02:00`, or an IANA name such as
    /// `Europe/Berlin`.
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
        let schedule = Schedule {
            cron,
            zone: parse_zone(zone)?,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(format!("`{expr}` never fires again"));
        }
        Ok(schedule)
    }

    /// How many times the schedule fires in the `span` after `from` (at least 1, at most
    /// `most`): the runs a share of work is spread over. One walk of the schedule's times.
    pub fn runs_within(&self, from: DateTime<Utc>, span: chrono::Duration, most: u64) -> u64 {
        fn count<Z: TimeZone>(
            cron: &cron::Schedule,
            from: DateTime<Utc>,
            end: DateTime<Utc>,
            most: u64,
            zone: &Z,
        ) -> u64 {
            cron.after(&from.with_timezone(zone))
                .take_while(|t| t.with_timezone(&Utc) <= end)
                .take(usize::try_from(most).unwrap_or(usize::MAX))
                .count() as u64
        }
        let end = from + span;
        let runs = match &self.zone {
            Zone::Fixed(z) => count(&self.cron, from, end, most, z),
            Zone::Named(z) => count(&self.cron, from, end, most, z),
        };
        runs.max(1)
    }

    /// The first time strictly after `now` that the schedule fires.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        fn first<Z: TimeZone>(
            cron: &cron::Schedule,
            now: DateTime<Utc>,
            zone: &Z,
        ) -> Option<DateTime<Utc>> {
            cron.after(&now.with_timezone(zone))
                .next()
                .map(|t| t.with_timezone(&Utc))
        }
        match &self.zone {
            Zone::Fixed(z) => first(&self.cron, now, z),
            Zone::Named(z) => first(&self.cron, now, z),
        }
    }
}

fn parse_zone(zone: &str) -> Result<Zone, String> {
    if zone.eq_ignore_ascii_case("utc") || zone == "Z" {
        return FixedOffset::east_opt(0)
            .map(Zone::Fixed)
            .ok_or_else(|| "no UTC offset".to_string());
    }
    let bad = || {
        format!("time zone `{zone}`: use `UTC`, a fixed offset such as `+02:00`, or an IANA zone name such as `Europe/Berlin`")
    };
    let (sign, rest) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => {
            return chrono_tz::Tz::from_str(zone)
                .map(Zone::Named)
                .map_err(|_| bad())
        }
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .map(Zone::Fixed)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn runs_within_a_span_are_counted_and_capped() {
        let s = Schedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            s.runs_within(at(0, 0, 0), chrono::Duration::hours(24), 10_000),
            96
        );
        assert_eq!(
            s.runs_within(at(0, 0, 0), chrono::Duration::hours(24), 10),
            10
        );
        // A span shorter than the schedule still counts one run.
        let daily = Schedule::parse("30 3 * * *", "UTC").unwrap();
        assert_eq!(
            daily.runs_within(at(4, 0, 0), chrono::Duration::hours(1), 10),
            1
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        let e = Schedule::parse("* * *", "UTC").unwrap_err();
        assert!(e.contains("3 fields"), "{e}");
        let e = Schedule::parse("61 * * * *", "UTC").unwrap_err();
        assert!(e.contains("`61 * * * *`"), "{e}");
        let e = Schedule::parse("* * * * *", "Europe/Pariss").unwrap_err();
        assert!(e.contains("`Europe/Pariss`"), "{e}");
        assert!(e.contains("IANA"), "{e}");
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let s = Schedule::parse("30 3 * * *", "Europe/Berlin").unwrap();
        // Summer (UTC+2): 03:30 in Berlin is 01:30 UTC.
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(summer),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 1, 30, 0).unwrap())
        );
        // Winter (UTC+1): 02:30 UTC.
        assert_eq!(s.next_after(at(0, 0, 0)), Some(at(2, 30, 0)));
    }
}
