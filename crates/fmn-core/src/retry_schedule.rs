//! When a failed job is tried again: a schedule of delays, as webhook services give one
//! (`5s,1m,10m,1h,6h`: the second try 5 s after the first fails, the third a minute after the
//! second...). After the last delay's try fails, the job is given up (dead-lettered with its
//! reason) instead of being retried at the queue's pace until SQS's receive limit.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// SQS holds a received message back at most this long (`ChangeMessageVisibility`'s limit).
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);

/// The delays between tries, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("a retry schedule needs at least one delay")]
    Empty,
    #[error("`{0}` is not a delay such as 30s, 10m or 6h")]
    NotADelay(String),
    #[error("`{0}` is longer than SQS can hold a message back (12h)")]
    TooLong(String),
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Result<Self, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(d) = delays.iter().find(|d| **d > MAX_DELAY) {
            return Err(ScheduleError::TooLong(format_delay(*d)));
        }
        Ok(Self { delays })
    }

    /// The delay before the next try after try number `tries` (1 for the first) failed, or
    /// `None` when that was the last try.
    pub fn after_try(&self, tries: u32) -> Option<Duration> {
        let index = usize::try_from(tries.max(1) - 1).ok()?;
        self.delays.get(index).copied()
    }

    /// Tries in all: the first and one after each delay.
    pub fn tries(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The time from the first try to the last.
    pub fn span(&self) -> Duration {
        self.delays.iter().sum()
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Comma-separated delays, each a whole number with a unit: `s`, `m`, `h` (`5s,1m,10m`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let delays = s
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(parse_delay)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays)
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.delays.iter().map(|d| format_delay(*d)).collect();
        f.write_str(&parts.join(","))
    }
}

fn parse_delay(text: &str) -> Result<Duration, ScheduleError> {
    let not_a_delay = || ScheduleError::NotADelay(text.to_string());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(not_a_delay)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| not_a_delay())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(not_a_delay)?;
    if secs == 0 {
        return Err(not_a_delay());
    }
    Ok(Duration::from_secs(secs))
}

/// `90s` → `90s`, `600s` → `10m`, `3600s` → `1h`: the largest unit that divides it.
fn format_delay(d: Duration) -> String {
    let secs = d.as_secs();
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_reads_and_prints_back() {
        let s: RetrySchedule = "5s, 1m,10m,1h,6h".parse().unwrap();
        assert_eq!(s.to_string(), "5s,1m,10m,1h,6h");
        assert_eq!(s.tries(), 6);
        assert_eq!(
            s.span(),
            Duration::from_secs(5 + 60 + 600 + 3600 + 6 * 3600)
        );
    }

    #[test]
    fn each_failed_try_waits_its_delay_and_the_last_gives_up() {
        let s: RetrySchedule = "5s,1m".parse().unwrap();
        assert_eq!(s.after_try(1), Some(Duration::from_secs(5)));
        assert_eq!(s.after_try(2), Some(Duration::from_secs(60)));
        assert_eq!(s.after_try(3), None);
        assert_eq!(s.after_try(40), None);
        // SQS counts from 1; a missing count is read as the first try.
        assert_eq!(s.after_try(0), Some(Duration::from_secs(5)));
    }

    #[test]
    fn nonsense_is_refused_with_the_offending_part() {
        assert_eq!("".parse::<RetrySchedule>(), Err(ScheduleError::Empty));
        assert_eq!(
            "5s,ten".parse::<RetrySchedule>(),
            Err(ScheduleError::NotADelay("ten".into()))
        );
        assert_eq!(
            "5".parse::<RetrySchedule>(),
            Err(ScheduleError::NotADelay("5".into()))
        );
        assert_eq!(
            "0s".parse::<RetrySchedule>(),
            Err(ScheduleError::NotADelay("0s".into()))
        );
        assert_eq!(
            "5d".parse::<RetrySchedule>(),
            Err(ScheduleError::NotADelay("5d".into()))
        );
        assert_eq!(
            "1m,13h".parse::<RetrySchedule>(),
            Err(ScheduleError::TooLong("13h".into()))
        );
    }
}
