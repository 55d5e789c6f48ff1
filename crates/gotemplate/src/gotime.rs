//! What Sprig's date functions need of Go's `time` package: an instant in a
//! location ([`Time`]), locations read from the system's zoneinfo as
//! `time.LoadLocation` reads them, Go's layouts (`2006-01-02 15:04:05`) to
//! format and parse, and durations as `time.Duration` prints and parses
//! them.

use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gitplane_object::time::{civil_from_days, days_from_civil};

use crate::value::{GoObject, Value};

const NANOS: i64 = 1_000_000_000;
/// Seconds from 0001-01-01 to 1970-01-01 (Go's zero time is the former).
const ZERO_TIME_SECS: i64 = -62_135_596_800;
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A time zone as `time.Location` holds it: its zones and when each began.
#[derive(Debug)]
pub struct Location {
    name: String,
    zones: Vec<Zone>,
    /// (Unix second, index into `zones`), in time order.
    transitions: Vec<(i64, usize)>,
}

#[derive(Debug, Clone)]
struct Zone {
    abbreviation: String,
    offset: i32,
    dst: bool,
}

static UTC: LazyLock<Arc<Location>> = LazyLock::new(|| Arc::new(Location::fixed("UTC", "UTC", 0)));
static LOCAL: LazyLock<Arc<Location>> = LazyLock::new(local);
/// When this process started, for the monotonic reading `now` carries.
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Location {
    fn fixed(name: &str, abbreviation: &str, offset: i32) -> Location {
        Location {
            name: name.to_string(),
            zones: vec![Zone {
                abbreviation: abbreviation.to_string(),
                offset,
                dst: false,
            }],
            transitions: Vec::new(),
        }
    }

    /// Go's `time.FixedZone(name, offset)`: always `offset` seconds east
    /// of UTC, its abbreviation `name`.
    pub fn fixed_zone(name: &str, offset: i32) -> Arc<Location> {
        Arc::new(Location::fixed(name, name, offset))
    }

    /// UTC.
    pub fn utc() -> Arc<Location> {
        UTC.clone()
    }

    /// Go's `time.Local`: `$TZ` (unset: `/etc/localtime`; empty: UTC), UTC
    /// when it cannot be read.
    pub fn local() -> Arc<Location> {
        LOCAL.clone()
    }

    /// `time.LoadLocation`: `""` and `UTC` are UTC, `Local` is local, any
    /// other name a zoneinfo file (`$ZONEINFO`, then the system's
    /// directories). Names with `..` or starting with a slash are refused,
    /// as Go refuses them.
    pub fn load(name: &str) -> Result<Arc<Location>, String> {
        match name {
            "" | "UTC" => return Ok(Location::utc()),
            "Local" => return Ok(Location::local()),
            _ => {}
        }
        let escapes = name.starts_with('/')
            || name.starts_with('\\')
            || name.split(['/', '\\']).any(|part| part == "..");
        if escapes {
            return Err(format!("time: invalid location name {name:?}"));
        }
        let dirs = std::env::var("ZONEINFO").into_iter().chain(
            [
                "/usr/share/zoneinfo",
                "/usr/share/lib/zoneinfo",
                "/usr/lib/locale/TZ",
                "/etc/zoneinfo",
            ]
            .map(String::from),
        );
        for dir in dirs {
            if let Some(location) = read_zoneinfo(&Path::new(&dir).join(name), name) {
                return Ok(Arc::new(location));
            }
        }
        Err(format!("unknown time zone {name}"))
    }

    /// The zone in effect at `secs` (Go's `lookup`; before the first
    /// transition, the first standard zone).
    fn zone_at(&self, secs: i64) -> &Zone {
        let first_standard = || self.zones.iter().find(|z| !z.dst).unwrap_or(&self.zones[0]);
        match self.transitions.partition_point(|(at, _)| *at <= secs) {
            0 => first_standard(),
            n => &self.zones[self.transitions[n - 1].1],
        }
    }
}

/// `time.Local` as Go sets it up.
fn local() -> Arc<Location> {
    let from_file = |path: &Path| read_zoneinfo(path, "Local").map(Arc::new);
    let found = match std::env::var("TZ") {
        Err(_) => from_file(Path::new("/etc/localtime")),
        Ok(tz) if tz.is_empty() || tz == "UTC" => None,
        Ok(tz) => {
            let tz = tz.strip_prefix(':').unwrap_or(&tz).to_string();
            if tz.starts_with('/') {
                from_file(Path::new(&tz))
            } else {
                Location::load(&tz).ok().map(|l| {
                    Arc::new(Location {
                        name: "Local".into(),
                        zones: l.zones.clone(),
                        transitions: l.transitions.clone(),
                    })
                })
            }
        }
    };
    found.unwrap_or_else(Location::utc)
}

/// A TZif file (RFC 8536) as a location; `None` when it is not one.
fn read_zoneinfo(path: &Path, name: &str) -> Option<Location> {
    const MAX: u64 = 1 << 20;
    if std::fs::metadata(path).ok()?.len() > MAX {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    parse_tzif(&bytes, name)
}

/// Reads TZif data: the 64-bit block when the file has one.
fn parse_tzif(bytes: &[u8], name: &str) -> Option<Location> {
    let header = |at: usize| -> Option<[usize; 6]> {
        if bytes.get(at..at + 4)? != b"TZif" {
            return None;
        }
        let mut counts = [0; 6];
        for (i, count) in counts.iter_mut().enumerate() {
            let field = bytes.get(at + 20 + 4 * i..at + 24 + 4 * i)?;
            *count = u32::from_be_bytes(field.try_into().ok()?) as usize;
        }
        Some(counts)
    };
    let block_len = |c: [usize; 6], time_size: usize| {
        let [isut, isstd, leap, time, types, chars] = c;
        time * time_size + time + types * 6 + chars + leap * (time_size + 4) + isstd + isut
    };
    let first = header(0)?;
    let version = *bytes.get(4)?;
    let (counts, start, time_size) = if version >= b'2' {
        let second = 44 + block_len(first, 4);
        (header(second)?, second + 44, 8)
    } else {
        (first, 44, 4)
    };
    let [_, _, _, time_count, type_count, char_count] = counts;
    let data = bytes.get(start..start + block_len(counts, time_size))?;
    let times = &data[..time_count * time_size];
    let indices = &data[time_count * time_size..time_count * (time_size + 1)];
    let types_at = time_count * (time_size + 1);
    let types = &data[types_at..types_at + type_count * 6];
    let chars = &data[types_at + type_count * 6..types_at + type_count * 6 + char_count];
    let zones = types
        .chunks(6)
        .map(|t| {
            let offset = i32::from_be_bytes([t[0], t[1], t[2], t[3]]);
            let from = usize::from(t[5]).min(chars.len());
            let end = chars[from..]
                .iter()
                .position(|c| *c == 0)
                .map_or(chars.len(), |n| from + n);
            Zone {
                abbreviation: String::from_utf8_lossy(&chars[from..end]).into_owned(),
                offset,
                dst: t[4] != 0,
            }
        })
        .collect::<Vec<_>>();
    if zones.is_empty() {
        return None;
    }
    let transitions = times
        .chunks(time_size)
        .zip(indices)
        .map(|(at, index)| {
            let at = match time_size {
                8 => i64::from_be_bytes(at.try_into().unwrap_or_default()),
                _ => i64::from(i32::from_be_bytes(at.try_into().unwrap_or_default())),
            };
            (at, usize::from(*index).min(zones.len() - 1))
        })
        .collect();
    Some(Location {
        name: name.to_string(),
        zones,
        transitions,
    })
}

/// An instant in a location, as `time.Time` (with the monotonic clock
/// reading `time.Now` gives, which only printing shows).
#[derive(Debug, Clone)]
pub struct Time {
    secs: i64,
    nanos: u32,
    location: Arc<Location>,
    monotonic: Option<i64>,
}

/// A date and time of day in one zone.
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    year_day: i64,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Time {
    /// `time.Now()`, in the local location.
    pub fn now() -> Time {
        let started = *STARTED;
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let monotonic = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        Time {
            secs: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            nanos: since_epoch.subsec_nanos(),
            location: Location::local(),
            monotonic: Some(monotonic),
        }
    }

    /// `time.Unix(secs, 0)`, in the local location.
    pub fn unix(secs: i64) -> Time {
        Time {
            secs,
            nanos: 0,
            location: Location::local(),
            monotonic: None,
        }
    }

    /// Go's `time.Date` of `[year, month, day]` and `[hour, minute,
    /// second]` in a location of one offset (no normalization: the parts
    /// must be a valid date and time).
    pub fn date(date: [i64; 3], clock: [i64; 3], nanos: u32, location: Arc<Location>) -> Time {
        let [year, month, day] = date;
        let [hour, minute, second] = clock;
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        let offset = i64::from(location.zone_at(local).offset);
        Time {
            secs: local - offset,
            nanos,
            location,
            monotonic: None,
        }
    }

    /// Go's zero time (`0001-01-01 00:00:00 +0000 UTC`).
    pub fn zero() -> Time {
        Time {
            secs: ZERO_TIME_SECS,
            nanos: 0,
            location: Location::utc(),
            monotonic: None,
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds since the Unix epoch (Go's `UnixNano`, wrapping as Go's
    /// does outside its range).
    fn unix_nanos(&self) -> i64 {
        self.secs
            .wrapping_mul(NANOS)
            .wrapping_add(i64::from(self.nanos))
    }

    /// `t.In(loc)` (which drops the monotonic reading, as Go's does).
    pub fn in_location(&self, location: Arc<Location>) -> Time {
        Time {
            location,
            monotonic: None,
            ..self.clone()
        }
    }

    /// `t.Add(d)`.
    pub fn add(&self, nanos: i64) -> Time {
        let total = i128::from(self.nanos) + i128::from(nanos % NANOS);
        let carry = total.div_euclid(i128::from(NANOS)) as i64;
        Time {
            secs: self
                .secs
                .saturating_add(nanos / NANOS)
                .saturating_add(carry),
            nanos: total.rem_euclid(i128::from(NANOS)) as u32,
            location: self.location.clone(),
            monotonic: self.monotonic.map(|m| m.saturating_add(nanos)),
        }
    }

    /// The time elapsed since `self` (`time.Since`), in nanoseconds,
    /// saturating as Go's `Sub` does.
    pub fn since(&self) -> i64 {
        let now = Time::now();
        let secs = i128::from(now.secs) - i128::from(self.secs);
        let nanos = secs * i128::from(NANOS) + i128::from(now.nanos) - i128::from(self.nanos);
        nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    fn zone(&self) -> &Zone {
        self.location.zone_at(self.secs)
    }

    fn civil(&self) -> Civil {
        let local = self.secs + i64::from(self.zone().offset);
        let days = local.div_euclid(86_400);
        let seconds = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month: month as usize,
            day: i64::from(day),
            year_day: days - days_from_civil(year, 1, 1) + 1,
            weekday: (days + 4).rem_euclid(7) as usize,
            hour: seconds / 3600,
            minute: seconds % 3600 / 60,
            second: seconds % 60,
        }
    }

    /// `t.Format(layout)`.
    pub fn format(&self, layout: &str) -> String {
        let civil = self.civil();
        let zone = self.zone();
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, chunk, suffix) = next_chunk(rest);
            out.push_str(prefix);
            if let Some(chunk) = chunk {
                self.format_chunk(&mut out, chunk, &civil, zone);
            }
            rest = suffix;
        }
        out
    }

    fn format_chunk(&self, out: &mut String, chunk: Chunk, c: &Civil, zone: &Zone) {
        let pad = |out: &mut String, n: i64, width: usize| {
            if n < 0 {
                out.push('-');
            }
            out.push_str(&format!("{:0width$}", n.unsigned_abs()));
        };
        match chunk {
            Chunk::Year => pad(out, c.year.rem_euclid(100), 2),
            Chunk::LongYear => pad(out, c.year, 4),
            Chunk::Month => out.push_str(&MONTHS[c.month - 1][..3]),
            Chunk::LongMonth => out.push_str(MONTHS[c.month - 1]),
            Chunk::NumMonth => pad(out, c.month as i64, 0),
            Chunk::ZeroMonth => pad(out, c.month as i64, 2),
            Chunk::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
            Chunk::LongWeekDay => out.push_str(DAYS[c.weekday]),
            Chunk::Day => pad(out, c.day, 0),
            Chunk::UnderDay => out.push_str(&format!("{:>2}", c.day)),
            Chunk::ZeroDay => pad(out, c.day, 2),
            Chunk::UnderYearDay => out.push_str(&format!("{:>3}", c.year_day)),
            Chunk::ZeroYearDay => pad(out, c.year_day, 3),
            Chunk::Hour => pad(out, c.hour, 2),
            Chunk::Hour12 => pad(out, twelve_hour(c.hour), 0),
            Chunk::ZeroHour12 => pad(out, twelve_hour(c.hour), 2),
            Chunk::Minute => pad(out, c.minute, 0),
            Chunk::ZeroMinute => pad(out, c.minute, 2),
            Chunk::Second => pad(out, c.second, 0),
            Chunk::ZeroSecond => pad(out, c.second, 2),
            Chunk::Pm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Chunk::LowerPm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Chunk::ZoneName if !zone.abbreviation.is_empty() => {
                out.push_str(&zone.abbreviation);
            }
            Chunk::ZoneName => format_offset(out, zone.offset, ZoneStyle::plain(false, false)),
            Chunk::Offset(style) => format_offset(out, zone.offset, style),
            Chunk::Fraction {
                separator,
                digits,
                trim,
            } => format_fraction(out, self.nanos, separator, digits, trim),
        }
    }
}

fn twelve_hour(hour: i64) -> i64 {
    match hour % 12 {
        0 => 12,
        h => h,
    }
}

/// A numeric zone offset: `Z` for UTC in the ISO 8601 styles, else a sign,
/// hours, then minutes and seconds as the style has them.
fn format_offset(out: &mut String, offset: i32, style: ZoneStyle) {
    if offset == 0 && style.iso {
        out.push('Z');
        return;
    }
    let minutes = offset / 60;
    out.push(if minutes < 0 { '-' } else { '+' });
    let (minutes, seconds) = (minutes.abs(), offset.abs() % 60);
    out.push_str(&format!("{:02}", minutes / 60));
    if style.colon {
        out.push(':');
    }
    if !style.short {
        out.push_str(&format!("{:02}", minutes % 60));
    }
    if style.seconds {
        if style.colon {
            out.push(':');
        }
        out.push_str(&format!("{seconds:02}"));
    }
}

/// Go's `appendNano`: `digits` digits of the second's fraction (cut, not
/// rounded); the `9` styles drop trailing zeros, and everything for a whole
/// second.
fn format_fraction(out: &mut String, nanos: u32, separator: char, digits: usize, trim: bool) {
    if trim && (digits == 0 || nanos == 0) {
        return;
    }
    let all = format!("{nanos:09}");
    let mut fraction = &all[..digits.min(9)];
    if trim {
        fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            return;
        }
    }
    out.push(separator);
    out.push_str(fraction);
}

impl GoObject for Time {
    fn type_name(&self) -> &str {
        "time.Time"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let civil = || self.civil();
        let value = match (name, args) {
            ("Format", [Value::String(layout)]) => Value::string(self.format(layout)),
            ("Format", _) => return Some(Err("wrong number of args for Format: want 1".into())),
            ("String", []) => Value::string(self.print()),
            ("Unix", []) => Value::Int64(self.secs),
            ("UnixMilli", []) => Value::Int64(self.unix_nanos() / 1_000_000),
            ("UnixNano", []) => Value::Int64(self.unix_nanos()),
            ("Year", []) => Value::Int(civil().year),
            ("Month", []) => Value::string(MONTHS[civil().month - 1]),
            ("Day", []) => Value::Int(civil().day),
            ("YearDay", []) => Value::Int(civil().year_day),
            ("Weekday", []) => Value::string(DAYS[civil().weekday]),
            ("Hour", []) => Value::Int(civil().hour),
            ("Minute", []) => Value::Int(civil().minute),
            ("Second", []) => Value::Int(civil().second),
            ("Nanosecond", []) => Value::Int(i64::from(self.nanos)),
            ("Location", []) => Value::string(self.location.name.as_str()),
            ("IsZero", []) => Value::Bool(self.secs == ZERO_TIME_SECS && self.nanos == 0),
            ("UTC", []) => Value::Object(Arc::new(self.in_location(Location::utc()))),
            ("Local", []) => Value::Object(Arc::new(self.in_location(Location::local()))),
            _ => return None,
        };
        Some(Ok(value))
    }

    /// `Time.String()`: the instant, its zone, and the monotonic reading
    /// when it has one (`m=+0.001234567`).
    fn print(&self) -> String {
        let mut text = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if let Some(m) = self.monotonic {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            text.push_str(&format!(
                " m={sign}{}.{:09}",
                m / 1_000_000_000,
                m % 1_000_000_000
            ));
        }
        text
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    /// `Time.MarshalJSON`: RFC 3339 with nanoseconds.
    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(
            self.format("2006-01-02T15:04:05.999999999Z07:00"),
        ))
    }
}

/// The time inside a value, if it holds one.
pub fn as_time(value: &Value) -> Option<&Time> {
    match value {
        Value::Object(o) => o.as_any()?.downcast_ref::<Time>(),
        _ => None,
    }
}

/// How a numeric zone offset is written.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ZoneStyle {
    /// `Z07…`: `Z` for UTC.
    iso: bool,
    colon: bool,
    /// Hours only (`-07`).
    short: bool,
    seconds: bool,
}

impl ZoneStyle {
    const fn plain(colon: bool, seconds: bool) -> ZoneStyle {
        ZoneStyle {
            iso: false,
            colon,
            short: false,
            seconds,
        }
    }
}

/// One element of a layout (Go's `std…` constants).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    ZoneName,
    Offset(ZoneStyle),
    Fraction {
        separator: char,
        digits: usize,
        trim: bool,
    },
}

/// Go's `nextStdChunk`: the text before the layout's first element, the
/// element, and the text after it.
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    let lower_next = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found =
            |chunk: Chunk, len: usize| Some((&layout[..i], Some(chunk), &layout[i + len..]));
        let hit = match b[i] {
            b'J' if at(i, "January") => found(Chunk::LongMonth, 7),
            b'J' if at(i, "Jan") && !lower_next(i + 3) => found(Chunk::Month, 3),
            b'M' if at(i, "Monday") => found(Chunk::LongWeekDay, 6),
            b'M' if at(i, "Mon") && !lower_next(i + 3) => found(Chunk::WeekDay, 3),
            b'M' if at(i, "MST") => found(Chunk::ZoneName, 3),
            b'0' if b.get(i + 1).is_some_and(|c| (b'1'..=b'6').contains(c)) => {
                let chunk = [
                    Chunk::ZeroMonth,
                    Chunk::ZeroDay,
                    Chunk::ZeroHour12,
                    Chunk::ZeroMinute,
                    Chunk::ZeroSecond,
                    Chunk::Year,
                ][usize::from(b[i + 1] - b'1')];
                found(chunk, 2)
            }
            b'0' if at(i, "002") => found(Chunk::ZeroYearDay, 3),
            b'1' if at(i, "15") => found(Chunk::Hour, 2),
            b'1' => found(Chunk::NumMonth, 1),
            b'2' if at(i, "2006") => found(Chunk::LongYear, 4),
            b'2' => found(Chunk::Day, 1),
            // `_2006` is a literal `_` and the year.
            b'_' if at(i, "_2006") => {
                Some((&layout[..=i], Some(Chunk::LongYear), &layout[i + 5..]))
            }
            b'_' if at(i, "_2") => found(Chunk::UnderDay, 2),
            b'_' if at(i, "__2") => found(Chunk::UnderYearDay, 3),
            b'3' => found(Chunk::Hour12, 1),
            b'4' => found(Chunk::Minute, 1),
            b'5' => found(Chunk::Second, 1),
            b'P' if at(i, "PM") => found(Chunk::Pm, 2),
            b'p' if at(i, "pm") => found(Chunk::LowerPm, 2),
            b'-' | b'Z' => offset_chunk(&layout[i..])
                .map(|(style, len)| (&layout[..i], Some(Chunk::Offset(style)), &layout[i + len..])),
            c @ (b'.' | b',') if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let digit = b[i + 1];
                let end = (i + 1..b.len()).find(|&j| b[j] != digit).unwrap_or(b.len());
                if b.get(end).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    let chunk = Chunk::Fraction {
                        separator: char::from(c),
                        digits: end - i - 1,
                        trim: digit == b'9',
                    };
                    found(chunk, end - i)
                }
            }
            _ => None,
        };
        if let Some(hit) = hit {
            return hit;
        }
    }
    (layout, None, "")
}

/// A numeric zone element at the start of `rest` (`-0700`, `Z07:00`, …).
fn offset_chunk(rest: &str) -> Option<(ZoneStyle, usize)> {
    let iso = rest.starts_with('Z');
    let body = &rest[1..];
    let forms: [(&str, bool, bool, bool); 5] = [
        ("070000", false, false, true),
        ("07:00:00", true, false, true),
        ("0700", false, false, false),
        ("07:00", true, false, false),
        ("07", false, true, false),
    ];
    forms.iter().find_map(|(form, colon, short, seconds)| {
        body.starts_with(form).then_some((
            ZoneStyle {
                iso,
                colon: *colon,
                short: *short,
                seconds: *seconds,
            },
            1 + form.len(),
        ))
    })
}

/// `time.ParseInLocation(layout, value, location)`, with Go's errors.
pub fn parse_in_location(
    layout: &str,
    value: &str,
    location: &Arc<Location>,
) -> Result<Time, String> {
    let cannot = |element: &str, rest: &str| {
        format!("parsing time {value:?} as {layout:?}: cannot parse {rest:?} as {element:?}")
    };
    let mut fields = Parsed::default();
    let (mut layout_rest, mut rest) = (layout, value);
    loop {
        let (prefix, chunk, suffix) = next_chunk(layout_rest);
        let element = &layout_rest[prefix.len()..layout_rest.len() - suffix.len()];
        rest = skip_prefix(prefix, rest).ok_or_else(|| cannot(prefix, rest))?;
        let Some(chunk) = chunk else {
            if !rest.is_empty() {
                return Err(format!("parsing time {value:?}: extra text: {rest:?}"));
            }
            break;
        };
        fields.fraction_follows = matches!(next_chunk(suffix).1, Some(Chunk::Fraction { .. }));
        rest = match fields.read(chunk, rest) {
            Ok(after) => after,
            Err(Unread::Syntax) => return Err(cannot(element, rest)),
            Err(Unread::Range(what)) => {
                return Err(format!("parsing time {value:?}: {what} out of range"));
            }
        };
        layout_rest = suffix;
    }
    fields
        .into_time(location)
        .map_err(|what| format!("parsing time {value:?}: {what} out of range"))
}

/// A layout's literal text at the start of `value` (spaces match runs of
/// spaces, as Go's `skip` lets them).
fn skip_prefix<'v>(mut prefix: &str, mut value: &'v str) -> Option<&'v str> {
    while let Some(c) = prefix.chars().next() {
        if c == ' ' {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        value = value.strip_prefix(c)?;
        prefix = &prefix[c.len_utf8()..];
    }
    Some(value)
}

/// Why an element could not be read.
enum Unread {
    /// The text is not the element.
    Syntax,
    /// A number out of its range (`month`, `hour`…).
    Range(&'static str),
}

/// What a parse has read so far.
#[derive(Default)]
struct Parsed {
    year: i64,
    month: Option<i64>,
    day: Option<i64>,
    year_day: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: u32,
    pm: Option<bool>,
    offset: Option<i32>,
    utc: bool,
    zone_name: Option<String>,
    /// The layout's next element is a fraction of a second.
    fraction_follows: bool,
}

/// Go's `getnum`: one or two digits (two when `fixed`).
fn two_digits(value: &str, fixed: bool) -> Result<(i64, &str), Unread> {
    let b = value.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Err(Unread::Syntax);
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        return if fixed {
            Err(Unread::Syntax)
        } else {
            Ok((i64::from(b[0] - b'0'), &value[1..]))
        };
    }
    Ok((
        i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'),
        &value[2..],
    ))
}

/// A number read, or a range error naming `what`.
fn within<'v>(
    read: (i64, &'v str),
    low: i64,
    high: i64,
    what: &'static str,
) -> Result<(i64, &'v str), Unread> {
    if (low..=high).contains(&read.0) {
        Ok(read)
    } else {
        Err(Unread::Range(what))
    }
}

/// The name in `names` (or its first three letters) at the start of
/// `value`, ignoring ASCII case: its index and what follows.
fn read_name<'v>(value: &'v str, names: &[&str], short: bool) -> Result<(usize, &'v str), Unread> {
    names
        .iter()
        .enumerate()
        .find_map(|(i, name)| {
            let name = if short { &name[..3] } else { name };
            let head = value.get(..name.len())?;
            head.eq_ignore_ascii_case(name)
                .then(|| (i, &value[name.len()..]))
        })
        .ok_or(Unread::Syntax)
}

impl Parsed {
    /// Reads one element at the start of `value`; what follows it.
    fn read<'v>(&mut self, chunk: Chunk, value: &'v str) -> Result<&'v str, Unread> {
        let rest = match chunk {
            Chunk::LongYear => {
                let digits = value
                    .get(..4)
                    .filter(|d| d.bytes().all(|c| c.is_ascii_digit()));
                self.year = digits.and_then(|d| d.parse().ok()).ok_or(Unread::Syntax)?;
                &value[4..]
            }
            Chunk::Year => {
                let digits = value
                    .get(..2)
                    .filter(|d| d.bytes().all(|c| c.is_ascii_digit()));
                let n: i64 = digits.and_then(|d| d.parse().ok()).ok_or(Unread::Syntax)?;
                self.year = if n >= 69 { n + 1900 } else { n + 2000 };
                &value[2..]
            }
            Chunk::Month | Chunk::LongMonth => {
                let (index, rest) = read_name(value, &MONTHS, chunk == Chunk::Month)?;
                self.month = Some(index as i64 + 1);
                rest
            }
            Chunk::NumMonth | Chunk::ZeroMonth => {
                let read = two_digits(value, chunk == Chunk::ZeroMonth)?;
                let (n, rest) = within(read, 1, 12, "month")?;
                self.month = Some(n);
                rest
            }
            Chunk::WeekDay | Chunk::LongWeekDay => {
                read_name(value, &DAYS, chunk == Chunk::WeekDay)?.1
            }
            Chunk::Day | Chunk::UnderDay | Chunk::ZeroDay => {
                let value = match chunk {
                    Chunk::UnderDay => value.strip_prefix(' ').unwrap_or(value),
                    _ => value,
                };
                let (n, rest) = two_digits(value, chunk == Chunk::ZeroDay)?;
                self.day = Some(n);
                rest
            }
            Chunk::UnderYearDay | Chunk::ZeroYearDay => {
                let value = value.trim_start_matches(' ');
                let digits = value.bytes().take(3).take_while(u8::is_ascii_digit).count();
                let fixed = chunk == Chunk::ZeroYearDay;
                if digits == 0 || (fixed && digits < 3) {
                    return Err(Unread::Syntax);
                }
                let n = value[..digits].parse().map_err(|_| Unread::Syntax)?;
                let (n, rest) = within((n, &value[digits..]), 1, 365, "day-of-year")?;
                self.year_day = Some(n);
                rest
            }
            Chunk::Hour => {
                let (n, rest) = within(two_digits(value, false)?, 0, 23, "hour")?;
                self.hour = n;
                rest
            }
            Chunk::Hour12 | Chunk::ZeroHour12 => {
                let read = two_digits(value, chunk == Chunk::ZeroHour12)?;
                let (n, rest) = within(read, 0, 12, "hour")?;
                self.hour = n;
                rest
            }
            Chunk::Minute | Chunk::ZeroMinute => {
                let read = two_digits(value, chunk == Chunk::ZeroMinute)?;
                let (n, rest) = within(read, 0, 59, "minute")?;
                self.minute = n;
                rest
            }
            Chunk::Second | Chunk::ZeroSecond => {
                let read = two_digits(value, chunk == Chunk::ZeroSecond)?;
                let (n, rest) = within(read, 0, 59, "second")?;
                self.second = n;
                self.fraction_without_layout(rest)
            }
            Chunk::Fraction { digits, trim, .. } => self.fraction(value, digits, trim)?,
            Chunk::Pm | Chunk::LowerPm => {
                let (am, pm) = if chunk == Chunk::Pm {
                    ("AM", "PM")
                } else {
                    ("am", "pm")
                };
                let word = value.get(..2).ok_or(Unread::Syntax)?;
                self.pm = Some(match word {
                    w if w == pm => true,
                    w if w == am => false,
                    _ => return Err(Unread::Syntax),
                });
                &value[2..]
            }
            Chunk::Offset(style) => {
                if style.iso && value.starts_with('Z') {
                    self.utc = true;
                    &value[1..]
                } else {
                    let (offset, rest) = read_offset(value, style).ok_or(Unread::Syntax)?;
                    self.offset = Some(offset);
                    rest
                }
            }
            Chunk::ZoneName => {
                if let Some(rest) = value.strip_prefix("UTC") {
                    self.utc = true;
                    rest
                } else {
                    let len = value.bytes().take_while(u8::is_ascii_uppercase).count();
                    if !(3..=5).contains(&len) {
                        return Err(Unread::Syntax);
                    }
                    self.zone_name = Some(value[..len].to_string());
                    &value[len..]
                }
            }
        };
        Ok(rest)
    }

    /// A fraction after the seconds that the layout does not name: read
    /// anyway, as Go reads it.
    fn fraction_without_layout<'v>(&mut self, value: &'v str) -> &'v str {
        let b = value.as_bytes();
        let starts =
            matches!(b.first(), Some(b'.' | b',')) && b.get(1).is_some_and(u8::is_ascii_digit);
        if self.fraction_follows || !starts {
            return value;
        }
        let digits = value[1..].bytes().take_while(u8::is_ascii_digit).count();
        self.nanos = fraction_nanos(&value[1..=digits]);
        &value[1 + digits..]
    }

    /// `.000` (exactly that many digits) or `.999` (any, or none).
    fn fraction<'v>(
        &mut self,
        value: &'v str,
        digits: usize,
        trim: bool,
    ) -> Result<&'v str, Unread> {
        let b = value.as_bytes();
        let starts = matches!(b.first(), Some(b'.' | b','));
        if trim {
            if !(starts && b.get(1).is_some_and(u8::is_ascii_digit)) {
                return Ok(value);
            }
            let n = value[1..]
                .bytes()
                .take(9)
                .take_while(u8::is_ascii_digit)
                .count();
            self.nanos = fraction_nanos(&value[1..=n]);
            return Ok(&value[1 + n..]);
        }
        let all_digits = value
            .get(1..=digits)
            .is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit()));
        if !starts || !all_digits {
            return Err(Unread::Syntax);
        }
        self.nanos = fraction_nanos(&value[1..=digits]);
        Ok(&value[1 + digits..])
    }

    /// The instant read, in `location` unless a zone was; `Err(what)` for
    /// a date that does not exist.
    fn into_time(self, location: &Arc<Location>) -> Result<Time, &'static str> {
        let mut hour = self.hour;
        match self.pm {
            Some(true) if hour < 12 => hour += 12,
            Some(false) if hour == 12 => hour = 0,
            _ => {}
        }
        let year = self.year;
        let (month, day) = match self.year_day {
            Some(year_day) => {
                let (_, month, day) = civil_from_days(days_from_civil(year, 1, 1) + year_day - 1);
                (i64::from(month), i64::from(day))
            }
            None => (self.month.unwrap_or(1), self.day.unwrap_or(1)),
        };
        if day < 1 || day > days_in_month(year, month) {
            return Err("day");
        }
        let local = days_from_civil(year, month, day) * 86_400
            + hour * 3600
            + self.minute * 60
            + self.second;
        let with = |secs: i64, location: Arc<Location>| Time {
            secs,
            nanos: self.nanos,
            location,
            monotonic: None,
        };
        if self.utc {
            return Ok(with(local, Location::utc()));
        }
        if let Some(offset) = self.offset {
            let secs = local - i64::from(offset);
            let location = if location.zone_at(secs).offset == offset {
                location.clone()
            } else {
                Arc::new(Location::fixed("", "", offset))
            };
            return Ok(with(secs, location));
        }
        if let Some(name) = &self.zone_name {
            // An abbreviation the location uses there gives its offset;
            // another is kept with offset zero, as Go keeps it.
            let zone = location.zone_at(local);
            if zone.abbreviation == *name {
                return Ok(with(local - i64::from(zone.offset), location.clone()));
            }
            return Ok(with(local, Arc::new(Location::fixed(name, name, 0))));
        }
        // Go's Date: the offset in effect at the local time.
        let first = local - i64::from(location.zone_at(local).offset);
        let secs = local - i64::from(location.zone_at(first).offset);
        Ok(with(secs, location.clone()))
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    next - days_from_civil(year, month, 1)
}

/// Nanoseconds of a fraction's digits (`5` is half a second).
fn fraction_nanos(digits: &str) -> u32 {
    let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
    padded.parse().unwrap_or(0)
}

/// A numeric offset (`+01:00`…); seconds east of UTC.
fn read_offset(value: &str, style: ZoneStyle) -> Option<(i32, &str)> {
    let sign = match value.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut rest = &value[1..];
    let two = |rest: &mut &str| -> Option<i32> {
        let n = rest.get(..2)?.parse::<i32>().ok()?;
        *rest = &rest[2..];
        Some(n)
    };
    let hours = two(&mut rest)?;
    let mut minutes = 0;
    let mut seconds = 0;
    if !style.short {
        if style.colon {
            rest = rest.strip_prefix(':')?;
        }
        minutes = two(&mut rest)?;
    }
    if style.seconds {
        if style.colon {
            rest = rest.strip_prefix(':')?;
        }
        seconds = two(&mut rest)?;
    }
    Some((sign * (hours * 3600 + minutes * 60 + seconds), rest))
}

/// `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    let fraction = |u: u64, precision: u32| -> (String, u64) {
        let scale = 10u64.pow(precision);
        let digits = format!("{:0width$}", u % scale, width = precision as usize);
        let digits = digits.trim_end_matches('0');
        let text = if digits.is_empty() {
            String::new()
        } else {
            format!(".{digits}")
        };
        (text, u / scale)
    };
    if u < 1_000_000_000 {
        let (unit, precision) = match u {
            0 => return "0s".into(),
            1..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (frac, whole) = fraction(u, precision);
        out = format!("{whole}{frac}{unit}");
    } else {
        let (frac, whole_seconds) = fraction(u, 9);
        u = whole_seconds;
        let seconds = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            let minutes = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&seconds);
    }
    if nanos < 0 {
        out.insert(0, '-');
    }
    out
}

/// `time.ParseDuration`, with Go's errors.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole: u128 = if whole_len == 0 {
            0
        } else {
            rest[..whole_len].parse().map_err(|_| invalid())?
        };
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix('.') {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after[..len];
            rest = &after[len..];
        }
        if whole_len == 0 && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            value += u128::from(digit - b'0') * place;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > 1u128 << 63 {
            return Err(invalid());
        }
    }
    match (negative, i64::try_from(total)) {
        (true, _) => Ok((total as i128).wrapping_neg() as i64),
        (false, Ok(n)) => Ok(n),
        (false, Err(_)) => Err(invalid()),
    }
}

/// `d.Round(m)`: to the nearest multiple of `m`, halves away from zero.
pub fn round_duration(nanos: i64, multiple: i64) -> i64 {
    let remainder = nanos % multiple;
    let toward_zero = nanos - remainder;
    if remainder.abs() * 2 < multiple {
        toward_zero
    } else if nanos < 0 {
        toward_zero.saturating_sub(multiple)
    } else {
        toward_zero.saturating_add(multiple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(secs: i64, nanos: u32) -> Time {
        Time {
            secs,
            nanos,
            location: Location::utc(),
            monotonic: None,
        }
    }

    #[test]
    fn layouts_format_as_go_formats_them() {
        // 2009-02-13 23:31:30.5 UTC, a Friday, day 44 of the year.
        let t = utc(1_234_567_890, 500_000_000);
        let cases = [
            ("2006-01-02T15:04:05Z07:00", "2009-02-13T23:31:30Z"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Fri Feb 13 23:31:30 UTC 2009",
            ),
            ("Monday, 02-Jan-06 3:04PM", "Friday, 13-Feb-09 11:31PM"),
            (
                "2006-01-02 15:04:05.000 -0700",
                "2009-02-13 23:31:30.500 +0000",
            ),
            ("15:04:05.999999999", "23:31:30.5"),
            ("05,00 .9 pm", "30,50 .5 pm"),
            ("002 __2 January", "044  44 February"),
            ("20060102150405", "20090213233130"),
            ("Janet _2006", "Janet _2009"),
        ];
        for (layout, expected) in cases {
            assert_eq!(t.format(layout), expected, "{layout}");
        }
        assert_eq!(Time::zero().print(), "0001-01-01 00:00:00 +0000 UTC");
        let offset = Arc::new(Location::fixed("X", "", -(5 * 3600 + 30 * 60)));
        let t = t.in_location(offset);
        assert_eq!(t.format("Z07:00 -07 MST"), "-05:30 -05 -0530");
    }

    #[test]
    fn layouts_parse_as_go_parses_them() {
        let utc_location = Location::utc();
        let parse = |layout: &str, value: &str| {
            parse_in_location(layout, value, &utc_location).map(|t| t.print())
        };
        let cases = [
            (
                "2006-01-02",
                "2017-12-31",
                Ok("2017-12-31 00:00:00 +0000 UTC"),
            ),
            (
                "2006-01-02T15:04:05Z07:00",
                "2021-06-01T10:00:00.25+02:00",
                Ok("2021-06-01 10:00:00.25 +0200 +0200"),
            ),
            (
                "Jan 2 3:04PM",
                "feb 29 12:00AM",
                Ok("0000-02-29 00:00:00 +0000 UTC"),
            ),
            (
                "Jan 2 2006",
                "feb 29 2023",
                Err("parsing time \"feb 29 2023\": day out of range"),
            ),
            (
                "2006-01-02",
                "2017-13-01",
                Err("parsing time \"2017-13-01\": month out of range"),
            ),
            (
                "2006-01-02",
                "2017-1-01",
                Err(
                    "parsing time \"2017-1-01\" as \"2006-01-02\": cannot parse \"1-01\" as \"01\"",
                ),
            ),
            (
                "15:04:05",
                "10:11:12.5",
                Ok("0000-01-01 10:11:12.5 +0000 UTC"),
            ),
            (
                "2006",
                "2017x",
                Err("parsing time \"2017x\": extra text: \"x\""),
            ),
        ];
        for (layout, value, expected) in cases {
            let expected = expected.map(str::to_string).map_err(str::to_string);
            assert_eq!(parse(layout, value), expected, "{layout} {value}");
        }
    }

    #[test]
    fn durations_print_and_parse_as_go_does() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (-5_500_000_000, "-5.5s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text), Ok(nanos), "{text}");
        }
        assert_eq!(parse_duration("1h15m30.5s"), Ok(4_530_500_000_000));
        assert_eq!(
            parse_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(
            parse_duration("12"),
            Err("time: missing unit in duration \"12\"".into())
        );
        assert_eq!(
            parse_duration("x"),
            Err("time: invalid duration \"x\"".into())
        );
        assert_eq!(round_duration(1_500_000_000, NANOS), 2 * NANOS);
        assert_eq!(round_duration(-1_499_999_999, NANOS), -NANOS);
    }

    #[test]
    fn zoneinfo_files_give_offsets_and_abbreviations() {
        // A TZif v1 file of two zones: standard +01:00 "CET" and from
        // Unix second 1000 on daylight +02:00 "CEST".
        let mut data = b"TZif".to_vec();
        data.extend([0u8; 16]);
        for count in [0u32, 0, 0, 1, 2, 9] {
            data.extend(count.to_be_bytes());
        }
        data.extend(1000i32.to_be_bytes());
        data.push(1);
        data.extend(3600i32.to_be_bytes());
        data.extend([0, 0]);
        data.extend(7200i32.to_be_bytes());
        data.extend([1, 4]);
        data.extend(b"CET\0CEST\0");
        let location = Arc::new(parse_tzif(&data, "Test/Zone").unwrap());
        let at = |secs| {
            utc(secs, 0)
                .in_location(location.clone())
                .format("15:04 MST")
        };
        assert_eq!(at(0), "01:00 CET");
        assert_eq!(at(1000), "02:16 CEST");
        assert!(parse_tzif(b"not a zone", "x").is_none());
        assert!(Location::load("../../etc/passwd").is_err());
        assert!(Location::load("/etc/localtime").is_err());
    }
}
