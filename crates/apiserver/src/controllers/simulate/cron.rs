//! CronJob schedules, as the CronJob controller reads them (robfig/cron's
//! standard five fields, names of months and weekdays, `?`, and the
//! `@hourly`-style macros), in UTC. The simulator records each scheduled
//! time as `status.lastScheduleTime` (and `lastSuccessfulTime`: the
//! simulated job finishes at once) without creating Jobs.

use gitplane_object::time::Civil;

/// A parsed schedule: the allowed values of each field as bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// `*` (or `?`) in the day-of-month field.
    any_day: bool,
    /// `*` (or `?`) in the day-of-week field.
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Schedule {
    /// Parses a schedule; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let text = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!("unsupported schedule {other:?}"));
            }
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("expected 5 fields, found {}", fields.len()));
        };
        let weekdays =
            field(weekday, 0, 7, &WEEKDAYS, 0).map_err(|e| format!("day of week: {e}"))?;
        Ok(Schedule {
            minutes: field(minute, 0, 59, &[], 0).map_err(|e| format!("minute: {e}"))?,
            hours: field(hour, 0, 23, &[], 0).map_err(|e| format!("hour: {e}"))?,
            days: field(day, 1, 31, &[], 0).map_err(|e| format!("day of month: {e}"))?,
            months: field(month, 1, 12, &MONTHS, 1).map_err(|e| format!("month: {e}"))?,
            // 7 is Sunday too.
            weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
            any_day: matches!(day, "*" | "?"),
            any_weekday: matches!(weekday, "*" | "?"),
        })
    }

    /// Whether the schedule fires at this minute. As cron, when both the
    /// day of month and the day of week are restricted, either may match.
    pub fn matches(&self, at: &Civil) -> bool {
        let bit = |set: u64, n: u32| set & (1 << n) != 0;
        let day = bit(self.days, at.day);
        let weekday = bit(self.weekdays, at.weekday);
        let day_matches = if self.any_day || self.any_weekday {
            day && weekday
        } else {
            day || weekday
        };
        bit(self.minutes, at.minute)
            && bit(self.hours, at.hour)
            && bit(self.months, at.month)
            && day_matches
    }
}

/// One field: `*`, `?`, `n`, `a-b`, with `/step`, comma-separated; names
/// allowed where given (`names[i]` is `i + offset`).
fn field(text: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Result<u64, String> {
    let value = |part: &str| -> Result<u32, String> {
        let lower = part.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + offset);
        }
        let n: u32 = part
            .parse()
            .map_err(|_| format!("{part:?} is not a value"))?;
        if n < min || n > max {
            return Err(format!("{n} is not in {min}-{max}"));
        }
        Ok(n)
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("{step:?} is not a step"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end.
                None if step > 1 => (value(range)?, max),
                None => {
                    let n = value(range)?;
                    (n, n)
                }
            },
        };
        if low > high {
            return Err(format!("{low}-{high} is empty"));
        }
        for n in (low..=high).step_by(step as usize) {
            set |= 1 << n;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::time::{civil, parse_rfc3339};

    fn at(text: &str) -> Civil {
        civil(parse_rfc3339(text).unwrap())
    }

    #[test]
    fn fields_steps_ranges_and_names() {
        let s = Schedule::parse("*/15 9-17 * * mon-fri").unwrap();
        // 2026-12-03 is a Thursday.
        assert!(s.matches(&at("2026-12-03T09:45:00Z")));
        assert!(!s.matches(&at("2026-12-03T09:44:00Z")));
        assert!(!s.matches(&at("2026-12-03T18:00:00Z")));
        assert!(!s.matches(&at("2026-12-05T10:00:00Z")), "a Saturday");
        let yearly = Schedule::parse("@yearly").unwrap();
        assert!(yearly.matches(&at("2027-01-01T00:00:00Z")));
        assert!(!yearly.matches(&at("2027-01-02T00:00:00Z")));
        let sunday = Schedule::parse("0 0 * * 7").unwrap();
        assert!(sunday.matches(&at("2026-12-06T00:00:00Z")));
        let months = Schedule::parse("30 2 1 JAN,jul ?").unwrap();
        assert!(months.matches(&at("2026-07-01T02:30:00Z")));
        assert!(!months.matches(&at("2026-08-01T02:30:00Z")));
        let offset = Schedule::parse("5/20 * * * *").unwrap();
        assert!(offset.matches(&at("2026-12-03T01:45:00Z")));
        assert!(!offset.matches(&at("2026-12-03T01:40:00Z")));
    }

    #[test]
    fn day_of_month_or_week_when_both_are_restricted() {
        let s = Schedule::parse("0 0 13 * 5").unwrap();
        assert!(s.matches(&at("2026-12-13T00:00:00Z")), "the 13th");
        assert!(s.matches(&at("2026-12-04T00:00:00Z")), "a Friday");
        assert!(!s.matches(&at("2026-12-05T00:00:00Z")));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            Schedule::parse("61 * * * *").unwrap_err(),
            "minute: 61 is not in 0-59"
        );
        assert!(Schedule::parse("* * * *").unwrap_err().contains("5 fields"));
        assert!(
            Schedule::parse("* * * foo *")
                .unwrap_err()
                .starts_with("month")
        );
        assert!(Schedule::parse("@every 5m").is_err());
    }
}
