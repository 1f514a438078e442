//! Time in the user's terms: time zones, scheduled digests ("daily at 08:00", "weekly on
//! Monday at 08:00"), quiet hours, and the decision "send now, or hold until T".
//!
//! Everything here is pure: the user's time zone and `now` (epoch seconds) are inputs. Local
//! times are turned into instants with the tz database compiled into `jiff`, so a daylight
//! saving change is handled the same everywhere: a local time that does not exist that day (the
//! clocks jumped over it) means the first instant after the jump, and one that happens twice
//! (the clocks went back) means its first occurrence.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::meta::Severity;
use crate::prefs::{Delivery, Destination};

/// The time zone of a user who has not chosen one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// The zone named `name` (an IANA name such as `Europe/Prague`), or why not.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err("an IANA time zone name such as Europe/Prague".into());
    }
    // A POSIX TZ string or a path is not a name; the database only knows names.
    TimeZone::get(name).map_err(|_| format!("`{name}` is not a time zone of the tz database"))
}

/// The user's zone: theirs when set (and known), else UTC. Stored names were validated when
/// written; one the database no longer knows falls back to UTC rather than failing delivery.
pub fn user_time_zone(name: Option<&str>) -> TimeZone {
    name.and_then(|n| parse_time_zone(n).ok())
        .unwrap_or(TimeZone::UTC)
}

/// A wall-clock time of day, `HH:MM` (24-hour) in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    pub hour: u8,
    pub minute: u8,
}

impl LocalTime {
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if hour < 24 && minute < 60 {
            Some(Self { hour, minute })
        } else {
            None
        }
    }

    fn civil(self) -> Time {
        Time::constant(self.hour as i8, self.minute as i8, 0, 0)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl FromStr for LocalTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day HH:MM (00:00 to 23:59)");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour = h.parse().map_err(|_| bad())?;
        let minute = m.parse().map_err(|_| bad())?;
        Self::new(hour, minute).ok_or_else(bad)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
        Self::Sunday,
    ];

    fn civil(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as W;
        match self {
            Self::Monday => W::Monday,
            Self::Tuesday => W::Tuesday,
            Self::Wednesday => W::Wednesday,
            Self::Thursday => W::Thursday,
            Self::Friday => W::Friday,
            Self::Saturday => W::Saturday,
            Self::Sunday => W::Sunday,
        }
    }
}

/// When a scheduled digest goes out, in the user's time zone:
/// `{"every": "day", "at": "08:00"}` or `{"every": "week", "on": "monday", "at": "08:00"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    Day { at: LocalTime },
    Week { on: Weekday, at: LocalTime },
}

/// Hours during which a destination receives nothing but urgent notifications, in the
/// user's time zone; `from` after `to` wraps midnight (22:00 to 07:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub from: LocalTime,
    pub to: LocalTime,
}

impl QuietHours {
    /// Why these hours are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        if self.from == self.to {
            return Err("quiet hours must start and end at different times".into());
        }
        Ok(())
    }
}

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_second(secs.min(i64::MAX as u64) as i64).unwrap_or(Timestamp::MAX)
}

fn secs(t: Timestamp) -> u64 {
    t.as_second().max(0) as u64
}

/// The instant `at` on `date` in `tz`: a time the clocks jump over means the first instant
/// after the jump, a time they pass twice its first occurrence.
pub fn local_instant(tz: &TimeZone, date: Date, at: LocalTime) -> u64 {
    let dt = DateTime::from_parts(date, at.civil());
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            secs(offset.to_timestamp(dt).unwrap_or(Timestamp::MAX))
        }
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset the time falls before the jump; the jump itself is
            // the next transition.
            let early = after.to_timestamp(dt).unwrap_or(Timestamp::MIN);
            tz.following(early)
                .next()
                .map_or(secs(early), |t| secs(t.timestamp()))
        }
    }
}

fn local_date(tz: &TimeZone, now: u64) -> Date {
    ts(now).to_zoned(tz.clone()).date()
}

/// The first time `schedule` comes round strictly after `after`.
pub fn next_occurrence(schedule: &Schedule, tz: &TimeZone, after: u64) -> u64 {
    let (weekday, at) = match *schedule {
        Schedule::Day { at } => (None, at),
        Schedule::Week { on, at } => (Some(on), at),
    };
    let today = local_date(tz, after);
    // Yesterday to a week ahead: an instant's local date and the occurrence after it are at
    // most eight days apart.
    (-1..=8)
        .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
        .filter(|date| weekday.is_none_or(|w| date.weekday() == w.civil()))
        .map(|date| local_instant(tz, date, at))
        .find(|&t| t > after)
        .unwrap_or(after + 7 * 24 * 3600)
}

/// When the quiet hours that `now` falls in end, if it falls in them.
pub fn quiet_until(quiet: &QuietHours, tz: &TimeZone, now: u64) -> Option<u64> {
    let today = local_date(tz, now);
    let wraps = quiet.to <= quiet.from;
    [-1i64, 0].into_iter().find_map(|d| {
        let start_day = today.checked_add(jiff::Span::new().days(d)).ok()?;
        let end_day = if wraps {
            start_day.checked_add(jiff::Span::new().days(1)).ok()?
        } else {
            start_day
        };
        let start = local_instant(tz, start_day, quiet.from);
        let end = local_instant(tz, end_day, quiet.to);
        (start <= now && now < end).then_some(end)
    })
}

/// The end of the clock hour (UTC) that `now` is in: throttling counts per such hour.
pub fn hour_end(now: u64) -> u64 {
    (now / 3600 + 1) * 3600
}

/// What to do with a match for an immediate destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Deliver at once.
    Now,
    /// Keep it in the destination's digest until then; what is held goes out together.
    Hold { until: u64, why: HoldReason },
}

/// Why a notification is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    QuietHours,
    Throttled,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuietHours => "quiet-hours",
            Self::Throttled => "throttled",
        }
    }
}

/// Whether a match for `destination` (delivered immediately) goes now or is held: during the
/// destination's quiet hours it is held until they end, unless the message's severity is
/// error or the filter is marked urgent.
pub fn route(
    destination: &Destination,
    tz: &TimeZone,
    severity: Severity,
    urgent: bool,
    now: u64,
) -> Route {
    if urgent || severity.level() >= Severity::Error.level() {
        return Route::Now;
    }
    match destination
        .quiet_hours
        .as_ref()
        .and_then(|q| quiet_until(q, tz, now))
    {
        Some(until) => Route::Hold {
            until,
            why: HoldReason::QuietHours,
        },
        None => Route::Now,
    }
}

/// Where a match over its filter's hourly allowance waits: until the hour is over, or, when
/// the destination's quiet hours have begun by then, until they end.
pub fn throttled(destination: &Destination, tz: &TimeZone, now: u64) -> Route {
    let end = hour_end(now);
    let until = destination
        .quiet_hours
        .as_ref()
        .and_then(|q| quiet_until(q, tz, end))
        .unwrap_or(end);
    Route::Hold {
        until,
        why: HoldReason::Throttled,
    }
}

/// For a digest destination, the earliest a digest holding an item added at `now` may go,
/// when it has a schedule (its window and count apply besides).
pub fn digest_not_before(delivery: &Delivery, tz: &TimeZone, now: u64) -> Option<u64> {
    match delivery {
        Delivery::Digest {
            schedule: Some(s), ..
        } => Some(next_occurrence(s, tz, now)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prague() -> TimeZone {
        parse_time_zone("Europe/Prague").unwrap()
    }

    fn t(s: &str) -> LocalTime {
        s.parse().unwrap()
    }

    /// Epoch seconds of a local date-time in `tz` (unambiguous ones only).
    fn at(tz: &TimeZone, s: &str) -> u64 {
        let dt: DateTime = s.parse().unwrap();
        secs(dt.to_zoned(tz.clone()).unwrap().timestamp())
    }

    fn utc(s: &str) -> u64 {
        secs(s.parse::<Timestamp>().unwrap())
    }

    #[test]
    fn time_zones_are_iana_names() {
        parse_time_zone("Europe/Prague").unwrap();
        parse_time_zone("UTC").unwrap();
        parse_time_zone("America/Argentina/Buenos_Aires").unwrap();
        for bad in [
            "",
            "Mars/Olympus",
            "CET-1CEST",
            "/etc/passwd",
            "Europe/Prague\n",
        ] {
            assert!(parse_time_zone(bad).is_err(), "{bad:?}");
        }
        assert_eq!(user_time_zone(None), TimeZone::UTC);
        assert_eq!(user_time_zone(Some("Nowhere/Else")), TimeZone::UTC);
    }

    #[test]
    fn local_times_are_hh_mm() {
        assert_eq!(t("07:05"), LocalTime::new(7, 5).unwrap());
        assert_eq!(serde_json::to_string(&t("23:59")).unwrap(), "\"23:59\"");
        for bad in ["24:00", "7:00", "07:60", "0700", "07:00:00", ""] {
            assert!(bad.parse::<LocalTime>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn daily_and_weekly_schedules_come_round_in_local_time() {
        let tz = prague();
        let daily = Schedule::Day { at: t("08:00") };
        // 07:59 local: today 08:00; at 08:00 exactly: tomorrow's.
        let eight = at(&tz, "2026-01-14T08:00");
        assert_eq!(next_occurrence(&daily, &tz, eight - 60), eight);
        assert_eq!(next_occurrence(&daily, &tz, eight), eight + 24 * 3600);
        // 08:00 in Prague is 07:00 UTC in winter.
        assert_eq!(eight, utc("2026-01-14T07:00:00Z"));
        // 2026-01-14 is a Wednesday: the next Monday 08:00 is the 19th.
        let weekly = Schedule::Week {
            on: Weekday::Monday,
            at: t("08:00"),
        };
        assert_eq!(
            next_occurrence(&weekly, &tz, eight),
            at(&tz, "2026-01-19T08:00")
        );
        // On a Monday before 08:00: that same morning.
        let monday = at(&tz, "2026-01-19T06:00");
        assert_eq!(
            next_occurrence(&weekly, &tz, monday),
            at(&tz, "2026-01-19T08:00")
        );
    }

    #[test]
    fn a_time_the_clocks_skip_means_the_first_instant_after_the_jump() {
        // 2026-03-29 in Prague: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let tz = prague();
        let daily = Schedule::Day { at: t("02:30") };
        let evening_before = at(&tz, "2026-03-28T22:00");
        assert_eq!(
            next_occurrence(&daily, &tz, evening_before),
            utc("2026-03-29T01:00:00Z")
        );
        // And the day after, 02:30 CEST exists again.
        assert_eq!(
            next_occurrence(&daily, &tz, utc("2026-03-29T01:00:00Z")),
            utc("2026-03-30T00:30:00Z")
        );
        // An 08:00 digest on the short day is still at 08:00 local (06:00 UTC, not 07:00).
        let eight = Schedule::Day { at: t("08:00") };
        assert_eq!(
            next_occurrence(&eight, &tz, evening_before),
            utc("2026-03-29T06:00:00Z")
        );
    }

    #[test]
    fn a_time_the_clocks_pass_twice_means_the_first() {
        // 2026-10-25 in Prague: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30 and
        // 01:30 UTC.
        let tz = prague();
        let daily = Schedule::Day { at: t("02:30") };
        let first = utc("2026-10-25T00:30:00Z");
        assert_eq!(
            next_occurrence(&daily, &tz, at(&tz, "2026-10-24T22:00")),
            first
        );
        // Once it went out, the second 02:30 does not count again: tomorrow's is next.
        assert_eq!(
            next_occurrence(&daily, &tz, first),
            utc("2026-10-26T01:30:00Z")
        );
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let tz = prague();
        let q = QuietHours {
            from: t("22:00"),
            to: t("07:00"),
        };
        let seven = at(&tz, "2026-01-15T07:00");
        assert_eq!(
            quiet_until(&q, &tz, at(&tz, "2026-01-14T23:00")),
            Some(seven)
        );
        assert_eq!(
            quiet_until(&q, &tz, at(&tz, "2026-01-15T03:00")),
            Some(seven)
        );
        assert_eq!(
            quiet_until(&q, &tz, at(&tz, "2026-01-15T06:59")),
            Some(seven)
        );
        assert_eq!(quiet_until(&q, &tz, seven), None);
        assert_eq!(quiet_until(&q, &tz, at(&tz, "2026-01-14T21:59")), None);
        assert_eq!(quiet_until(&q, &tz, at(&tz, "2026-01-14T12:00")), None);
        // Within one day.
        let lunch = QuietHours {
            from: t("12:00"),
            to: t("13:30"),
        };
        assert_eq!(
            quiet_until(&lunch, &tz, at(&tz, "2026-01-14T12:10")),
            Some(at(&tz, "2026-01-14T13:30"))
        );
        assert_eq!(quiet_until(&lunch, &tz, at(&tz, "2026-01-14T13:30")), None);
        assert!(QuietHours {
            from: t("07:00"),
            to: t("07:00")
        }
        .check()
        .is_err());
    }

    #[test]
    fn quiet_hours_across_a_dst_change_end_at_the_local_time() {
        // The night the clocks go forward is an hour shorter: 22:00 CET to 07:00 CEST.
        let tz = prague();
        let q = QuietHours {
            from: t("22:00"),
            to: t("07:00"),
        };
        let until = quiet_until(&q, &tz, at(&tz, "2026-03-28T23:00")).unwrap();
        assert_eq!(until, utc("2026-03-29T05:00:00Z"));
        assert_eq!(until - at(&tz, "2026-03-28T22:00"), 8 * 3600);
    }

    #[test]
    fn quiet_hours_hold_all_but_errors_and_urgent_filters() {
        let tz = prague();
        let dest =
            Destination::email("email-1", "a@example.org").with_quiet_hours(Some(QuietHours {
                from: t("22:00"),
                to: t("07:00"),
            }));
        let night = at(&tz, "2026-01-14T23:00");
        let seven = at(&tz, "2026-01-15T07:00");
        let held = Route::Hold {
            until: seven,
            why: HoldReason::QuietHours,
        };
        assert_eq!(route(&dest, &tz, Severity::Info, false, night), held);
        assert_eq!(route(&dest, &tz, Severity::Warning, false, night), held);
        assert_eq!(route(&dest, &tz, Severity::Error, false, night), Route::Now);
        assert_eq!(route(&dest, &tz, Severity::Info, true, night), Route::Now);
        assert_eq!(
            route(
                &dest,
                &tz,
                Severity::Info,
                false,
                at(&tz, "2026-01-15T12:00")
            ),
            Route::Now
        );
        // No quiet hours: always now. The same instant in UTC is not quiet.
        let plain = Destination::email("email-1", "a@example.org");
        assert_eq!(route(&plain, &tz, Severity::Info, false, night), Route::Now);
        assert_eq!(
            route(
                &dest,
                &TimeZone::UTC,
                Severity::Info,
                false,
                at(&tz, "2026-01-15T12:00")
            ),
            Route::Now
        );
    }

    #[test]
    fn throttled_matches_wait_for_the_hour_or_the_end_of_quiet_hours() {
        let tz = prague();
        let dest = Destination::email("email-1", "a@example.org");
        let now = utc("2026-01-14T14:20:00Z");
        assert_eq!(
            throttled(&dest, &tz, now),
            Route::Hold {
                until: utc("2026-01-14T15:00:00Z"),
                why: HoldReason::Throttled
            }
        );
        // 21:30 local: the hour ends at 22:00, when quiet hours begin: held until 07:00.
        let quiet = dest.with_quiet_hours(Some(QuietHours {
            from: t("22:00"),
            to: t("07:00"),
        }));
        assert_eq!(
            throttled(&quiet, &tz, at(&tz, "2026-01-14T21:30")),
            Route::Hold {
                until: at(&tz, "2026-01-15T07:00"),
                why: HoldReason::Throttled
            }
        );
    }
}
