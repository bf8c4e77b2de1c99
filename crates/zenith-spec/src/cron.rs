//! Cron schedules for recurring jobs (snapshots, verifies, drills).
//!
//! A [`Cron`] is a classic 5-field expression (`minute hour day-of-month month day-of-week`)
//! or one of the `@daily`-style macros. Scheduled times are wall-clock times in a time zone;
//! [`Cron::next_after`] turns them into instants, and [`due`] tells a scheduler whether to run
//! now. Nothing here reads a clock or does I/O: every function takes the current time.
//!
//! Daylight-saving transitions follow cronie:
//! - A wall-clock time that does not exist (spring forward) runs once at the first instant
//!   after the gap if the job names a specific minute and hour (`30 2 * * *`); jobs whose
//!   minute or hour covers every value (`*/30 * * * *`) just skip the missing times.
//! - A wall-clock time that occurs twice (fall back) runs once, at its first occurrence, for
//!   specific-time jobs; jobs whose minute or hour covers every value follow the real clock
//!   and run at both occurrences.
//!
//! ```
//! use zenith_spec::cron::Cron;
//! let cron: Cron = "0 3 * * SUN".parse().unwrap();
//! let after: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let next = cron.next_after(after, &jiff::tz::TimeZone::UTC).unwrap();
//! assert_eq!(next.to_string(), "2026-01-04T03:00:00Z");
//! ```

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The most missed runs [`due`] counts; a count equal to this means "at least this many".
pub const MISSED_CAP: u32 = 10_000;

/// How far ahead [`Cron::next_after`] looks. The Gregorian calendar repeats every 400 years,
/// so a day that matches at all matches within this window.
const SEARCH_YEARS: i16 = 401;

/// A parsed 5-field cron expression (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    /// Bit `n` set when minute `n` is allowed (0-59).
    minutes: u64,
    /// Bit `n` set when hour `n` is allowed (0-23).
    hours: u64,
    /// Bit `n` set when day-of-month `n` is allowed (1-31).
    days: u64,
    /// Bit `n` set when month `n` is allowed (1-12).
    months: u64,
    /// Bit `n` set when weekday `n` is allowed (0 = Sunday .. 6 = Saturday).
    weekdays: u64,
    /// The day-of-month field starts with `*` (Vixie cron's rule for combining the day fields).
    days_star: bool,
    /// The day-of-week field starts with `*`.
    weekdays_star: bool,
    /// The minute or hour field covers every value (`*`, `*/n`, `0-59`, ...), so the job
    /// follows the real clock across DST transitions instead of running at a specific time.
    clock_following: bool,
    /// Some allowed day can occur at all (rules out e.g. `0 0 31 2 *`).
    satisfiable: bool,
}

/// Why a cron expression was rejected; the message names the field and the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// The static description of one of the five fields.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Names are matched from this value (months start at 1, weekdays at 0).
    names_from: u32,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    names_from: 1,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    names_from: 0,
};

/// A parsed field: its allowed values, whether it starts with `*`, and whether some item
/// spans the field's whole range.
struct Parsed {
    bits: u64,
    star: bool,
    full: bool,
}

impl Field {
    fn err(&self, msg: impl fmt::Display) -> CronError {
        CronError(format!("{}: {msg}", self.name))
    }

    fn allowed(&self) -> String {
        match self.names.first() {
            Some(first) => format!(
                "{}-{} or {first}-{}",
                self.min,
                self.max,
                self.names[self.names.len() - 1]
            ),
            None => format!("{}-{}", self.min, self.max),
        }
    }

    fn value(&self, text: &str) -> Result<u32, CronError> {
        if text.is_empty() {
            return Err(self.err(format!("missing value (allowed {})", self.allowed())));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = text
                .parse()
                .map_err(|_| self.err(format!("{text} is out of range {}", self.allowed())))?;
            if n < self.min || n > self.max {
                return Err(self.err(format!("{n} is out of range {}", self.allowed())));
            }
            return Ok(n);
        }
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.names_from + i as u32);
        }
        if self.names.is_empty() {
            Err(self.err(format!("'{text}' is not a number (allowed {})", self.allowed())))
        } else {
            Err(self.err(format!("unknown name '{text}' (allowed {})", self.allowed())))
        }
    }

    fn parse(&self, text: &str) -> Result<Parsed, CronError> {
        let mut parsed = Parsed {
            bits: 0,
            star: text.starts_with('*'),
            full: false,
        };
        for item in text.split(',') {
            if item.is_empty() {
                return Err(self.err(format!("empty list item in '{text}'")));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            let stepped = step.is_some();
            let step = match step {
                None => 1,
                Some(s) => {
                    let n: u32 = s
                        .parse()
                        .map_err(|_| self.err(format!("step '{s}' in '{item}' is not a positive number")))?;
                    if n == 0 {
                        return Err(self.err(format!("step 0 in '{item}' (must be at least 1)")));
                    }
                    if n > self.max - self.min + 1 {
                        return Err(self.err(format!(
                            "step {n} in '{item}' is larger than the range {}-{}",
                            self.min, self.max
                        )));
                    }
                    n
                }
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (lo, hi) = (self.value(a)?, self.value(b)?);
                if lo > hi {
                    return Err(self.err(format!("reversed range {range} (the start must not be after the end)")));
                }
                (lo, hi)
            } else {
                let v = self.value(range)?;
                // `a/n` means a through the maximum, every n.
                if stepped { (v, self.max) } else { (v, v) }
            };
            if lo == self.min && hi == self.max {
                parsed.full = true;
            }
            let mut v = lo;
            while v <= hi {
                parsed.bits |= 1 << v;
                v += step;
            }
        }
        Ok(parsed)
    }
}

impl Cron {
    /// Parses a 5-field expression or a macro (`@yearly`, `@annually`, `@monthly`, `@weekly`,
    /// `@daily`, `@midnight`, `@hourly`). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let text = text.trim();
        let expanded = if let Some(name) = text.strip_prefix('@') {
            match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => {
                    return Err(CronError(format!(
                        "unknown macro '{text}' (allowed @yearly, @annually, @monthly, \
                         @weekly, @daily, @midnight, @hourly)"
                    )));
                }
            }
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "expected 5 fields: minute hour day-of-month month day-of-week, found {}",
                fields.len()
            )));
        }
        let minute = MINUTE.parse(fields[0])?;
        let hour = HOUR.parse(fields[1])?;
        let dom = DAY_OF_MONTH.parse(fields[2])?;
        let month = MONTH.parse(fields[3])?;
        let dow = DAY_OF_WEEK.parse(fields[4])?;
        // 7 is another name for Sunday.
        let weekdays = (dow.bits | (dow.bits >> 7)) & 0x7f;
        let mut cron = Cron {
            text: text.to_string(),
            minutes: minute.bits,
            hours: hour.bits,
            days: dom.bits,
            months: month.bits,
            weekdays,
            days_star: dom.star,
            weekdays_star: dow.star,
            clock_following: minute.full || hour.full,
            satisfiable: true,
        };
        cron.satisfiable = cron.some_day_exists();
        Ok(cron)
    }

    /// The expression as given, without surrounding whitespace.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `after`, in zone `tz`. None only if no time ever matches
    /// (e.g. "0 0 31 2 *").
    ///
    /// Successive calls, each passing the previous result, give strictly increasing instants.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if !self.satisfiable {
            return None;
        }
        let local = truncate_to_minute(tz.to_datetime(after));
        // A wall-clock time earlier than `local` can still be in the future when a fall-back
        // transition is coming: its second occurrence lies after `after`. Start there.
        let mut start = local;
        let horizon = after
            .checked_add(SignedDuration::from_hours(48))
            .unwrap_or(Timestamp::MAX);
        for transition in tz.following(after) {
            if transition.timestamp() > horizon {
                break;
            }
            let civil = truncate_to_minute(tz.to_datetime(transition.timestamp()));
            start = start.min(civil);
        }
        let limit = start.year().saturating_add(SEARCH_YEARS).min(Date::MAX.year());

        let mut cursor = start;
        let mut best: Option<Timestamp> = None;
        // Set when `best` is a fold's second occurrence: until this wall-clock time, a later
        // match's first occurrence may still come earlier in real time.
        let mut window_end: Option<DateTime> = None;
        loop {
            let Some(dt) = self.next_civil(cursor, limit) else {
                return best;
            };
            if window_end.is_some_and(|end| dt >= end) {
                return best;
            }
            if let Some((instant, fold_width)) = self.instant_for(dt, tz, after) {
                match best {
                    Some(b) if b <= instant => {}
                    _ => best = Some(instant),
                }
                if window_end.is_none() {
                    match fold_width {
                        Some(width) => window_end = dt.checked_add(width).ok(),
                        None => return best,
                    }
                    if window_end.is_none() {
                        return best;
                    }
                }
            }
            cursor = dt.checked_add(SignedDuration::from_mins(1)).ok()?;
        }
    }

    /// The earliest instant after `after` at which the wall-clock time `dt` runs, with the
    /// fold width when that instant is a fold's second occurrence.
    fn instant_for(
        &self,
        dt: DateTime,
        tz: &TimeZone,
        after: Timestamp,
    ) -> Option<(Timestamp, Option<SignedDuration>)> {
        match tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                offset.to_timestamp(dt).ok().filter(|t| *t > after).map(|t| (t, None))
            }
            AmbiguousOffset::Gap { before, after: later } => {
                if self.clock_following {
                    return None;
                }
                // Run at the transition itself: the first instant after the gap.
                let earliest = later.to_timestamp(dt).ok()?;
                let latest = before.to_timestamp(dt).ok()?;
                let transition = tz
                    .following(earliest)
                    .next()
                    .map(|t| t.timestamp())
                    .filter(|t| *t <= latest)
                    .unwrap_or(latest);
                (transition > after).then_some((transition, None))
            }
            AmbiguousOffset::Fold { before, after: later } => {
                let first = before.to_timestamp(dt).ok()?;
                if first > after {
                    return Some((first, None));
                }
                if !self.clock_following {
                    return None;
                }
                let second = later.to_timestamp(dt).ok()?;
                let width = SignedDuration::from_secs(i64::from(before.seconds().saturating_sub(later.seconds())));
                (second > after).then_some((second, Some(width)))
            }
        }
    }

    /// The first wall-clock minute at or after `from` that matches, up to the end of year
    /// `limit`.
    fn next_civil(&self, from: DateTime, limit: i16) -> Option<DateTime> {
        let mut year = from.year();
        let mut month = from.month() as u32;
        let mut day = from.day() as u32;
        let mut hour = from.hour() as u32;
        let mut minute = from.minute() as u32;
        loop {
            if year > limit {
                return None;
            }
            if self.months & (1 << month) == 0 {
                match next_bit(self.months, month + 1) {
                    Some(m) => month = m,
                    None => {
                        year += 1;
                        month = next_bit(self.months, 1)?;
                    }
                }
                (day, hour, minute) = (1, 0, 0);
                continue;
            }
            let month_days = days_in_month(year, month);
            if day > month_days {
                (month, day, hour, minute) = (month + 1, 1, 0, 0);
                if month > 12 {
                    (year, month) = (year + 1, 1);
                }
                continue;
            }
            if !self.day_matches(year, month, day) {
                day = if self.days_and_weekdays_both_needed() {
                    // The day-of-month must match: jump to the next allowed one.
                    next_bit(self.days, day + 1).unwrap_or(32)
                } else {
                    day + 1
                };
                (hour, minute) = (0, 0);
                continue;
            }
            match next_bit(self.hours, hour) {
                None => {
                    (day, hour, minute) = (day + 1, 0, 0);
                    continue;
                }
                Some(h) if h != hour => (hour, minute) = (h, 0),
                Some(_) => {}
            }
            match next_bit(self.minutes, minute) {
                None => {
                    (hour, minute) = (hour + 1, 0);
                    if hour > 23 {
                        (day, hour) = (day + 1, 0);
                    }
                }
                Some(m) => {
                    return DateTime::new(year, month as i8, day as i8, hour as i8, m as i8, 0, 0).ok();
                }
            }
        }
    }

    /// Vixie cron: when either day field starts with `*`, a day must match both; when both
    /// are restricted, matching either is enough.
    fn days_and_weekdays_both_needed(&self) -> bool {
        self.days_star || self.weekdays_star
    }

    fn day_matches(&self, year: i16, month: u32, day: u32) -> bool {
        let dom = self.days & (1 << day) != 0;
        let weekday = Date::new(year, month as i8, day as i8)
            .map(|d| d.weekday().to_sunday_zero_offset())
            .unwrap_or(0);
        let dow = self.weekdays & (1 << weekday) != 0;
        if self.days_and_weekdays_both_needed() {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether any day can ever match. Only the day-of-month can make a schedule impossible
    /// (every month has every weekday), when it must match and names no day that exists in an
    /// allowed month.
    fn some_day_exists(&self) -> bool {
        if !self.days_and_weekdays_both_needed() {
            return true;
        }
        (1..=12u32)
            .any(|m| self.months & (1 << m) != 0 && (1..=days_in_month(2000, m)).any(|d| self.days & (1 << d) != 0))
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Cron, CronError> {
        Cron::parse(s)
    }
}

/// What a scheduler should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Run once now: at least one scheduled time fell in (last, now].
    pub run_now: bool,
    /// How many scheduled times were in (last, now], at most [`MISSED_CAP`] (for reporting
    /// "missed N runs").
    pub missed: u32,
    /// The next scheduled time strictly after `now` (and after `last`, so a clock that went
    /// backwards does not repeat a run). None if never.
    pub next: Option<Timestamp>,
}

/// Decides whether a job runs now. `last` is when the job last ran (or when the schedule was
/// first registered, so a new schedule does not run at once).
///
/// A daemon that was down across several scheduled times runs the job once, not once per
/// missed time. When `now` is before `last` (the clock went backwards) nothing runs.
pub fn due(cron: &Cron, tz: &TimeZone, last: Timestamp, now: Timestamp) -> Due {
    let next = cron.next_after(now.max(last), tz);
    let mut missed = 0;
    let mut cursor = last;
    while missed < MISSED_CAP {
        match cron.next_after(cursor, tz) {
            Some(t) if t <= now => {
                missed += 1;
                cursor = t;
            }
            _ => break,
        }
    }
    Due {
        run_now: missed > 0,
        missed,
        next,
    }
}

fn truncate_to_minute(dt: DateTime) -> DateTime {
    dt.with().second(0).subsec_nanosecond(0).build().unwrap_or(dt)
}

/// The lowest set bit at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let masked = bits & (u64::MAX << from);
    (masked != 0).then(|| masked.trailing_zeros())
}

fn days_in_month(year: i16, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eastern() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    fn europe() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cron(s: &str) -> Cron {
        Cron::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        Cron::parse(s).unwrap_err().to_string()
    }

    /// The bits set in `bits`, as a list.
    fn values(bits: u64) -> Vec<u32> {
        (0..64).filter(|i| bits & (1 << i) != 0).collect()
    }

    /// The next `n` runs after `from`.
    fn runs(c: &Cron, tz: &TimeZone, from: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = c.next_after(t, tz).unwrap();
            out.push(t);
        }
        out
    }

    /// All runs in (from, to].
    fn runs_between(c: &Cron, tz: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(next) = c.next_after(t, tz) {
            if next > to {
                break;
            }
            assert!(next > t, "not strictly increasing: {t} then {next}");
            out.push(next);
            t = next;
        }
        out
    }

    #[test]
    fn parses_every_syntax_form() {
        let c = cron("* * * * *");
        assert_eq!(values(c.minutes), (0..60).collect::<Vec<_>>());
        assert_eq!(values(c.hours), (0..24).collect::<Vec<_>>());
        assert_eq!(values(c.days), (1..32).collect::<Vec<_>>());
        assert_eq!(values(c.months), (1..13).collect::<Vec<_>>());
        assert_eq!(values(c.weekdays), (0..7).collect::<Vec<_>>());

        let c = cron("5 3 7 9 2");
        assert_eq!(
            (values(c.minutes), values(c.hours), values(c.days), values(c.months)),
            (vec![5], vec![3], vec![7], vec![9])
        );
        assert_eq!(values(c.weekdays), vec![2]);

        assert_eq!(values(cron("10-14 * * * *").minutes), vec![10, 11, 12, 13, 14]);
        assert_eq!(values(cron("*/15 * * * *").minutes), vec![0, 15, 30, 45]);
        assert_eq!(values(cron("10-30/10 * * * *").minutes), vec![10, 20, 30]);
        assert_eq!(values(cron("50/3 * * * *").minutes), vec![50, 53, 56, 59]);
        assert_eq!(values(cron("0 20/2 * * *").hours), vec![20, 22]);
        assert_eq!(values(cron("1,5-7,40/10 * * * *").minutes), vec![1, 5, 6, 7, 40, 50]);
        assert_eq!(values(cron("0 0 */10 * *").days), vec![1, 11, 21, 31]);
        assert_eq!(values(cron("0 0 1 */3 *").months), vec![1, 4, 7, 10]);
    }

    #[test]
    fn parses_names_and_sunday_as_seven() {
        assert_eq!(values(cron("0 0 1 jan,Mar,DEC *").months), vec![1, 3, 12]);
        assert_eq!(values(cron("0 0 1 FEB-apr *").months), vec![2, 3, 4]);
        assert_eq!(values(cron("0 0 * * MON-FRI").weekdays), vec![1, 2, 3, 4, 5]);
        assert_eq!(values(cron("0 0 * * sun,sat").weekdays), vec![0, 6]);
        assert_eq!(values(cron("0 0 * * 7").weekdays), vec![0]);
        assert_eq!(values(cron("0 0 * * 5-7").weekdays), vec![0, 5, 6]);
        assert_eq!(values(cron("0 0 * * 0-7").weekdays), (0..7).collect::<Vec<_>>());
        assert_eq!(
            cron("0 3 * * 0"),
            Cron {
                text: "0 3 * * 0".into(),
                ..cron("0 3 * * SUN")
            }
        );
    }

    #[test]
    fn parses_macros() {
        let same = |m: &str, expr: &str| {
            let a = cron(m);
            let b = cron(expr);
            assert_eq!(a.as_str(), m);
            assert_eq!(
                Cron {
                    text: expr.to_string(),
                    ..a
                },
                b,
                "{m}"
            );
        };
        same("@yearly", "0 0 1 1 *");
        same("@annually", "0 0 1 1 *");
        same("@monthly", "0 0 1 * *");
        same("@weekly", "0 0 * * 0");
        same("@daily", "0 0 * * *");
        same("@midnight", "0 0 * * *");
        same("@hourly", "0 * * * *");
        assert!(err("@reboot").contains("unknown macro '@reboot'"));
    }

    #[test]
    fn keeps_the_text_trimmed_and_round_trips() {
        let c: Cron = "  0 2 * * *\n".parse().unwrap();
        assert_eq!(c.as_str(), "0 2 * * *");
        assert_eq!(c.to_string(), "0 2 * * *");
        assert_eq!(c.to_string().parse::<Cron>().unwrap(), c);
    }

    #[test]
    fn errors_name_the_field_and_value() {
        assert_eq!(
            err("* * * *"),
            "expected 5 fields: minute hour day-of-month month day-of-week, found 4"
        );
        assert!(err("* * * * * *").ends_with("found 6"));
        assert!(err("").ends_with("found 0"));
        assert_eq!(err("0 24 * * *"), "hour: 24 is out of range 0-23");
        assert_eq!(err("60 * * * *"), "minute: 60 is out of range 0-59");
        assert_eq!(err("0 0 0 * *"), "day-of-month: 0 is out of range 1-31");
        assert_eq!(err("0 0 32 * *"), "day-of-month: 32 is out of range 1-31");
        assert_eq!(err("0 0 * 13 *"), "month: 13 is out of range 1-12 or JAN-DEC");
        assert_eq!(err("0 0 * * 8"), "day-of-week: 8 is out of range 0-7 or SUN-SAT");
        assert_eq!(
            err("0 0 * * 99999999999"),
            "day-of-week: 99999999999 is out of range 0-7 or SUN-SAT"
        );
        assert!(err("*/0 * * * *").starts_with("minute: step 0"));
        assert!(err("0 */x * * *").starts_with("hour: step 'x'"));
        assert!(err("*/61 * * * *").starts_with("minute: step 61"));
        assert!(err("0 5-3 * * *").starts_with("hour: reversed range 5-3"));
        assert!(err("0 0 * DEC-JAN *").starts_with("month: reversed range DEC-JAN"));
        assert_eq!(
            err("0 0 * FOO *"),
            "month: unknown name 'FOO' (allowed 1-12 or JAN-DEC)"
        );
        assert!(err("0 0 * * MONDAY").starts_with("day-of-week: unknown name 'MONDAY'"));
        assert!(err("x * * * *").starts_with("minute: 'x' is not a number"));
        assert!(err("0 JAN * * *").starts_with("hour: 'JAN' is not a number"));
        assert!(err("1,,2 * * * *").starts_with("minute: empty list item"));
        assert!(err("0 0 1, * *").starts_with("day-of-month: empty list item"));
        assert!(err("0 0 * 3- *").starts_with("month: missing value"));
        assert!(err("-5 * * * *").starts_with("minute: missing value"));
    }

    #[test]
    fn daily_at_two_in_utc() {
        let c = cron("0 2 * * *");
        let got = runs(&c, &TimeZone::UTC, ts("2026-01-01T02:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-01-02T02:00:00Z"), ts("2026-01-03T02:00:00Z")]);
        assert_eq!(
            c.next_after(ts("2026-01-01T01:59:59Z"), &TimeZone::UTC),
            Some(ts("2026-01-01T02:00:00Z"))
        );
    }

    #[test]
    fn weekly_sunday_at_three() {
        // 2026-01-04 is a Sunday.
        for expr in ["0 3 * * 0", "0 3 * * SUN", "0 3 * * 7"] {
            let got = runs(&cron(expr), &TimeZone::UTC, ts("2026-01-01T00:00:00Z"), 3);
            let want = ["2026-01-04T03:00:00Z", "2026-01-11T03:00:00Z", "2026-01-18T03:00:00Z"];
            assert_eq!(got, want.map(ts).to_vec(), "{expr}");
        }
    }

    #[test]
    fn monthly_and_yearly() {
        let got = runs(&cron("@monthly"), &TimeZone::UTC, ts("2026-01-15T00:00:00Z"), 3);
        let want = ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"];
        assert_eq!(got, want.map(ts).to_vec());

        // The 31st skips months that do not have one.
        let got = runs(&cron("0 0 31 * *"), &TimeZone::UTC, ts("2026-01-31T00:00:00Z"), 3);
        let want = ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"];
        assert_eq!(got, want.map(ts).to_vec());

        let got = runs(&cron("@yearly"), &europe(), ts("2026-06-01T00:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-12-31T23:00:00Z"), ts("2027-12-31T23:00:00Z")]);
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: the 13th OR any Friday. January 2026: Fridays 2, 9, 16.
        let got = runs(&cron("0 0 13 * FRI"), &TimeZone::UTC, ts("2026-01-01T00:00:00Z"), 4);
        let want = [
            "2026-01-02T00:00:00Z",
            "2026-01-09T00:00:00Z",
            "2026-01-13T00:00:00Z",
            "2026-01-16T00:00:00Z",
        ];
        assert_eq!(got, want.map(ts).to_vec());

        // Day-of-week is `*`: only the day-of-month counts.
        let got = runs(&cron("0 0 13 * *"), &TimeZone::UTC, ts("2026-01-01T00:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-01-13T00:00:00Z"), ts("2026-02-13T00:00:00Z")]);

        // Day-of-month is `*`: only the day-of-week counts.
        let got = runs(&cron("0 0 * * FRI"), &TimeZone::UTC, ts("2026-01-01T00:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-01-02T00:00:00Z"), ts("2026-01-09T00:00:00Z")]);

        // A day field starting with `*` counts as unrestricted for the OR rule (Vixie): odd
        // days AND Fridays.
        let got = runs(&cron("0 0 */2 * FRI"), &TimeZone::UTC, ts("2026-01-01T00:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-01-09T00:00:00Z"), ts("2026-01-23T00:00:00Z")]);
    }

    #[test]
    fn hourly_steps_and_lists() {
        let got = runs(&cron("15,45 */6 * * *"), &TimeZone::UTC, ts("2026-01-01T05:50:00Z"), 3);
        let want = ["2026-01-01T06:15:00Z", "2026-01-01T06:45:00Z", "2026-01-01T12:15:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
        // Seconds inside the scheduled minute are already past it.
        let got = cron("* * * * *").next_after(ts("2026-01-01T00:00:30Z"), &TimeZone::UTC);
        assert_eq!(got, Some(ts("2026-01-01T00:01:00Z")));
    }

    #[test]
    fn spring_forward_specific_time_runs_once_after_the_gap() {
        // 2026-03-08: EST5EDT jumps from 02:00 EST to 03:00 EDT (07:00 UTC).
        let tz = eastern();
        let c = cron("30 2 * * *");
        let got = runs(&c, &tz, ts("2026-03-07T00:00:00Z"), 3);
        let want = ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
        assert_eq!(tz.to_datetime(got[1]).to_string(), "2026-03-08T03:00:00");

        // Several missing times collapse into one run; a real 03:00 run also merges with it.
        let c = cron("0,30 2,3 * * *");
        let got = runs_between(&c, &tz, ts("2026-03-08T00:00:00Z"), ts("2026-03-08T12:00:00Z"));
        let want = ["2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
    }

    #[test]
    fn spring_forward_wildcard_skips_the_missing_hour() {
        let tz = eastern();
        let c = cron("*/30 * * * *");
        let got = runs_between(&c, &tz, ts("2026-03-08T05:59:00Z"), ts("2026-03-08T08:00:00Z"));
        // 01:00 EST, 01:30 EST, then 03:00 EDT, 03:30 EDT, 04:00 EDT.
        let want = [
            "2026-03-08T06:00:00Z",
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-08T08:00:00Z",
        ];
        assert_eq!(got, want.map(ts).to_vec());

        // A stepped hour is not a specific time either: nothing at all that day.
        let c = cron("*/30 2 * * *");
        let got = runs(&c, &tz, ts("2026-03-08T00:00:00Z"), 1);
        assert_eq!(got, vec![ts("2026-03-09T06:00:00Z")]);
    }

    #[test]
    fn fall_back_specific_time_runs_at_the_first_occurrence_only() {
        // 2026-11-01: EST5EDT goes from 02:00 EDT back to 01:00 EST (06:00 UTC).
        let tz = eastern();
        let c = cron("30 1 * * *");
        let got = runs_between(&c, &tz, ts("2026-10-31T12:00:00Z"), ts("2026-11-02T12:00:00Z"));
        let want = ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
        // Asking from inside the repeated hour does not run it again.
        let next = c.next_after(ts("2026-11-01T06:10:00Z"), &tz);
        assert_eq!(next, Some(ts("2026-11-02T06:30:00Z")));

        // Several specific minutes in the repeated hour: each once, in the first pass.
        let c = cron("0,30 1 * * *");
        let got = runs_between(&c, &tz, ts("2026-11-01T04:00:00Z"), ts("2026-11-01T12:00:00Z"));
        let want = ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
    }

    #[test]
    fn fall_back_wildcard_hour_runs_at_both_occurrences() {
        let tz = eastern();
        let c = cron("0 * * * *");
        let got = runs_between(&c, &tz, ts("2026-11-01T03:30:00Z"), ts("2026-11-01T08:00:00Z"));
        // 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST, 03:00 EST.
        let want = [
            "2026-11-01T04:00:00Z",
            "2026-11-01T05:00:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T07:00:00Z",
            "2026-11-01T08:00:00Z",
        ];
        assert_eq!(got, want.map(ts).to_vec());

        let c = cron("*/15 * * * *");
        let got = runs_between(&c, &tz, ts("2026-11-01T04:59:00Z"), ts("2026-11-01T07:00:00Z"));
        let want: Vec<Timestamp> = (0..9)
            .map(|i| ts("2026-11-01T05:00:00Z") + SignedDuration::from_mins(15 * i))
            .collect();
        assert_eq!(got, want);

        // From any point in the repeated hour, the next run is 15 real minutes away.
        for start in ["2026-11-01T05:50:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:05:00Z"] {
            let start = ts(start);
            let next = c.next_after(start, &tz).unwrap();
            assert!(
                next > start && start.duration_until(next) <= SignedDuration::from_mins(15),
                "{start} -> {next}"
            );
        }
    }

    #[test]
    fn europe_transitions() {
        // 2026-03-29: CET jumps 02:00 -> 03:00 (01:00 UTC); 2026-10-25: 03:00 -> 02:00.
        let tz = europe();
        let c = cron("30 2 * * *");
        let got = runs(&c, &tz, ts("2026-03-28T12:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-03-29T01:00:00Z"), ts("2026-03-30T00:30:00Z")]);
        let got = runs(&c, &tz, ts("2026-10-24T12:00:00Z"), 2);
        assert_eq!(got, vec![ts("2026-10-25T00:30:00Z"), ts("2026-10-26T01:30:00Z")]);
        let c = cron("30 * * * *");
        let got = runs_between(&c, &tz, ts("2026-10-24T23:45:00Z"), ts("2026-10-25T02:00:00Z"));
        let want = ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"];
        assert_eq!(got, want.map(ts).to_vec());
    }

    #[test]
    fn a_year_of_daily_runs_across_both_transitions() {
        let tz = eastern();
        let c = cron("0 2 * * *");
        let got = runs_between(&c, &tz, ts("2026-01-01T05:00:00Z"), ts("2027-01-01T05:00:00Z"));
        assert_eq!(got.len(), 365);
        for t in &got {
            let local = tz.to_datetime(*t);
            let spring_forward = local.date() == jiff::civil::date(2026, 3, 8);
            let want = if spring_forward { (3, 0) } else { (2, 0) };
            assert_eq!(
                (local.hour(), local.minute(), local.second()),
                (want.0, want.1, 0),
                "{t}"
            );
        }
    }

    #[test]
    fn impossible_expressions_return_none() {
        for expr in ["0 0 30 2 *", "0 0 31 2 *", "0 0 31 4,6,9,11 *", "0 0 30-31 2 *"] {
            assert_eq!(
                cron(expr).next_after(ts("2026-01-01T00:00:00Z"), &eastern()),
                None,
                "{expr}"
            );
        }
        // Restricted weekdays make Feb 30 an OR, which always matches some day.
        let got = cron("0 0 30 2 MON").next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC);
        assert_eq!(got, Some(ts("2026-02-02T00:00:00Z")));
    }

    #[test]
    fn rare_days_are_found() {
        let c = cron("0 0 29 2 *");
        let got = runs(&c, &TimeZone::UTC, ts("2096-03-01T00:00:00Z"), 2);
        // 2100 is not a leap year.
        assert_eq!(got, vec![ts("2104-02-29T00:00:00Z"), ts("2108-02-29T00:00:00Z")]);
        // The 1st or 29th of February that is also a Monday (Vixie AND, as the day-of-month
        // field starts with '*'): checked against every day for a century.
        let c = cron("0 0 */28 2 MON");
        let mut want = Vec::new();
        let mut day = jiff::civil::date(2026, 1, 1);
        while day.year() < 2126 {
            if day.month() == 2 && [1, 29].contains(&day.day()) && day.weekday() == jiff::civil::Weekday::Monday {
                want.push(day.to_zoned(TimeZone::UTC).unwrap().timestamp());
            }
            day = day.tomorrow().unwrap();
        }
        let got = runs_between(
            &c,
            &TimeZone::UTC,
            ts("2026-01-01T00:00:00Z"),
            ts("2126-01-01T00:00:00Z"),
        );
        assert!(want.iter().any(|t| tz_day(*t) == 29));
        assert_eq!(got, want);
    }

    fn tz_day(t: Timestamp) -> i8 {
        TimeZone::UTC.to_datetime(t).day()
    }

    /// Compares `next_after` with a minute-by-minute scan in UTC.
    #[test]
    fn matches_a_brute_force_scan() {
        let exprs = [
            "* * * * *",
            "*/7 */5 * * *",
            "59 23 31 12 *",
            "0 12 1,15 * MON-WED",
            "10-20/5 1-3 */3 JAN-JUN sat",
            "0 0 */2 * 1",
        ];
        let start = ts("2027-12-20T00:00:00Z");
        let end = ts("2028-03-10T00:00:00Z");
        for expr in exprs {
            let c = cron(expr);
            let mut want = Vec::new();
            let mut t = start;
            while t < end {
                t += SignedDuration::from_mins(1);
                let dt = TimeZone::UTC.to_datetime(t);
                let dom = c.days & (1 << dt.day()) != 0;
                let dow = c.weekdays & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
                let day = if c.days_star || c.weekdays_star {
                    dom && dow
                } else {
                    dom || dow
                };
                if day
                    && c.minutes & (1 << dt.minute()) != 0
                    && c.hours & (1 << dt.hour()) != 0
                    && c.months & (1 << dt.month()) != 0
                {
                    want.push(t);
                }
            }
            let got = runs_between(&c, &TimeZone::UTC, start, end);
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn due_runs_once_after_downtime() {
        let c = cron("0 2 * * *");
        let tz = eastern();
        let last = ts("2026-01-10T07:00:00Z"); // ran at 02:00 EST
        let d = due(&c, &tz, last, ts("2026-01-10T20:00:00Z"));
        assert_eq!(
            d,
            Due {
                run_now: false,
                missed: 0,
                next: Some(ts("2026-01-11T07:00:00Z"))
            }
        );

        let now = ts("2026-01-13T12:00:00Z");
        let d = due(&c, &tz, last, now);
        assert_eq!(
            d,
            Due {
                run_now: true,
                missed: 3,
                next: Some(ts("2026-01-14T07:00:00Z"))
            }
        );

        // Exactly at the scheduled time counts.
        let d = due(&c, &tz, last, ts("2026-01-11T07:00:00Z"));
        assert_eq!((d.run_now, d.missed), (true, 1));
        assert_eq!(d.next, Some(ts("2026-01-12T07:00:00Z")));
    }

    #[test]
    fn due_new_schedule_and_clock_going_backwards() {
        let c = cron("*/5 * * * *");
        let tz = TimeZone::UTC;
        let now = ts("2026-01-10T10:00:00Z");
        let d = due(&c, &tz, now, now);
        assert_eq!(
            d,
            Due {
                run_now: false,
                missed: 0,
                next: Some(ts("2026-01-10T10:05:00Z"))
            }
        );

        let last = ts("2026-01-10T10:20:00Z");
        let d = due(&c, &tz, last, now);
        assert_eq!(
            d,
            Due {
                run_now: false,
                missed: 0,
                next: Some(ts("2026-01-10T10:25:00Z"))
            }
        );
    }

    #[test]
    fn due_caps_the_missed_count() {
        let c = cron("* * * * *");
        let last = ts("2026-01-01T00:00:00Z");
        let d = due(&c, &TimeZone::UTC, last, ts("2026-03-01T00:00:00Z"));
        assert_eq!((d.run_now, d.missed), (true, MISSED_CAP));
        assert_eq!(d.next, Some(ts("2026-03-01T00:01:00Z")));
    }

    #[test]
    fn due_never_when_impossible() {
        let c = cron("0 0 31 2 *");
        let d = due(
            &c,
            &TimeZone::UTC,
            ts("2026-01-01T00:00:00Z"),
            ts("2030-01-01T00:00:00Z"),
        );
        assert_eq!(
            d,
            Due {
                run_now: false,
                missed: 0,
                next: None
            }
        );
    }
}
