//! Cron schedules read in a time zone: when a `ScheduledSparkApplication` is due.
//!
//! Cron expressions are parsed and evaluated by [`croner`] on [`jiff`] zoned times, so
//! daylight saving changes follow the IANA database. For a pattern with a single second,
//! minute and hour (`30 2 * * *`), a local time that a change skips runs at the first
//! instant after the change and one it repeats runs once (as Vixie cron does); a pattern
//! with lists, ranges or steps there runs at each wall-clock time that exists, so it
//! skips the times of a gap and runs twice in a repeated hour. `@every <duration>` is robfig/cron's
//! (the library behind kubeflow's and Kubernetes' schedules): each run comes that long
//! after the previous run's scheduled time.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// Why a schedule or time zone was refused; the text names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("spec.schedule {schedule:?} is not a cron expression: {reason}")]
    Cron {
        /// The expression.
        schedule: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `@every` with a duration that does not parse or is under a second.
    #[error("spec.schedule {schedule:?}: {reason}")]
    Every {
        /// The expression.
        schedule: String,
        /// What is wrong.
        reason: String,
    },
    /// The time zone is not in the IANA database.
    #[error("{field} {zone:?} is not a known time zone (an IANA name such as Europe/Berlin, UTC or Local): {reason}")]
    Zone {
        /// `spec.timeZone` or `spec.schedule` (its `CRON_TZ=` prefix).
        field: &'static str,
        /// The zone name.
        zone: String,
        /// The database's complaint.
        reason: String,
    },
    /// `CRON_TZ=` in the schedule names another zone than `timeZone`.
    #[error("spec.schedule sets CRON_TZ={prefix} but spec.timeZone is {field}; set one of them")]
    ZoneConflict {
        /// The zone of the prefix.
        prefix: String,
        /// The zone of `timeZone`.
        field: String,
    },
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression in a time zone.
    Cron {
        /// The expression.
        cron: Box<Cron>,
        /// The zone its wall-clock fields are read in.
        zone: TimeZone,
    },
    /// `@every <duration>`: a fixed period after the previous run.
    Every(SignedDuration),
}

fn zone(field: &'static str, name: &str) -> Result<TimeZone, ScheduleError> {
    let result = if name == "Local" { TimeZone::try_system() } else { TimeZone::get(name) };
    result.map_err(|e| ScheduleError::Zone { field, zone: name.to_string(), reason: e.to_string() })
}

impl Schedule {
    /// Parses `schedule` (see [`crate::scheduled::crd::ScheduledSparkApplicationSpec::schedule`])
    /// read in `time_zone` (default UTC).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let trimmed = schedule.trim();
        let (prefix_zone, expression) = match trimmed.strip_prefix("CRON_TZ=").or_else(|| trimmed.strip_prefix("TZ=")) {
            Some(rest) => {
                let (name, expression) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (Some(name), expression.trim())
            }
            None => (None, trimmed),
        };
        let zone = match (prefix_zone, time_zone) {
            (Some(prefix), Some(field)) if prefix != field => {
                return Err(ScheduleError::ZoneConflict { prefix: prefix.to_string(), field: field.to_string() });
            }
            (Some(prefix), _) => zone("spec.schedule", prefix)?,
            (None, Some(field)) => zone("spec.timeZone", field)?,
            (None, None) => TimeZone::UTC,
        };
        if let Some(period) = expression.strip_prefix("@every") {
            let every = |reason: String| ScheduleError::Every { schedule: schedule.to_string(), reason };
            let period = period.trim();
            let duration = SignedDuration::from_str(period)
                .map_err(|e| every(format!("{period:?} is not a duration such as 90s or 1h30m: {e}")))?;
            if duration < SignedDuration::from_secs(1) {
                return Err(every(format!("{period:?} is shorter than the shortest period, 1s")));
            }
            if duration.subsec_nanos() != 0 {
                // Status times are whole seconds: a fraction would drift off at each run.
                return Err(every(format!("{period:?} is not a whole number of seconds")));
            }
            return Ok(Schedule::Every(duration));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError::Cron { schedule: schedule.to_string(), reason: e.to_string() })?;
        Ok(Schedule::Cron { cron: Box::new(cron), zone })
    }

    fn zoned(zone: &TimeZone, t: Timestamp) -> Zoned {
        t.to_zoned(zone.clone())
    }

    /// The first scheduled time strictly after `after`; `None` when there is none (a
    /// date that never comes, such as February 30th).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, zone } => {
                cron.find_next_occurrence(&Self::zoned(zone, after), false).ok().map(|z| z.timestamp())
            }
            Schedule::Every(period) => after.checked_add(*period).ok(),
        }
    }

    /// The latest scheduled time in `(after, now]`: the one due now when `after` is the
    /// previous run's time. Times between `after` and it were missed and are not run,
    /// as Kubernetes CronJob and kubeflow do.
    pub fn latest_due(&self, after: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let first = self.next_after(after)?;
        if first > now {
            return None;
        }
        match self {
            Schedule::Cron { cron, zone } => {
                let latest = cron.find_previous_occurrence(&Self::zoned(zone, now), true).ok().map(|z| z.timestamp());
                Some(latest.map_or(first, |latest| latest.max(first)))
            }
            Schedule::Every(period) => {
                let periods = (now.duration_since(after).as_nanos() / period.as_nanos()).max(1);
                let periods = i32::try_from(periods).unwrap_or(i32::MAX);
                after.checked_add(period.checked_mul(periods)?).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn five_and_six_field_expressions_and_nicknames() {
        let minute = Schedule::parse("* * * * *", None).unwrap();
        assert_eq!(minute.next_after(at("2026-12-01T10:00:30Z")), Some(at("2026-12-01T10:01:00Z")));
        assert_eq!(minute.next_after(at("2026-12-01T10:01:00Z")), Some(at("2026-12-01T10:02:00Z")), "strictly after");
        let seconds = Schedule::parse("*/5 * * * * *", None).unwrap();
        assert_eq!(seconds.next_after(at("2026-12-01T10:00:01Z")), Some(at("2026-12-01T10:00:05Z")));
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(hourly.next_after(at("2026-12-01T10:00:01Z")), Some(at("2026-12-01T11:00:00Z")));
        let weekdays = Schedule::parse("30 8 * * MON-FRI", None).unwrap();
        // 2026-12-05 is a Saturday.
        assert_eq!(weekdays.next_after(at("2026-12-04T09:00:00Z")), Some(at("2026-12-07T08:30:00Z")));
    }

    #[test]
    fn the_time_zone_moves_the_wall_clock_and_follows_daylight_saving() {
        let berlin = Schedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        // Winter: UTC+1.
        assert_eq!(berlin.next_after(at("2026-12-01T00:00:00Z")), Some(at("2026-12-01T08:00:00Z")));
        // Summer: UTC+2.
        assert_eq!(berlin.next_after(at("2026-07-01T00:00:00Z")), Some(at("2026-07-01T07:00:00Z")));
        // 02:30 does not exist on 2026-03-29 in Berlin (clocks jump 02:00 -> 03:00): that
        // day's run comes at the first instant after the jump, 03:00 CEST.
        let skipped = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let jumped = skipped.next_after(at("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(jumped, at("2026-03-29T01:00:00Z"));
        assert_eq!(skipped.next_after(jumped), Some(at("2026-03-30T00:30:00Z")), "and the day after as usual");
        // 02:30 happens twice on 2026-10-25 (03:00 -> 02:00): it runs once.
        let repeated = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let first = repeated.next_after(at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first, at("2026-10-25T00:30:00Z"));
        assert_eq!(repeated.next_after(first), Some(at("2026-10-26T01:30:00Z")));
        let prefixed = Schedule::parse("CRON_TZ=Asia/Tokyo 0 9 * * *", None).unwrap();
        assert_eq!(prefixed.next_after(at("2026-12-01T01:00:00Z")), Some(at("2026-12-02T00:00:00Z")));
    }

    #[test]
    fn every_counts_from_the_previous_run() {
        let every = Schedule::parse("@every 1h30m", None).unwrap();
        assert_eq!(every.next_after(at("2026-12-01T10:00:00Z")), Some(at("2026-12-01T11:30:00Z")));
        let short = Schedule::parse("@every 5s", None).unwrap();
        assert_eq!(short.latest_due(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:00:04Z")), None);
        assert_eq!(
            short.latest_due(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:00:17Z")),
            Some(at("2026-12-01T10:00:15Z")),
            "the latest of the periods that passed"
        );
    }

    #[test]
    fn latest_due_is_the_last_time_passed_and_missed_ones_are_dropped() {
        let minute = Schedule::parse("* * * * *", None).unwrap();
        assert_eq!(minute.latest_due(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:00:59Z")), None);
        assert_eq!(
            minute.latest_due(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:01:00Z")),
            Some(at("2026-12-01T10:01:00Z")),
            "a time is due at that very instant"
        );
        assert_eq!(
            minute.latest_due(at("2026-12-01T10:00:00Z"), at("2026-12-01T10:07:30Z")),
            Some(at("2026-12-01T10:07:00Z"))
        );
    }

    #[test]
    fn bad_schedules_and_zones_say_what_is_wrong() {
        let err = Schedule::parse("61 * * * *", None).unwrap_err().to_string();
        assert!(err.contains("spec.schedule \"61 * * * *\" is not a cron expression"), "{err}");
        let err = Schedule::parse("* * * *", None).unwrap_err().to_string();
        assert!(err.contains("not a cron expression"), "{err}");
        let err = Schedule::parse("0 9 * * *", Some("Mars/Olympus")).unwrap_err().to_string();
        assert!(err.contains("spec.timeZone \"Mars/Olympus\" is not a known time zone"), "{err}");
        let err = Schedule::parse("@every soon", None).unwrap_err().to_string();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
        let err = Schedule::parse("@every 500ms", None).unwrap_err().to_string();
        assert!(err.contains("shorter than the shortest period"), "{err}");
        let err = Schedule::parse("@every 1.5s", None).unwrap_err().to_string();
        assert!(err.contains("not a whole number of seconds"), "{err}");
        let err = Schedule::parse("0 0 0 1 1 * 2020", None).unwrap_err().to_string();
        assert!(err.contains("not a cron expression"), "seven fields (a year) are refused: {err}");
        let err = Schedule::parse("CRON_TZ=Asia/Tokyo 0 9 * * *", Some("UTC")).unwrap_err().to_string();
        assert!(err.contains("CRON_TZ=Asia/Tokyo but spec.timeZone is UTC"), "{err}");
    }
}
