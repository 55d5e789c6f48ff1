//! Sprig's date functions over [`crate::gotime`]: `now`, `date`,
//! `dateInZone`, `htmlDate`, `htmlDateInZone`, `dateModify`,
//! `mustDateModify`, `ago`, `duration`, `durationRound`, `toDate`,
//! `mustToDate` and `unixEpoch`, with Sprig 3.3's argument rules (a date
//! that is neither a time nor an integer is the current time; a zone that
//! does not load is UTC).

use std::sync::Arc;

use super::{Plain, exactly, string, wrong_type};
use crate::gotime::{
    Location, Time, as_time, format_duration, parse_duration, parse_in_location, round_duration,
};
use crate::value::Value;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("now", now),
    ("date", date),
    ("dateInZone", date_in_zone),
    ("date_in_zone", date_in_zone),
    ("htmlDate", html_date),
    ("htmlDateInZone", html_date_in_zone),
    ("dateModify", date_modify),
    ("date_modify", date_modify),
    ("mustDateModify", must_date_modify),
    ("must_date_modify", must_date_modify),
    ("ago", ago),
    ("duration", duration),
    ("durationRound", duration_round),
    ("toDate", to_date),
    ("mustToDate", must_to_date),
    ("unixEpoch", unix_epoch),
];

/// The functions that may read the clock (see [`reads_clock`]).
pub const CLOCK_FUNCTIONS: [&str; 8] = [
    "now",
    "date",
    "dateInZone",
    "date_in_zone",
    "htmlDate",
    "htmlDateInZone",
    "ago",
    "durationRound",
];

/// Whether calling `function` with `args` reads the clock: `now`, and the
/// functions that fall back to the current time (`date` of a value that is
/// neither a time nor an integer, `ago`, `durationRound` of a time).
pub fn reads_clock(function: &str, args: &[Value]) -> bool {
    let not_a_date = |v: Option<&Value>| {
        !matches!(v, Some(Value::Int(_) | Value::Int64(_))) && v.and_then(as_time).is_none()
    };
    match function {
        "now" => true,
        "date" | "dateInZone" | "date_in_zone" => not_a_date(args.get(1)),
        "htmlDate" | "htmlDateInZone" | "ago" => not_a_date(args.first()),
        "durationRound" => args.first().and_then(as_time).is_some(),
        _ => false,
    }
}

fn time_value(time: Time) -> Value {
    Value::Object(Arc::new(time))
}

/// A `time.Time` parameter.
fn time_arg(value: &Value) -> Result<&Time, String> {
    as_time(value).ok_or_else(|| wrong_type("time.Time", value))
}

/// Sprig's reading of a date argument: a time, an integer (seconds since
/// the epoch), or else the current time.
fn date_of(value: &Value) -> Time {
    match value {
        Value::Int(n) | Value::Int64(n) => Time::unix(*n),
        other => as_time(other).cloned().unwrap_or_else(Time::now),
    }
}

fn format_in_zone(layout: &str, date: &Value, zone: &str) -> Value {
    let location = Location::load(zone).unwrap_or_else(|_| Location::utc());
    Value::string(date_of(date).in_location(location).format(layout))
}

fn now(args: &[Value]) -> Result<Value, String> {
    exactly::<0>("now", args)?;
    Ok(time_value(Time::now()))
}

fn date(args: &[Value]) -> Result<Value, String> {
    let [layout, date] = exactly::<2>("date", args)?;
    Ok(format_in_zone(string(layout)?, date, "Local"))
}

fn date_in_zone(args: &[Value]) -> Result<Value, String> {
    let [layout, date, zone] = exactly::<3>("dateInZone", args)?;
    Ok(format_in_zone(string(layout)?, date, string(zone)?))
}

fn html_date(args: &[Value]) -> Result<Value, String> {
    let [date] = exactly::<1>("htmlDate", args)?;
    Ok(format_in_zone("2006-01-02", date, "Local"))
}

fn html_date_in_zone(args: &[Value]) -> Result<Value, String> {
    let [date, zone] = exactly::<2>("htmlDateInZone", args)?;
    Ok(format_in_zone("2006-01-02", date, string(zone)?))
}

fn date_modify(args: &[Value]) -> Result<Value, String> {
    let [change, date] = exactly::<2>("dateModify", args)?;
    let date = time_arg(date)?;
    Ok(time_value(match parse_duration(string(change)?) {
        Ok(nanos) => date.add(nanos),
        Err(_) => date.clone(),
    }))
}

fn must_date_modify(args: &[Value]) -> Result<Value, String> {
    let [change, date] = exactly::<2>("mustDateModify", args)?;
    let date = time_arg(date)?;
    let nanos = parse_duration(string(change)?)?;
    Ok(time_value(date.add(nanos)))
}

fn ago(args: &[Value]) -> Result<Value, String> {
    let [date] = exactly::<1>("ago", args)?;
    let elapsed = round_duration(date_of(date).since(), 1_000_000_000);
    Ok(Value::string(format_duration(elapsed)))
}

fn duration(args: &[Value]) -> Result<Value, String> {
    let [seconds] = exactly::<1>("duration", args)?;
    let seconds = match seconds {
        Value::String(s) => s.parse::<i64>().unwrap_or(0),
        Value::Int64(n) => *n,
        _ => 0,
    };
    Ok(Value::string(format_duration(
        seconds.wrapping_mul(1_000_000_000),
    )))
}

fn duration_round(args: &[Value]) -> Result<Value, String> {
    const SECOND: i64 = 1_000_000_000;
    const HOUR: i64 = 3600 * SECOND;
    let [value] = exactly::<1>("durationRound", args)?;
    // Helm's Sprig reads an int64 as nanoseconds and any other number
    // (an `int`, a YAML float64) as zero.
    let nanos = match value {
        Value::String(s) => parse_duration(s).unwrap_or(0),
        Value::Int64(n) => *n,
        other => as_time(other).map_or(0, Time::since),
    };
    let d = nanos.wrapping_abs();
    let units = [
        (HOUR * 24 * 365, "y"),
        (HOUR * 24 * 30, "mo"),
        (HOUR * 24, "d"),
        (HOUR, "h"),
        (60 * SECOND, "m"),
        (SECOND, "s"),
    ];
    let text = units.iter().find(|(unit, _)| d > *unit).map_or_else(
        || "0s".to_string(),
        |(unit, name)| format!("{}{name}", d / unit),
    );
    Ok(Value::string(text))
}

fn to_date(args: &[Value]) -> Result<Value, String> {
    let [layout, text] = exactly::<2>("toDate", args)?;
    let parsed = parse_in_location(string(layout)?, string(text)?, &Location::local());
    Ok(time_value(parsed.unwrap_or_else(|_| Time::zero())))
}

fn must_to_date(args: &[Value]) -> Result<Value, String> {
    let [layout, text] = exactly::<2>("mustToDate", args)?;
    let parsed = parse_in_location(string(layout)?, string(text)?, &Location::local())?;
    Ok(time_value(parsed))
}

fn unix_epoch(args: &[Value]) -> Result<Value, String> {
    let [date] = exactly::<1>("unixEpoch", args)?;
    Ok(Value::string(time_arg(date)?.unix_seconds().to_string()))
}

#[cfg(test)]
mod tests {
    use crate::sprig::render_for_test as render;

    #[test]
    fn dates_format_parse_and_modify_as_sprig_does() {
        let cases = [
            (
                r#"{{ dateInZone "2006-01-02 15:04" 1234567890 "UTC" }}"#,
                "2009-02-13 23:31",
            ),
            (r#"{{ dateInZone "15:04 MST" 0 "UTC" }}"#, "00:00 UTC"),
            (
                r#"{{ dateInZone "15:04 MST" 0 "No/Such_Zone" }}"#,
                "00:00 UTC",
            ),
            (r#"{{ htmlDateInZone 86400 "UTC" }}"#, "1970-01-02"),
            (
                r#"{{ dateInZone "Jan 2, 2006" (toDate "2006-01-02" "2017-12-31") "Local" }}"#,
                "Dec 31, 2017",
            ),
            (
                r#"{{ toDate "2006-01-02 MST" "2017-12-31 UTC" | dateModify "36h" | unixEpoch }}"#,
                "1514808000",
            ),
            (
                r#"{{ toDate "2006-01-02Z07:00" "2017-12-31Z" | dateModify "nonsense" | unixEpoch }}"#,
                "1514678400",
            ),
            (
                r#"{{ toDate "2006" "x" }}"#,
                "0001-01-01 00:00:00 +0000 UTC",
            ),
            (r#"{{ (toDate "2006-01-02" "2017-12-31").Year }}"#, "2017"),
            (r#"{{ duration "95" }} {{ duration 95 }}"#, "1m35s 0s"),
            (
                r#"{{ durationRound "2h10m5s" }} {{ durationRound (int64 3000000000000000) }} {{ durationRound 5 }} {{ durationRound "bad" }}"#,
                "2h 1mo 0s 0s",
            ),
            (r#"{{ ago (now) }}"#, "0s"),
            (
                r#"{{ toDate "2006-01-02 MST" "2017-12-31 UTC" | toJson }}"#,
                r#""2017-12-31T00:00:00Z""#,
            ),
            (r#"{{ now | date "2006" | len }}"#, "4"),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template).unwrap(), expected, "{template}");
        }
        assert_eq!(
            render(r#"{{ mustToDate "2006-01-02" "2017-13-01" }}"#).unwrap_err(),
            "template: t:1:3: executing \"t\" at <mustToDate \"2006-01-02\" \"2017-13-01\">: error calling mustToDate: parsing time \"2017-13-01\": month out of range"
        );
        assert!(
            render(r#"{{ unixEpoch "2017" }}"#)
                .unwrap_err()
                .ends_with("wrong type for value; expected time.Time; got string"),
        );
        assert!(render("{{ now }}").unwrap().contains(" m=+"));
    }
}
