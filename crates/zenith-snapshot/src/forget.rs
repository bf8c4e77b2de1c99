//! Retention policy for `forget`: which snapshots to keep, and why.
//!
//! This module owns restic's `forget` retention algorithm (restic's
//! `ApplyPolicy` in `internal/data/snapshot_policy.go`) as a pure function of
//! the snapshot list, the [`KeepPolicy`], the grouping ([`GroupBy`]), the
//! current time and a time zone. It does not filter snapshots (the caller
//! does), read or delete anything, or refuse an empty policy (the caller does;
//! here an empty policy simply keeps everything).
//!
//! The algorithm, per group, exactly as restic runs it:
//!
//! 1. Snapshots are sorted newest first (stable: equal times keep input order).
//! 2. `latest` is the newest snapshot time strictly before `now`; snapshots in
//!    the future never count as `latest`. If every snapshot is at or after
//!    `now`, `now` is used (restic uses the zero time there, which keeps the
//!    same snapshots).
//! 3. Walking newest to oldest, a snapshot is kept if any rule fires, and
//!    every rule that fires records its reason:
//!    * keep-tag: one of the tag lists is fully present on the snapshot
//!      (reason `has tags [a, b]`); no counting.
//!    * keep-within `D`: the snapshot is strictly after `latest - D`
//!      (reason `within D`).
//!    * counting buckets (last, hourly, daily, weekly, monthly, yearly): if the
//!      bucket has slots left and the snapshot's bucket key differs from the
//!      key the bucket last kept, *or* the snapshot is the oldest of the group,
//!      the bucket keeps it, remembers the key and uses up a slot (reason
//!      `daily snapshot`, or `oldest daily snapshot` when only the oldest rule
//!      applied).
//!    * keep-within-hourly/daily/… `D`: like a counting bucket without a count,
//!      applied only to snapshots strictly after `latest - D` (reason
//!      `daily within 2y`, or `oldest daily within 2y`).
//!
//! Bucket keys and `latest - D` are computed in the given time zone. `latest -
//! D` uses Go's `AddDate` normalisation, like restic: years and months move
//! the month, and an out-of-range day rolls over into the next month (so
//! March 31 minus one month is March 3, or March 2 in a leap year, not the end
//! of February); hours are then subtracted as exact elapsed time.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

/// How many snapshots a counting bucket (`--keep-daily` etc.) may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep at most this many. `Count(0)` disables the bucket, like restic's 0.
    Count(u32),
    /// Never run out of slots (restic's `unlimited`, stored as -1 there).
    Unlimited,
}

impl Keep {
    /// Whether this bucket takes part in the policy at all.
    fn is_active(self) -> bool {
        !matches!(self, Keep::Count(0))
    }
}

impl fmt::Display for Keep {
    /// `"7"` or `"unlimited"`, the form [`Keep::from_str`] accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Count(n) => write!(f, "{n}"),
            Keep::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl FromStr for Keep {
    type Err = ForgetError;

    /// Parses a non-negative count or the word `unlimited`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t == "unlimited" {
            return Ok(Keep::Unlimited);
        }
        let invalid = |reason: &str| ForgetError::InvalidKeepCount {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        if t.starts_with('-') {
            return Err(invalid("negative values are not allowed, use 'unlimited' to keep all"));
        }
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("not a whole number"));
        }
        t.parse::<u32>()
            .map(Keep::Count)
            .map_err(|_| invalid("number too large, use 'unlimited' to keep all"))
    }
}

/// A calendar duration as used by `--keep-within*`: years, months, days and
/// hours (restic's `Duration`, written like `2y5m7d3h`).
///
/// It is subtracted from the latest snapshot's time with calendar arithmetic
/// (see the module docs), so `1m` is not a fixed number of hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepDuration {
    /// Calendar years.
    pub years: i32,
    /// Calendar months.
    pub months: i32,
    /// Calendar days.
    pub days: i32,
    /// Hours of elapsed time.
    pub hours: i32,
}

impl KeepDuration {
    /// Whether every part is zero; a zero duration disables its rule, as in
    /// restic.
    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0 && self.hours == 0
    }
}

impl fmt::Display for KeepDuration {
    /// The compact form, e.g. `1y2m3d4h`; zero parts are left out and an
    /// all-zero duration is written `0h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for KeepDuration {
    type Err = ForgetError;

    /// Parses `1y2m3d4h` or any subset of those parts, in the order y, m, d,
    /// h, each at most once, with non-negative whole numbers (`3d`, `1y6m`,
    /// `12h`, `0h`). Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| ForgetError::InvalidDuration {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(invalid("it is empty".to_owned()));
        }
        const UNITS: [char; 4] = ['y', 'm', 'd', 'h'];
        let mut d = KeepDuration::default();
        // Index into UNITS of the next unit allowed (enforces order, no repeats).
        let mut next_unit = 0;
        let mut rest = t;
        while !rest.is_empty() {
            if rest.starts_with('-') {
                return Err(invalid("negative values are not allowed".to_owned()));
            }
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                let c = rest.chars().next().unwrap_or_default();
                return Err(invalid(format!("expected a number, found {c:?}")));
            }
            let (num, after) = rest.split_at(digits);
            let n: i32 = num.parse().map_err(|_| invalid(format!("number {num} is too large")))?;
            let Some(unit) = after.chars().next() else {
                return Err(invalid(format!("no unit after number {num} (use y, m, d or h)")));
            };
            let Some(pos) = UNITS.iter().position(|&u| u == unit) else {
                return Err(invalid(format!(
                    "unknown unit {unit:?} after number {num} (use y, m, d or h)"
                )));
            };
            if pos < next_unit {
                return Err(invalid(format!(
                    "unit {unit:?} is repeated or out of order (write years, months, days, hours in that order)"
                )));
            }
            next_unit = pos + 1;
            match unit {
                'y' => d.years = n,
                'm' => d.months = n,
                'd' => d.days = n,
                _ => d.hours = n,
            }
            rest = &after[unit.len_utf8()..];
        }
        Ok(d)
    }
}

/// Which snapshots `forget` keeps (restic's `--keep-*` options).
///
/// `None`, `Some(Keep::Count(0))` and `Some` of a zero [`KeepDuration`] all
/// mean "not given". Rules combine with OR and count independently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeepPolicy {
    /// Keep the last n snapshots (`--keep-last`).
    pub last: Option<Keep>,
    /// Keep the last n hourly snapshots (`--keep-hourly`).
    pub hourly: Option<Keep>,
    /// Keep the last n daily snapshots (`--keep-daily`).
    pub daily: Option<Keep>,
    /// Keep the last n weekly (ISO week, Monday start) snapshots (`--keep-weekly`).
    pub weekly: Option<Keep>,
    /// Keep the last n monthly snapshots (`--keep-monthly`).
    pub monthly: Option<Keep>,
    /// Keep the last n yearly snapshots (`--keep-yearly`).
    pub yearly: Option<Keep>,
    /// Keep every snapshot newer than the latest minus this (`--keep-within`).
    pub within: Option<KeepDuration>,
    /// Keep hourly snapshots within this of the latest (`--keep-within-hourly`).
    pub within_hourly: Option<KeepDuration>,
    /// Keep daily snapshots within this of the latest (`--keep-within-daily`).
    pub within_daily: Option<KeepDuration>,
    /// Keep weekly snapshots within this of the latest (`--keep-within-weekly`).
    pub within_weekly: Option<KeepDuration>,
    /// Keep monthly snapshots within this of the latest (`--keep-within-monthly`).
    pub within_monthly: Option<KeepDuration>,
    /// Keep yearly snapshots within this of the latest (`--keep-within-yearly`).
    pub within_yearly: Option<KeepDuration>,
    /// Keep snapshots carrying all tags of at least one list (`--keep-tag`,
    /// one list per use). An empty tag `""` in a list matches a snapshot
    /// without tags, as in restic.
    pub tags: Vec<Vec<String>>,
}

impl KeepPolicy {
    /// Whether no rule is configured. [`apply_policy`] then keeps everything;
    /// callers should refuse to forget with an empty policy.
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|(k, _)| !k.is_some_and(Keep::is_active))
            && self.durations().iter().all(|(d, _)| !is_set(*d))
            && self.tags.is_empty()
    }

    fn counts(&self) -> [(Option<Keep>, &'static str); 6] {
        [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ]
    }

    fn durations(&self) -> [(Option<KeepDuration>, &'static str); 6] {
        [
            (self.within, "within"),
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ]
    }
}

impl fmt::Display for KeepPolicy {
    /// A human summary in restic's words, e.g. `keep 7 daily snapshots, 5
    /// weekly snapshots and all snapshots within 1d of the newest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no policy given (keep everything)");
        }
        let keeps: Vec<String> = self
            .counts()
            .iter()
            .filter_map(|&(k, descr)| match k? {
                Keep::Count(0) => None,
                Keep::Count(n) => Some(format!("{n} {descr}")),
                Keep::Unlimited => Some(format!("all {descr}")),
            })
            .collect();
        let keepw: Vec<String> = self.durations()[1..]
            .iter()
            .filter_map(|&(d, descr)| {
                let d = d.filter(|d| !d.is_zero())?;
                Some(format!("{descr} snapshots within {d}"))
            })
            .collect();
        let mut s = String::new();
        if !keeps.is_empty() {
            s = format!("{} snapshots", keeps.join(", "));
        }
        if !keepw.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&keepw.join(", "));
        }
        if !self.tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.tags.iter().map(|l| tag_list(l)).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if let Some(d) = self.within.filter(|d| !d.is_zero()) {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!("all snapshots within {d} of the newest"));
        }
        write!(f, "keep {s}")
    }
}

fn is_set(d: Option<KeepDuration>) -> bool {
    d.is_some_and(|d| !d.is_zero())
}

/// restic's `TagList.String()`: `[a, b]`.
fn tag_list(l: &[String]) -> String {
    format!("[{}]", l.join(", "))
}

/// Which snapshot attributes form a group; the policy runs once per group
/// (restic's `--group-by`). All false means one group for everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the (sorted) list of backed-up paths.
    pub paths: bool,
    /// Group by the (sorted) list of tags.
    pub tags: bool,
}

impl GroupBy {
    /// restic's default grouping: host and paths.
    pub fn default_restic() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl fmt::Display for GroupBy {
    /// The comma-separated form, e.g. `host,paths`; empty for no grouping.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.host {
            parts.push("host");
        }
        if self.paths {
            parts.push("paths");
        }
        if self.tags {
            parts.push("tags");
        }
        f.write_str(&parts.join(","))
    }
}

impl FromStr for GroupBy {
    type Err = ForgetError;

    /// Parses a comma-separated list of `host`, `paths` and `tags` (singular
    /// forms `hosts`/`path`/`tag` accepted, as in restic). Empty items are
    /// skipped, so `""` means no grouping.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut g = GroupBy::default();
        for word in s.split(',') {
            match word.trim() {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => {
                    return Err(ForgetError::UnknownGroupBy {
                        input: s.to_owned(),
                        word: other.to_owned(),
                    });
                }
            }
        }
        Ok(g)
    }
}

/// One snapshot as the policy sees it.
#[derive(Debug, Clone)]
pub struct ForgetItem {
    /// Snapshot id, copied into the [`Decision`].
    pub id: String,
    /// When the snapshot was taken.
    pub time: Timestamp,
    /// Host name the snapshot was taken on.
    pub host: String,
    /// Backed-up paths (any order; sorted for grouping).
    pub paths: Vec<String>,
    /// Tags (any order; sorted for grouping).
    pub tags: Vec<String>,
}

/// The identity of a group: the attributes selected by [`GroupBy`], `None`
/// for the ones not grouped on. Paths and tags are sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    /// Host name, if grouping by host.
    pub host: Option<String>,
    /// Sorted paths, if grouping by paths.
    pub paths: Option<Vec<String>>,
    /// Sorted tags, if grouping by tags.
    pub tags: Option<Vec<String>>,
}

/// The verdict for one snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    /// Snapshot id.
    pub id: String,
    /// Snapshot time.
    pub time: Timestamp,
    /// Whether the snapshot is kept.
    pub keep: bool,
    /// Why it is kept, in restic's words (`daily snapshot`, `within 1d3h`,
    /// `has tags [a, b]`, …), in rule order: tags, within, last, hourly, daily,
    /// weekly, monthly, yearly, then the within-* buckets. Empty when removed.
    pub reasons: Vec<String>,
}

/// The policy's result for one group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForgetGroup {
    /// What the group's snapshots have in common.
    pub key: GroupKey,
    /// One decision per snapshot, newest first.
    pub decisions: Vec<Decision>,
}

/// Errors from parsing retention options.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// A `--keep-within*` duration could not be parsed.
    #[error(
        "invalid duration {input:?}: {reason}; write it like \"2y5m7d3h\" (any of years y, months m, days d, hours h, in that order)"
    )]
    InvalidDuration {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--keep-*` count could not be parsed.
    #[error("invalid keep count {input:?}: {reason}; give a whole number such as 7, or 'unlimited'")]
    InvalidKeepCount {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--group-by` list contained an unknown word.
    #[error(
        "unknown group-by option {word:?} in {input:?}; use a comma-separated list of host, paths and tags, or \"\" for no grouping"
    )]
    UnknownGroupBy {
        /// The whole list as given.
        input: String,
        /// The offending word.
        word: String,
    },
}

/// Applies `policy` to `items`, grouped by `group_by`, and returns one
/// [`ForgetGroup`] per group, sorted by key, each with its decisions newest
/// first.
///
/// `now` decides which snapshots are "in the future" (they never count as the
/// latest snapshot for the within rules); `tz` is the time zone in which
/// hours, days, ISO weeks, months and years are counted and calendar
/// durations are subtracted. An empty policy keeps everything with the
/// reason `no policy given`.
pub fn apply_policy(
    items: &[ForgetItem],
    policy: &KeepPolicy,
    group_by: GroupBy,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<ForgetGroup> {
    let mut groups: BTreeMap<GroupKey, Vec<&ForgetItem>> = BTreeMap::new();
    for item in items {
        groups.entry(group_key(item, group_by)).or_default().push(item);
    }
    groups
        .into_iter()
        .map(|(key, mut list)| {
            // Newest first; the sort is stable, so equal times keep input order.
            list.sort_by_key(|item| std::cmp::Reverse(item.time));
            ForgetGroup {
                key,
                decisions: apply_to_group(&list, policy, now, tz),
            }
        })
        .collect()
}

fn group_key(item: &ForgetItem, group_by: GroupBy) -> GroupKey {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    GroupKey {
        host: group_by.host.then(|| item.host.clone()),
        paths: group_by.paths.then(|| sorted(&item.paths)),
        tags: group_by.tags.then(|| sorted(&item.tags)),
    }
}

/// Time granularity of a bucket.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// Every snapshot is its own bucket (keep-last).
    Each,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// restic's bucket functions: `nr` for last, else `YYYYMMDDHH`, `YYYYMMDD`,
/// ISO `YYYYWW`, `YYYYMM`, `YYYY` of the civil time in the policy's zone.
fn bucket_key(unit: Unit, dt: DateTime, nr: usize) -> i64 {
    let (y, m, d, h) = (
        i64::from(dt.year()),
        i64::from(dt.month()),
        i64::from(dt.day()),
        i64::from(dt.hour()),
    );
    match unit {
        Unit::Each => i64::try_from(nr).unwrap_or(i64::MAX),
        Unit::Hour => y * 1_000_000 + m * 10_000 + d * 100 + h,
        Unit::Day => y * 10_000 + m * 100 + d,
        Unit::Week => {
            let w = dt.date().iso_week_date();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        Unit::Month => y * 100 + m,
        Unit::Year => y,
    }
}

/// A counting bucket's state.
struct CountBucket {
    unit: Unit,
    /// Slots left; `None` = unlimited.
    left: Option<u32>,
    last: Option<i64>,
    reason: &'static str,
}

/// A keep-within-* bucket's state.
struct WithinBucket {
    unit: Unit,
    within: KeepDuration,
    since: Threshold,
    last: Option<i64>,
    reason: &'static str,
}

/// `latest - D`, saturated when the arithmetic leaves jiff's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threshold {
    /// `latest - D` is before every representable time: everything is within.
    Everything,
    /// Snapshots strictly after this are within.
    After(Timestamp),
    /// `latest - D` is after every representable time: nothing is within.
    Nothing,
}

impl Threshold {
    fn contains(self, t: Timestamp) -> bool {
        match self {
            Threshold::Everything => true,
            Threshold::After(since) => t > since,
            Threshold::Nothing => false,
        }
    }

    /// Saturate towards the past (`true`) or the future (`false`).
    fn saturate(past: bool) -> Self {
        if past {
            Threshold::Everything
        } else {
            Threshold::Nothing
        }
    }
}

/// restic's `latest.AddDate(-y, -m, -d).Add(-h * time.Hour)`, evaluated in
/// `tz` with Go's normalisation (day overflow rolls into the next month) and
/// Go's choice of offset for civil times in a DST gap or fold.
fn within_threshold(latest: Timestamp, d: KeepDuration, tz: &TimeZone) -> Threshold {
    let dt = tz.to_datetime(latest);
    // Go's Date(): normalise the month into the year first …
    let total_months =
        i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1 - i64::from(d.years) * 12 - i64::from(d.months);
    let year = total_months.div_euclid(12);
    let month = total_months.rem_euclid(12) + 1;
    let (Ok(year16), Ok(month8)) = (i16::try_from(year), i8::try_from(month)) else {
        return Threshold::saturate(year < 0);
    };
    let Ok(first) = Date::new(year16, month8, 1) else {
        return Threshold::saturate(year < 0);
    };
    // … then add the day of month (minus one) as a plain day count.
    let day_offset = i64::from(dt.day()) - 1 - i64::from(d.days);
    let date = match Span::new()
        .try_days(day_offset)
        .and_then(|span| first.checked_add(span))
    {
        Ok(date) => date,
        Err(_) => return Threshold::saturate(day_offset < 0),
    };
    let civil = date.to_datetime(dt.time());
    // Go's Date() offset choice: take the civil time as if it were UTC, look up
    // the zone's offset there, and use the offset in force at that guess.
    let Ok(as_utc) = TimeZone::UTC.to_timestamp(civil) else {
        return Threshold::saturate(year < 0);
    };
    let shift = |ts: Timestamp| {
        let off = SignedDuration::from_secs(i64::from(tz.to_offset(ts).seconds()));
        as_utc.checked_sub(off)
    };
    let Ok(guess) = shift(as_utc) else {
        return Threshold::saturate(year < 0);
    };
    let Ok(at) = shift(guess) else {
        return Threshold::saturate(year < 0);
    };
    match at.checked_sub(SignedDuration::from_hours(i64::from(d.hours))) {
        Ok(t) => Threshold::After(t),
        Err(_) => Threshold::saturate(d.hours > 0),
    }
}

/// restic's `Snapshot.HasTags`: every tag of `list` is on the snapshot; an
/// empty tag matches a snapshot without tags.
fn has_tags(item: &ForgetItem, list: &[String]) -> bool {
    for tag in list {
        if tag.is_empty() && item.tags.is_empty() {
            return true;
        }
        if !item.tags.contains(tag) {
            return false;
        }
    }
    true
}

/// restic's `ApplyPolicy` on one group, already sorted newest first.
fn apply_to_group(list: &[&ForgetItem], policy: &KeepPolicy, now: Timestamp, tz: &TimeZone) -> Vec<Decision> {
    if policy.is_empty() {
        return list
            .iter()
            .map(|item| Decision {
                id: item.id.clone(),
                time: item.time,
                keep: true,
                reasons: vec!["no policy given".to_owned()],
            })
            .collect();
    }

    // The newest snapshot that is not in the future (restic: strictly before now).
    let latest = list
        .iter()
        .map(|item| item.time)
        .filter(|&t| t < now)
        .max()
        .unwrap_or(now);

    let mut buckets: Vec<CountBucket> = [
        (policy.last, Unit::Each, "last snapshot"),
        (policy.hourly, Unit::Hour, "hourly snapshot"),
        (policy.daily, Unit::Day, "daily snapshot"),
        (policy.weekly, Unit::Week, "weekly snapshot"),
        (policy.monthly, Unit::Month, "monthly snapshot"),
        (policy.yearly, Unit::Year, "yearly snapshot"),
    ]
    .into_iter()
    .filter_map(|(keep, unit, reason)| {
        let left = match keep? {
            Keep::Count(0) => return None,
            Keep::Count(n) => Some(n),
            Keep::Unlimited => None,
        };
        Some(CountBucket {
            unit,
            left,
            last: None,
            reason,
        })
    })
    .collect();

    let mut within_buckets: Vec<WithinBucket> = [
        (policy.within_hourly, Unit::Hour, "hourly within"),
        (policy.within_daily, Unit::Day, "daily within"),
        (policy.within_weekly, Unit::Week, "weekly within"),
        (policy.within_monthly, Unit::Month, "monthly within"),
        (policy.within_yearly, Unit::Year, "yearly within"),
    ]
    .into_iter()
    .filter_map(|(within, unit, reason)| {
        let within = within.filter(|d| !d.is_zero())?;
        Some(WithinBucket {
            unit,
            within,
            since: within_threshold(latest, within, tz),
            last: None,
            reason,
        })
    })
    .collect();

    let within = policy
        .within
        .filter(|d| !d.is_zero())
        .map(|d| (d, within_threshold(latest, d, tz)));

    let oldest = list.len().saturating_sub(1);
    let mut decisions = Vec::with_capacity(list.len());
    for (nr, item) in list.iter().enumerate() {
        let mut reasons = Vec::new();
        let is_oldest = nr == oldest;
        let civil = tz.to_datetime(item.time);

        // Tags are not counted.
        for l in &policy.tags {
            if has_tags(item, l) {
                reasons.push(format!("has tags {}", tag_list(l)));
            }
        }

        if let Some((d, since)) = within
            && since.contains(item.time)
        {
            reasons.push(format!("within {d}"));
        }

        for b in &mut buckets {
            if b.left == Some(0) {
                continue;
            }
            let val = bucket_key(b.unit, civil, nr);
            if b.last != Some(val) || is_oldest {
                reasons.push(if b.last == Some(val) {
                    format!("oldest {}", b.reason)
                } else {
                    b.reason.to_owned()
                });
                b.last = Some(val);
                if let Some(left) = &mut b.left {
                    *left -= 1;
                }
            }
        }

        for b in &mut within_buckets {
            if !b.since.contains(item.time) {
                continue;
            }
            let val = bucket_key(b.unit, civil, nr);
            if b.last != Some(val) || is_oldest {
                let prefix = if b.last == Some(val) { "oldest " } else { "" };
                reasons.push(format!("{prefix}{} {}", b.reason, b.within));
                b.last = Some(val);
            }
        }

        decisions.push(Decision {
            id: item.id.clone(),
            time: item.time,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
    }

    fn item(id: &str, time: &str) -> ForgetItem {
        ForgetItem {
            id: id.to_owned(),
            time: ts(time),
            host: "h".to_owned(),
            paths: vec!["/p".to_owned()],
            tags: Vec::new(),
        }
    }

    fn tagged(id: &str, time: &str, tags: &[&str]) -> ForgetItem {
        ForgetItem {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..item(id, time)
        }
    }

    fn dur(s: &str) -> KeepDuration {
        s.parse().unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    /// Runs a single-group policy; returns (id, reasons) of kept snapshots,
    /// newest first.
    fn kept_in(items: &[ForgetItem], policy: &KeepPolicy, now: &str, tz: &TimeZone) -> Vec<(String, Vec<String>)> {
        let groups = apply_policy(items, policy, GroupBy::default(), ts(now), tz);
        assert_eq!(groups.len(), 1, "expected one group");
        groups[0]
            .decisions
            .iter()
            .filter(|d| {
                assert_eq!(d.keep, !d.reasons.is_empty());
                d.keep
            })
            .map(|d| (d.id.clone(), d.reasons.clone()))
            .collect()
    }

    fn kept(items: &[ForgetItem], policy: &KeepPolicy) -> Vec<(String, Vec<String>)> {
        kept_in(items, policy, "2100-01-01T00:00:00Z", &utc())
    }

    fn ids(kept: &[(String, Vec<String>)]) -> Vec<&str> {
        kept.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn expect(kept: &[(String, Vec<String>)], want: &[(&str, &[&str])]) {
        let got: Vec<(&str, Vec<&str>)> = kept
            .iter()
            .map(|(id, r)| (id.as_str(), r.iter().map(String::as_str).collect()))
            .collect();
        let want: Vec<(&str, Vec<&str>)> = want.iter().map(|(id, r)| (*id, r.to_vec())).collect();
        assert_eq!(got, want);
    }

    /// Daily snapshots at noon UTC, ids are the dates, newest last in input.
    fn daily_series(from: &str, days: i64) -> Vec<ForgetItem> {
        let start: Date = from.parse().unwrap();
        (0..days)
            .map(|i| {
                let d = start.checked_add(Span::new().days(i)).unwrap();
                item(&d.to_string(), &format!("{d}T12:00:00Z"))
            })
            .collect()
    }

    #[test]
    fn each_counting_bucket() {
        // Newest first: a..h. Chosen so every bucket sees repeats.
        let items = vec![
            item("h", "2019-06-15T10:00:00Z"),
            item("g", "2020-12-30T08:00:00Z"),
            item("f", "2021-01-04T09:00:00Z"),
            item("e", "2021-02-10T09:00:00Z"),
            item("d", "2021-02-10T10:30:00Z"),
            item("c", "2021-02-11T10:10:00Z"),
            item("b", "2021-02-11T10:20:00Z"),
            item("a", "2021-02-11T11:00:00Z"),
        ];
        type Case = (
            &'static str,
            KeepPolicy,
            &'static [(&'static str, &'static [&'static str])],
        );
        let two = Some(Keep::Count(2));
        let cases: Vec<Case> = vec![
            (
                "last",
                KeepPolicy {
                    last: two,
                    ..Default::default()
                },
                &[("a", &["last snapshot"]), ("b", &["last snapshot"])],
            ),
            (
                "hourly",
                KeepPolicy {
                    hourly: two,
                    ..Default::default()
                },
                // a = 11h, b and c share 10h on Feb 11 -> b.
                &[("a", &["hourly snapshot"]), ("b", &["hourly snapshot"])],
            ),
            (
                "daily",
                KeepPolicy {
                    daily: two,
                    ..Default::default()
                },
                &[("a", &["daily snapshot"]), ("d", &["daily snapshot"])],
            ),
            (
                "weekly",
                // Feb 10 and 11 are the same ISO week; Jan 4 is 2021-W01;
                // Dec 30 is 2020-W53.
                KeepPolicy {
                    weekly: Some(Keep::Count(3)),
                    ..Default::default()
                },
                &[
                    ("a", &["weekly snapshot"]),
                    ("f", &["weekly snapshot"]),
                    ("g", &["weekly snapshot"]),
                ],
            ),
            (
                "monthly",
                KeepPolicy {
                    monthly: Some(Keep::Count(3)),
                    ..Default::default()
                },
                &[
                    ("a", &["monthly snapshot"]),
                    ("f", &["monthly snapshot"]),
                    ("g", &["monthly snapshot"]),
                ],
            ),
            (
                "yearly",
                KeepPolicy {
                    yearly: Some(Keep::Count(3)),
                    ..Default::default()
                },
                // h is the oldest and a new year anyway: plain reason.
                &[
                    ("a", &["yearly snapshot"]),
                    ("g", &["yearly snapshot"]),
                    ("h", &["yearly snapshot"]),
                ],
            ),
        ];
        for (name, policy, want) in cases {
            let got = kept(&items, &policy);
            let got_ids = ids(&got);
            let want_ids: Vec<&str> = want.iter().map(|(id, _)| *id).collect();
            assert_eq!(got_ids, want_ids, "bucket {name}");
            expect(&got, want);
        }
    }

    #[test]
    fn keep_daily_7_weekly_5_over_two_months() {
        // 2021-01-01 .. 2021-02-28, one a day. Feb 28 2021 is a Sunday.
        let items = daily_series("2021-01-01", 59);
        assert_eq!(items.last().unwrap().id, "2021-02-28");
        let policy = KeepPolicy {
            daily: Some(Keep::Count(7)),
            weekly: Some(Keep::Count(5)),
            ..Default::default()
        };
        let got = kept(&items, &policy);
        // 7 dailies (Feb 22..28, the whole ISO week 8, whose newest day also
        // fills weekly slot 1), then the Sundays of weeks 7, 6, 5, 4.
        expect(
            &got,
            &[
                ("2021-02-28", &["daily snapshot", "weekly snapshot"]),
                ("2021-02-27", &["daily snapshot"]),
                ("2021-02-26", &["daily snapshot"]),
                ("2021-02-25", &["daily snapshot"]),
                ("2021-02-24", &["daily snapshot"]),
                ("2021-02-23", &["daily snapshot"]),
                ("2021-02-22", &["daily snapshot"]),
                ("2021-02-21", &["weekly snapshot"]),
                ("2021-02-14", &["weekly snapshot"]),
                ("2021-02-07", &["weekly snapshot"]),
                ("2021-01-31", &["weekly snapshot"]),
            ],
        );
        assert_eq!(got.len(), 11);
    }

    #[test]
    fn oldest_snapshot_kept_while_slots_left() {
        // Three snapshots on one day: daily keeps the newest, then the oldest
        // because slots are left, but not the middle one.
        let items = vec![
            item("a", "2021-05-01T20:00:00Z"),
            item("b", "2021-05-01T12:00:00Z"),
            item("c", "2021-05-01T08:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: Some(Keep::Count(5)),
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[("a", &["daily snapshot"]), ("c", &["oldest daily snapshot"])],
        );

        // With exactly one slot, the oldest is not kept.
        let policy = KeepPolicy {
            daily: Some(Keep::Count(1)),
            ..Default::default()
        };
        expect(&kept(&items, &policy), &[("a", &["daily snapshot"])]);

        // Two slots on two days: the second slot goes to the second day, none
        // left for the oldest.
        let items2 = vec![
            item("a", "2021-05-02T20:00:00Z"),
            item("b", "2021-05-01T12:00:00Z"),
            item("c", "2021-05-01T08:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: Some(Keep::Count(2)),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items2, &policy)), ["a", "b"]);
        // Three slots: the oldest takes the third even though its day repeats.
        let policy = KeepPolicy {
            daily: Some(Keep::Count(3)),
            ..Default::default()
        };
        expect(
            &kept(&items2, &policy),
            &[
                ("a", &["daily snapshot"]),
                ("b", &["daily snapshot"]),
                ("c", &["oldest daily snapshot"]),
            ],
        );

        // A single snapshot is kept by any bucket.
        let one = vec![item("x", "2021-05-01T08:00:00Z")];
        let policy = KeepPolicy {
            yearly: Some(Keep::Count(1)),
            ..Default::default()
        };
        expect(&kept(&one, &policy), &[("x", &["yearly snapshot"])]);

        // The oldest rule also applies to within buckets.
        let policy = KeepPolicy {
            within_daily: Some(dur("10d")),
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[("a", &["daily within 10d"]), ("c", &["oldest daily within 10d"])],
        );
    }

    #[test]
    fn unlimited_counts() {
        let items = vec![
            item("a", "2021-05-03T20:00:00Z"),
            item("b", "2021-05-03T10:00:00Z"),
            item("c", "2021-05-02T10:00:00Z"),
            item("d", "2021-04-02T10:00:00Z"),
            item("e", "2021-04-02T09:00:00Z"),
            item("f", "2021-04-02T08:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: Some(Keep::Unlimited),
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[
                ("a", &["daily snapshot"]),
                ("c", &["daily snapshot"]),
                ("d", &["daily snapshot"]),
                ("f", &["oldest daily snapshot"]),
            ],
        );
        let policy = KeepPolicy {
            last: Some(Keep::Unlimited),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items, &policy)), ["a", "b", "c", "d", "e", "f"]);
        // Count(0) is "not given": combined with another rule it does nothing.
        let policy = KeepPolicy {
            last: Some(Keep::Count(0)),
            monthly: Some(Keep::Count(1)),
            ..Default::default()
        };
        expect(&kept(&items, &policy), &[("a", &["monthly snapshot"])]);
    }

    #[test]
    fn rules_or_together_with_reasons_in_order() {
        let items = vec![
            tagged("a", "2021-05-03T20:00:00Z", &["x"]),
            item("b", "2021-05-02T10:00:00Z"),
            item("c", "2021-04-01T10:00:00Z"),
        ];
        let policy = KeepPolicy {
            last: Some(Keep::Count(1)),
            daily: Some(Keep::Count(2)),
            monthly: Some(Keep::Count(1)),
            within: Some(dur("1d")),
            within_weekly: Some(dur("1y")),
            tags: vec![vec!["x".to_owned()]],
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[
                (
                    "a",
                    &[
                        "has tags [x]",
                        "within 1d",
                        "last snapshot",
                        "daily snapshot",
                        "monthly snapshot",
                        "weekly within 1y",
                    ],
                ),
                // May 3 2021 is a Monday, so May 2 starts an older ISO week.
                ("b", &["daily snapshot", "weekly within 1y"]),
                ("c", &["weekly within 1y"]),
            ],
        );
    }

    #[test]
    fn keep_within_calendar_months_go_normalisation() {
        // latest = Mar 31 12:00; 1m earlier is "Feb 31" = Mar 3 12:00 (Go's
        // AddDate), not Feb 28.
        let items = vec![
            item("latest", "2021-03-31T12:00:00Z"),
            item("mar3-13h", "2021-03-03T13:00:00Z"),
            item("mar3-12h", "2021-03-03T12:00:00Z"),
            item("mar1", "2021-03-01T12:00:00Z"),
            item("feb28", "2021-02-28T13:00:00Z"),
        ];
        let policy = KeepPolicy {
            within: Some(dur("1m")),
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[("latest", &["within 1m"]), ("mar3-13h", &["within 1m"])],
        );
        // Leap year: Mar 31 2020 - 1m = "Feb 31" = Mar 2.
        let items = vec![
            item("latest", "2020-03-31T12:00:00Z"),
            item("mar2-13h", "2020-03-02T13:00:00Z"),
            item("mar2-12h", "2020-03-02T12:00:00Z"),
        ];
        assert_eq!(ids(&kept(&items, &policy)), ["latest", "mar2-13h"]);
        // Years, days and hours together: 2021-03-31T12 - 1y1m1d = "2020-02-30"
        // = 2020-03-01, minus 3h = 09:00.
        let items = vec![
            item("latest", "2021-03-31T12:00:00Z"),
            item("in", "2020-03-01T09:00:01Z"),
            item("edge", "2020-03-01T09:00:00Z"),
        ];
        let policy = KeepPolicy {
            within: Some(dur("1y1m1d3h")),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items, &policy)), ["latest", "in"]);
        let t = within_threshold(ts("2021-03-31T12:00:00Z"), dur("1y1m1d3h"), &utc());
        assert_eq!(t, Threshold::After(ts("2020-03-01T09:00:00Z")));
        // Day overflow backwards: Mar 1 - 1d = Feb 28; Jan 31 - 2m = "Nov 31" = Dec 1.
        let t = within_threshold(ts("2021-03-01T00:00:00Z"), dur("1d"), &utc());
        assert_eq!(t, Threshold::After(ts("2021-02-28T00:00:00Z")));
        let t = within_threshold(ts("2021-01-31T00:00:00Z"), dur("2m"), &utc());
        assert_eq!(t, Threshold::After(ts("2020-12-01T00:00:00Z")));
        // Absurd durations saturate instead of failing.
        let big = KeepDuration {
            years: 50_000,
            ..Default::default()
        };
        assert_eq!(
            within_threshold(ts("2021-01-31T00:00:00Z"), big, &utc()),
            Threshold::Everything
        );
        let big = KeepDuration {
            days: i32::MAX,
            ..Default::default()
        };
        assert_eq!(
            within_threshold(ts("2021-01-31T00:00:00Z"), big, &utc()),
            Threshold::Everything
        );
        let big = KeepDuration {
            hours: i32::MAX,
            ..Default::default()
        };
        assert_eq!(
            within_threshold(ts("2021-01-31T00:00:00Z"), big, &utc()),
            Threshold::Everything
        );
        let neg = KeepDuration {
            years: -50_000,
            ..Default::default()
        };
        assert_eq!(
            within_threshold(ts("2021-01-31T00:00:00Z"), neg, &utc()),
            Threshold::Nothing
        );
    }

    #[test]
    fn future_snapshots_and_latest() {
        let items = vec![
            item("future", "2021-06-10T00:00:00Z"),
            item("may31", "2021-05-31T00:00:00Z"),
            item("may30", "2021-05-30T00:00:00Z"),
            item("may20", "2021-05-20T00:00:00Z"),
        ];
        let now = "2021-06-01T00:00:00Z";
        // latest = May 31 (the future snapshot does not count): threshold May 29.
        let policy = KeepPolicy {
            within: Some(dur("2d")),
            ..Default::default()
        };
        assert_eq!(
            ids(&kept_in(&items, &policy, now, &utc())),
            ["future", "may31", "may30"]
        );
        // Within buckets use the same latest.
        let policy = KeepPolicy {
            within_daily: Some(dur("2d")),
            ..Default::default()
        };
        assert_eq!(
            ids(&kept_in(&items, &policy, now, &utc())),
            ["future", "may31", "may30"]
        );
        // Counting buckets do not care about now: the future one is the last.
        let policy = KeepPolicy {
            last: Some(Keep::Count(1)),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&items, &policy, now, &utc())), ["future"]);
        // A snapshot exactly at `now` does not count as latest either (restic
        // uses `Before(now)`): latest stays May 31.
        let mut at_now = items.clone();
        at_now[0].time = ts(now);
        let policy = KeepPolicy {
            within: Some(dur("1d")),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&at_now, &policy, now, &utc())), ["future", "may31"]);
        // All in the future: latest = now, everything is within.
        let all_future = vec![item("f2", "2021-07-01T00:00:00Z"), item("f1", "2021-06-20T00:00:00Z")];
        let policy = KeepPolicy {
            within: Some(dur("1h")),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&all_future, &policy, now, &utc())), ["f2", "f1"]);
    }

    #[test]
    fn keep_tags_and_or() {
        let items = vec![
            tagged("ab", "2021-05-06T00:00:00Z", &["a", "b"]),
            tagged("a", "2021-05-05T00:00:00Z", &["a"]),
            tagged("cx", "2021-05-04T00:00:00Z", &["x", "c"]),
            tagged("abc", "2021-05-03T00:00:00Z", &["c", "b", "a"]),
            tagged("none", "2021-05-02T00:00:00Z", &[]),
            tagged("b", "2021-05-01T00:00:00Z", &["b"]),
        ];
        let policy = KeepPolicy {
            tags: vec![vec!["a".into(), "b".into()], vec!["c".into()]],
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[
                ("ab", &["has tags [a, b]"]),
                ("cx", &["has tags [c]"]),
                ("abc", &["has tags [a, b]", "has tags [c]"]),
            ],
        );
        // An empty tag matches snapshots without tags (restic's HasTags).
        let policy = KeepPolicy {
            tags: vec![vec![String::new()]],
            ..Default::default()
        };
        expect(&kept(&items, &policy), &[("none", &["has tags []"])]);
        // Tags are not counted: they do not use up bucket slots.
        let policy = KeepPolicy {
            tags: vec![vec!["b".into()]],
            last: Some(Keep::Count(2)),
            ..Default::default()
        };
        expect(
            &kept(&items, &policy),
            &[
                ("ab", &["has tags [b]", "last snapshot"]),
                ("a", &["last snapshot"]),
                ("abc", &["has tags [b]"]),
                ("b", &["has tags [b]"]),
            ],
        );
    }

    #[test]
    fn group_by_host_paths_tags() {
        let mk = |id: &str, time: &str, host: &str, paths: &[&str], tags: &[&str]| ForgetItem {
            id: id.to_owned(),
            time: ts(time),
            host: host.to_owned(),
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        let items = vec![
            mk("1", "2021-01-01T00:00:00Z", "zed", &["/b", "/a"], &["t2", "t1"]),
            mk("2", "2021-01-02T00:00:00Z", "zed", &["/a", "/b"], &["t1"]),
            mk("3", "2021-01-03T00:00:00Z", "alpha", &["/a", "/b"], &["t1", "t2"]),
            mk("4", "2021-01-04T00:00:00Z", "zed", &["/c"], &[]),
        ];
        let policy = KeepPolicy {
            last: Some(Keep::Count(1)),
            ..Default::default()
        };
        let now = ts("2100-01-01T00:00:00Z");
        let s = |v: &[&str]| Some(v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        let summary = |g: GroupBy| -> Vec<(GroupKey, Vec<(String, bool)>)> {
            apply_policy(&items, &policy, g, now, &utc())
                .into_iter()
                .map(|g| {
                    let ds = g.decisions.into_iter().map(|d| (d.id, d.keep)).collect();
                    (g.key, ds)
                })
                .collect()
        };
        let key = |host: Option<&str>, paths, tags| GroupKey {
            host: host.map(str::to_owned),
            paths,
            tags,
        };
        let t = |id: &str, keep| (id.to_owned(), keep);

        // Default host+paths: path order does not matter; groups sorted by key.
        assert_eq!(
            summary(GroupBy::default_restic()),
            vec![
                (key(Some("alpha"), s(&["/a", "/b"]), None), vec![t("3", true)]),
                (
                    key(Some("zed"), s(&["/a", "/b"]), None),
                    vec![t("2", true), t("1", false)]
                ),
                (key(Some("zed"), s(&["/c"]), None), vec![t("4", true)]),
            ]
        );
        // No grouping: one group, newest first.
        assert_eq!(
            summary(GroupBy::default()),
            vec![(
                key(None, None, None),
                vec![t("4", true), t("3", false), t("2", false), t("1", false)]
            )]
        );
        // Tags only: tag order does not matter.
        assert_eq!(
            summary("tags".parse().unwrap()),
            vec![
                (key(None, None, s(&[])), vec![t("4", true)]),
                (key(None, None, s(&["t1"])), vec![t("2", true)]),
                (key(None, None, s(&["t1", "t2"])), vec![t("3", true), t("1", false)]),
            ]
        );
        // Host only.
        assert_eq!(
            summary("host".parse().unwrap()),
            vec![
                (key(Some("alpha"), None, None), vec![t("3", true)]),
                (
                    key(Some("zed"), None, None),
                    vec![t("4", true), t("2", false), t("1", false)]
                ),
            ]
        );
    }

    #[test]
    fn equal_times_keep_input_order() {
        let items = vec![
            item("first", "2021-01-01T00:00:00Z"),
            item("second", "2021-01-01T00:00:00Z"),
            item("newer", "2021-01-02T00:00:00Z"),
        ];
        let groups = apply_policy(
            &items,
            &KeepPolicy {
                daily: Some(Keep::Unlimited),
                ..Default::default()
            },
            GroupBy::default(),
            ts("2100-01-01T00:00:00Z"),
            &utc(),
        );
        let order: Vec<(&str, bool)> = groups[0].decisions.iter().map(|d| (d.id.as_str(), d.keep)).collect();
        // "second" is the oldest by position, so it gets the oldest-rule keep.
        assert_eq!(order, [("newer", true), ("first", true), ("second", true)]);
        assert_eq!(groups[0].decisions[2].reasons, ["oldest daily snapshot"]);
        assert!(groups[0].decisions[1].reasons == ["daily snapshot"]);
    }

    #[test]
    fn iso_week_across_new_year() {
        let items = vec![
            item("2021-01-04", "2021-01-04T12:00:00Z"), // Monday, 2021-W01
            item("2021-01-01", "2021-01-01T12:00:00Z"), // Friday, 2020-W53
            item("2020-12-31", "2020-12-31T12:00:00Z"), // Thursday, 2020-W53
            item("2020-12-27", "2020-12-27T12:00:00Z"), // Sunday, 2020-W52
            item("2020-12-21", "2020-12-21T12:00:00Z"), // Monday, 2020-W52
        ];
        let week = |s: &str| bucket_key(Unit::Week, utc().to_datetime(ts(s)), 0);
        assert_eq!(week("2020-12-31T12:00:00Z"), 202053);
        assert_eq!(week("2021-01-01T12:00:00Z"), 202053);
        assert_eq!(week("2021-01-03T23:59:59Z"), 202053);
        assert_eq!(week("2021-01-04T00:00:00Z"), 202101);
        let policy = KeepPolicy {
            weekly: Some(Keep::Count(3)),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items, &policy)), ["2021-01-04", "2021-01-01", "2020-12-27"]);
        // Years are calendar years, so yearly splits the same ISO week.
        let policy = KeepPolicy {
            yearly: Some(Keep::Count(2)),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items, &policy)), ["2021-01-04", "2020-12-31"]);
    }

    fn berlin() -> TimeZone {
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            TimeZone::get("Europe/Berlin").expect("tzdata has Europe/Berlin")
        } else {
            // Fallback without tzdata: CET all year (the DST-specific
            // assertions below are then skipped).
            TimeZone::fixed(jiff::tz::offset(1))
        }
    }

    #[test]
    fn buckets_use_the_time_zone() {
        // 23:30 UTC on Jan 1 is Jan 2 in Berlin (CET, +1).
        let items = vec![
            item("b", "2021-01-02T10:00:00Z"),
            item("a", "2021-01-01T23:30:00Z"),
            item("old", "2021-01-01T10:00:00Z"),
        ];
        let policy = KeepPolicy {
            daily: Some(Keep::Count(2)),
            ..Default::default()
        };
        assert_eq!(ids(&kept(&items, &policy)), ["b", "a"]);
        let got = kept_in(&items, &policy, "2100-01-01T00:00:00Z", &berlin());
        assert_eq!(ids(&got), ["b", "old"]);
        // At -11, b and a are on Jan 1 and old is on Dec 31.
        let fixed = TimeZone::fixed(jiff::tz::offset(-11));
        let got = kept_in(&items, &policy, "2100-01-01T00:00:00Z", &fixed);
        expect(&got, &[("b", &["daily snapshot"]), ("old", &["daily snapshot"])]);
        // At +9, all three are on Jan 1 or Jan 2 as in Berlin, but with a
        // single daily slot the oldest is dropped.
        let plus9 = TimeZone::fixed(jiff::tz::offset(9));
        let one = KeepPolicy {
            daily: Some(Keep::Count(1)),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&items, &one, "2100-01-01T00:00:00Z", &plus9)), ["b"]);
    }

    #[test]
    fn dst_in_europe_berlin() {
        let tz = berlin();
        if tz.iana_name() != Some("Europe/Berlin") {
            eprintln!("no tzdata: skipping DST test");
            return;
        }
        let now = "2100-01-01T00:00:00Z";
        // Fall back on 2021-10-31: 03:00 CEST -> 02:00 CET at 01:00 UTC.
        // 00:30 UTC = 02:30 CEST and 01:30 UTC = 02:30 CET: same local hour.
        let items = vec![
            item("cet-0230", "2021-10-31T01:30:00Z"),
            item("cest-0230", "2021-10-31T00:30:00Z"),
            item("cest-0130", "2021-10-30T23:30:00Z"),
        ];
        let policy = KeepPolicy {
            hourly: Some(Keep::Count(2)),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&items, &policy, now, &tz)), ["cet-0230", "cest-0130"]);
        assert_eq!(ids(&kept(&items, &policy)), ["cet-0230", "cest-0230"]);
        // Daily: the 25-hour day is one bucket (23:30 UTC Oct 30 is Oct 31 local).
        let policy = KeepPolicy {
            daily: Some(Keep::Count(1)),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&items, &policy, now, &tz)), ["cet-0230"]);

        // Spring forward on 2021-03-28 (02:00 CET -> 03:00 CEST): one day
        // before 12:00 CEST is 12:00 CET, only 23 hours earlier.
        let items = vec![
            item("latest", "2021-03-28T10:00:00Z"), // 12:00 CEST
            item("23h30", "2021-03-27T10:30:00Z"),  // 11:30 CET
            item("23h", "2021-03-27T11:00:00Z"),    // 12:00 CET (edge, not after)
            item("24h", "2021-03-27T10:00:00Z"),    // 11:00 CET
        ];
        let policy = KeepPolicy {
            within: Some(dur("1d")),
            ..Default::default()
        };
        assert_eq!(ids(&kept_in(&items, &policy, now, &tz)), ["latest"]);
        let items = vec![
            item("latest", "2021-03-28T10:00:00Z"),
            item("22h30", "2021-03-27T11:30:00Z"), // 12:30 CET
        ];
        assert_eq!(ids(&kept_in(&items, &policy, now, &tz)), ["latest", "22h30"]);
        // In UTC, 1d is 24h, so 23.5h earlier is within; in Berlin it is not.
        let items = vec![
            item("latest", "2021-03-28T10:00:00Z"),
            item("23h30", "2021-03-27T10:30:00Z"),
        ];
        assert_eq!(ids(&kept(&items, &policy)), ["latest", "23h30"]);
        assert_eq!(ids(&kept_in(&items, &policy, now, &tz)), ["latest"]);

        // Ambiguous civil threshold: latest 2021-11-01 02:30 CET minus 1d is
        // 2021-10-31 02:30, which occurs twice. Go (and so restic) resolves it
        // to the later one here (CET, 01:30 UTC).
        let t = within_threshold(ts("2021-11-01T01:30:00Z"), dur("1d"), &tz);
        assert_eq!(t, Threshold::After(ts("2021-10-31T01:30:00Z")));
        // Civil threshold in the spring gap: 2021-03-29 02:30 CEST minus 1d is
        // 2021-03-28 02:30, which does not exist; Go moves it to 03:30 CEST.
        let t = within_threshold(ts("2021-03-29T00:30:00Z"), dur("1d"), &tz);
        assert_eq!(t, Threshold::After(ts("2021-03-28T01:30:00Z")));
    }

    #[test]
    fn fold_resolution_negative_offset_zone() {
        let Ok(tz) = TimeZone::get("America/New_York") else {
            eprintln!("no tzdata: skipping");
            return;
        };
        // Fall back 2021-11-07 02:00 EDT -> 01:00 EST (06:00 UTC). Civil
        // 01:30 on Nov 7 is ambiguous; Go's Date picks EDT (05:30 UTC) here.
        let t = within_threshold(ts("2021-11-08T06:30:00Z"), dur("1d"), &tz);
        assert_eq!(t, Threshold::After(ts("2021-11-07T05:30:00Z")));
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let items = daily_series("2021-01-01", 3);
        let policies = [
            KeepPolicy::default(),
            KeepPolicy {
                daily: Some(Keep::Count(0)),
                within: Some(KeepDuration::default()),
                ..Default::default()
            },
        ];
        for policy in policies {
            assert!(policy.is_empty());
            let groups = apply_policy(
                &items,
                &policy,
                GroupBy::default_restic(),
                ts("2100-01-01T00:00:00Z"),
                &utc(),
            );
            assert_eq!(groups.len(), 1);
            let ds = &groups[0].decisions;
            assert_eq!(ds.len(), 3);
            assert_eq!(ds[0].id, "2021-01-03");
            assert!(ds.iter().all(|d| d.keep && d.reasons == ["no policy given"]));
        }
        assert!(
            !KeepPolicy {
                tags: vec![vec![]],
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            !KeepPolicy {
                yearly: Some(Keep::Unlimited),
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            !KeepPolicy {
                within_hourly: Some(dur("1h")),
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            apply_policy(
                &[],
                &KeepPolicy::default(),
                GroupBy::default(),
                Timestamp::UNIX_EPOCH,
                &utc()
            )
            .is_empty()
        );
    }

    #[test]
    fn duration_parsing() {
        /// (input, (years, months, days, hours), displayed as)
        type OkCase = (&'static str, (i32, i32, i32, i32), &'static str);
        let ok: &[OkCase] = &[
            ("1y2m3d4h", (1, 2, 3, 4), "1y2m3d4h"),
            ("2y5m7d3h", (2, 5, 7, 3), "2y5m7d3h"),
            ("3d", (0, 0, 3, 0), "3d"),
            ("1d3h", (0, 0, 1, 3), "1d3h"),
            ("12h", (0, 0, 0, 12), "12h"),
            ("1y6m", (1, 6, 0, 0), "1y6m"),
            ("0h", (0, 0, 0, 0), "0h"),
            ("0y0d", (0, 0, 0, 0), "0h"),
            ("  2m ", (0, 2, 0, 0), "2m"),
            ("007d", (0, 0, 7, 0), "7d"),
        ];
        for (input, (years, months, days, hours), shown) in ok {
            let d: KeepDuration = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                d,
                KeepDuration {
                    years: *years,
                    months: *months,
                    days: *days,
                    hours: *hours
                }
            );
            assert_eq!(d.to_string(), *shown);
            assert_eq!(shown.parse::<KeepDuration>().unwrap(), d);
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("d", "expected a number"),
            ("1", "no unit after number 1"),
            ("1x", "unknown unit 'x'"),
            ("1D", "unknown unit 'D'"),
            ("1d2y", "out of order"),
            ("1d1d", "repeated"),
            ("-1d", "negative"),
            ("1d-3h", "negative"),
            ("1 d", "unknown unit ' '"),
            ("1.5d", "unknown unit '.'"),
            ("99999999999d", "too large"),
            ("1w", "unknown unit 'w'"),
        ];
        for (input, needle) in bad {
            let err = input.parse::<KeepDuration>().expect_err(input);
            let msg = err.to_string();
            assert!(matches!(err, ForgetError::InvalidDuration { .. }));
            assert!(msg.contains(&format!("{input:?}")), "{msg} should name the input");
            assert!(msg.contains(needle), "{msg} should mention {needle}");
        }
        assert_eq!(
            KeepDuration {
                days: -1,
                ..Default::default()
            }
            .to_string(),
            "-1d"
        );
    }

    #[test]
    fn keep_count_parsing() {
        assert_eq!("7".parse::<Keep>().unwrap(), Keep::Count(7));
        assert_eq!("0".parse::<Keep>().unwrap(), Keep::Count(0));
        assert_eq!("unlimited".parse::<Keep>().unwrap(), Keep::Unlimited);
        assert_eq!(Keep::Unlimited.to_string(), "unlimited");
        assert_eq!(Keep::Count(3).to_string(), "3");
        for bad in ["-1", "", "seven", "1.5", "99999999999"] {
            let msg = bad.parse::<Keep>().unwrap_err().to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn group_by_parsing() {
        let g = |h, p, t| GroupBy {
            host: h,
            paths: p,
            tags: t,
        };
        let ok = [
            ("host,paths", g(true, true, false)),
            ("host", g(true, false, false)),
            ("", g(false, false, false)),
            ("tags,paths", g(false, true, true)),
            ("hosts,path,tag", g(true, true, true)),
            ("host,,paths", g(true, true, false)),
            (" host , tags ", g(true, false, true)),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<GroupBy>().unwrap(), want, "{input}");
        }
        assert_eq!(GroupBy::default_restic(), g(true, true, false));
        assert_eq!(GroupBy::default_restic().to_string(), "host,paths");
        assert_eq!(GroupBy::default().to_string(), "");
        let err = "host,hostname".parse::<GroupBy>().unwrap_err();
        assert!(matches!(&err, ForgetError::UnknownGroupBy { word, .. } if word == "hostname"));
        assert!(err.to_string().contains("\"hostname\""), "{err}");
    }

    #[test]
    fn policy_display() {
        let p = KeepPolicy {
            daily: Some(Keep::Count(7)),
            weekly: Some(Keep::Count(5)),
            yearly: Some(Keep::Unlimited),
            within_daily: Some(dur("2y")),
            tags: vec![vec!["a".into(), "b".into()], vec!["c".into()]],
            within: Some(dur("1d3h")),
            ..Default::default()
        };
        assert_eq!(
            p.to_string(),
            "keep 7 daily, 5 weekly, all yearly snapshots, daily snapshots within 2y \
             and all snapshots with tags [[a, b] [c]] and all snapshots within 1d3h of the newest"
        );
        assert_eq!(KeepPolicy::default().to_string(), "no policy given (keep everything)");
    }
}
