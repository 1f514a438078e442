//! `fedocal-messages`: Fedora's calendar.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime};

use super::facts::{fill, opt, text, Facts};
use crate::meta::ctx::Ctx;

/// Per schema: the text (both `summary` and `__str__`).
const TABLE: &[(&str, &str)] = &[
    ("calendar.new", "{agent} has created a new calendar {calendar.calendar_name}"),
    ("calendar.update", "{agent} has updated a calendar {calendar.calendar_name}"),
    ("calendar.upload", "{agent} has uploaded meetings in the calendar {calendar.calendar_name}"),
    ("calendar.delete", "{agent} has deleted the calendar {calendar.calendar_name}"),
    ("calendar.clear", "{agent} has cleared the calendar {calendar.calendar_name}"),
    ("meeting.new", "{agent} has created a new meeting {meeting.meeting_name} in calendar {calendar.calendar_name}"),
    ("meeting.update", "{agent} has updated meeting {meeting.meeting_name} in calendar {calendar.calendar_name}"),
    ("meeting.delete", "{agent} has deleted the meeting {meeting.meeting_name} from the calendar {calendar.calendar_name}"),
];

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let event = schema.strip_prefix("fedocal.")?;
    let facts = if event == "meeting.reminder" {
        let summary = fill(m, "Remember about the meeting '{meeting.meeting_name}' from the '{calendar.calendar_name}' calendar");
        let long = format!(
            "Friendly reminder!  The '{}' meeting from the '{}' calendar starts {}",
            text(m, "meeting.meeting_name"),
            text(m, "calendar.calendar_name"),
            starts_in(m),
        );
        Facts::short("fedocal", summary).long(long)
    } else {
        let &(_, template) = TABLE.iter().find(|row| row.0 == event)?;
        Facts::short("fedocal", fill(m, template))
    };
    let agent = opt(m, "agent").filter(|a| !a.is_empty());
    Some(facts.url(opt(m, "thing.url")).users(agent))
}

/// fedocal's `_casual_timedelta_string`: `in 3 days`, `in -5 minutes`, `right now`. The
/// reference time is when the message was sent (the notification goes out then), or the
/// clock when the message has no time.
fn starts_in(m: &Ctx<'_>) -> String {
    let now = m
        .envelope
        .timestamp_secs()
        .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let start = format!(
        "{} {}",
        text(m, "meeting.meeting_date"),
        text(m, "meeting.meeting_time_start")
    );
    let Ok(meeting) = PrimitiveDateTime::parse(&start, format) else {
        return "right now".into();
    };
    let delta = RelativeDelta::between(meeting.assume_utc(), now);
    let parts = [
        (delta.years, "years"),
        (delta.months, "months"),
        (delta.days, "days"),
        (delta.hours, "hours"),
        (delta.minutes, "minutes"),
    ];
    match parts.into_iter().find(|(value, _)| *value != 0) {
        Some((1, unit)) => format!("in 1 {}", &unit[..unit.len() - 1]),
        Some((value, unit)) => format!("in {value} {unit}"),
        None => "right now".into(),
    }
}

/// The parts of dateutil's `relativedelta(dt1, dt2)` that fedocal reads.
struct RelativeDelta {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
}

impl RelativeDelta {
    fn between(dt1: OffsetDateTime, dt2: OffsetDateTime) -> Self {
        let add_months = |months: i64| -> OffsetDateTime {
            let total = i64::from(dt2.year()) * 12 + i64::from(u8::from(dt2.month())) - 1 + months;
            let (year, month) = (
                total.div_euclid(12) as i32,
                (total.rem_euclid(12) + 1) as u8,
            );
            let month = Month::try_from(month).unwrap_or(Month::January);
            let day = dt2.day().min(time::util::days_in_month(month, year));
            Date::from_calendar_date(year, month, day)
                .map(|d| dt2.replace_date(d))
                .unwrap_or(dt2)
        };
        let mut months = (i64::from(dt1.year()) - i64::from(dt2.year())) * 12
            + i64::from(u8::from(dt1.month()))
            - i64::from(u8::from(dt2.month()));
        let step = if dt1 < dt2 { 1 } else { -1 };
        let mut shifted = add_months(months);
        // The calendar difference is at most one month off (bounded: `add_months` gives up at
        // the edges of the calendar).
        for _ in 0..2 {
            if (step == 1 && dt1 > shifted) || (step == -1 && dt1 < shifted) {
                months += step;
                shifted = add_months(months);
            }
        }
        let seconds = (dt1 - shifted).whole_seconds();
        // relativedelta's `_fix`: carry with the sign of each part.
        let carry = |value: i64, limit: i64, unit: i64| -> (i64, i64) {
            if value.abs() > limit {
                let sign = value.signum();
                let (div, rem) = ((value * sign) / unit, (value * sign) % unit);
                (rem * sign, div * sign)
            } else {
                (value, 0)
            }
        };
        let (_, minutes) = carry(seconds, 59, 60);
        let (minutes, hours) = carry(minutes, 59, 60);
        let (hours, days) = carry(hours, 23, 24);
        let sign = months.signum();
        Self {
            years: sign * (months.abs() / 12),
            months: sign * (months.abs() % 12),
            days,
            hours,
            minutes,
        }
    }
}
