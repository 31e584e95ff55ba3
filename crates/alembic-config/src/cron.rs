//! Cron schedules, validated and expanded.
//!
//! Written by hand rather than with `croner`: launchd's `StartCalendarInterval` and systemd's
//! `OnCalendar` need the *expanded set* of values per field (minute, hour, ...), which cron
//! libraries keep private; they only answer "next fire time". The grammar is the classic five
//! fields with `*`, `a`, `a-b`, `*/n`, `a-b/n` and comma lists, plus `@hourly`/`@daily`/
//! `@weekly`/`@monthly`.

use std::fmt;

use serde::Serialize;

/// Each field is `None` for "every value" or the sorted set of allowed values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    source: String,
    /// Allowed minutes (0-59).
    pub minute: Option<Vec<u8>>,
    /// Allowed hours (0-23).
    pub hour: Option<Vec<u8>>,
    /// Allowed days of the month (1-31).
    pub day_of_month: Option<Vec<u8>>,
    /// Allowed months (1-12).
    pub month: Option<Vec<u8>>,
    /// 0 = Sunday .. 6 = Saturday (7 is folded into 0).
    pub day_of_week: Option<Vec<u8>>,
}

/// launchd gets one dict per combination; more than this is refused as a schedule launchd
/// cannot express sanely (and a plist of thousands of dicts nobody can review).
pub const MAX_CALENDAR_ENTRIES: usize = 64;

const FIELDS: [(&str, u8, u8); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

impl Schedule {
    /// Parse a five-field cron expression (`minute hour day-of-month month day-of-week`).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > 200 {
            return Err("schedule is too long".to_owned());
        }
        let expanded = match s.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "{s:?} must have five fields: minute hour day-of-month month day-of-week (like \"0 3 * * *\")"
            ));
        }
        let mut fields: Vec<Option<Vec<u8>>> = Vec::with_capacity(5);
        for (part, (name, lo, hi)) in parts.iter().zip(FIELDS) {
            fields.push(
                parse_field(part, lo, hi).map_err(|e| format!("{name} field {part:?}: {e}"))?,
            );
        }
        if let Some(dow) = &mut fields[4] {
            for d in dow.iter_mut() {
                if *d == 7 {
                    *d = 0;
                }
            }
            dow.sort_unstable();
            dow.dedup();
            if dow.len() == 7 {
                fields[4] = None;
            }
        }
        if fields[2].is_some() && fields[4].is_some() {
            return Err(
                "restricting both day-of-month and day-of-week means \"either\" in cron but \"both\" in launchd and systemd; restrict only one"
                    .to_owned(),
            );
        }
        let mut it = fields.into_iter();
        let sched = Schedule {
            source: s.to_owned(),
            minute: it.next().flatten(),
            hour: it.next().flatten(),
            day_of_month: it.next().flatten(),
            month: it.next().flatten(),
            day_of_week: it.next().flatten(),
        };
        if sched.calendar_entries().len() > MAX_CALENDAR_ENTRIES {
            return Err(format!(
                "expands to more than {MAX_CALENDAR_ENTRIES} launchd calendar entries; use a coarser schedule"
            ));
        }
        Ok(sched)
    }

    /// The expression as written in `alembic.toml`.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// launchd `StartCalendarInterval`: one entry per combination of restricted fields; keys
    /// `Minute`, `Hour`, `Day`, `Month`, `Weekday` (absent = every).
    pub fn calendar_entries(&self) -> Vec<Vec<(&'static str, u8)>> {
        let fields: [(&'static str, &Option<Vec<u8>>); 5] = [
            ("Month", &self.month),
            ("Day", &self.day_of_month),
            ("Weekday", &self.day_of_week),
            ("Hour", &self.hour),
            ("Minute", &self.minute),
        ];
        let mut entries: Vec<Vec<(&'static str, u8)>> = vec![Vec::new()];
        for (key, values) in fields {
            if let Some(values) = values {
                let mut next = Vec::with_capacity(entries.len() * values.len());
                for e in &entries {
                    for v in values {
                        let mut e = e.clone();
                        e.push((key, *v));
                        next.push(e);
                    }
                    if next.len() > MAX_CALENDAR_ENTRIES {
                        return next;
                    }
                }
                entries = next;
            }
        }
        for e in &mut entries {
            e.sort_by_key(|(k, _)| *k);
        }
        entries
    }

    /// systemd `OnCalendar=` expression, e.g. `*-*-* 03:00:00` or `Mon,Fri *-*-* 09:30:00`.
    pub fn on_calendar(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        let list = |v: &Option<Vec<u8>>, width: usize| match v {
            None => "*".to_owned(),
            Some(v) => v
                .iter()
                .map(|n| format!("{n:0width$}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        let dow = match &self.day_of_week {
            None => String::new(),
            Some(v) => {
                let names: Vec<&str> = v.iter().map(|d| DAYS[*d as usize]).collect();
                format!("{} ", names.join(","))
            }
        };
        format!(
            "{dow}*-{}-{} {}:{}:00",
            list(&self.month, 2),
            list(&self.day_of_month, 2),
            list(&self.hour, 2),
            list(&self.minute, 2)
        )
    }
}

fn parse_field(part: &str, lo: u8, hi: u8) -> Result<Option<Vec<u8>>, String> {
    if part == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u8 = s
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("step {s:?} must be a positive number"))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a, lo, hi)?, num(b, lo, hi)?)
        } else {
            let a = num(range, lo, hi)?;
            (a, if step > 1 { hi } else { a })
        };
        if a > b {
            return Err(format!("range {a}-{b} runs backwards"));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    let full = (hi - lo + 1) as usize;
    if out.len() == full {
        return Ok(None);
    }
    Ok(Some(out))
}

fn num(s: &str, lo: u8, hi: u8) -> Result<u8, String> {
    s.parse::<u8>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("{s:?} is not a number from {lo} to {hi}"))
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(s.on_calendar(), "*-*-* 03:00:00");
        assert_eq!(s.calendar_entries(), vec![vec![("Hour", 3), ("Minute", 0)]]);
    }

    #[test]
    fn lists_and_steps() {
        let s = Schedule::parse("*/30 9-17/4 * * 1,5").unwrap();
        assert_eq!(s.minute, Some(vec![0, 30]));
        assert_eq!(s.hour, Some(vec![9, 13, 17]));
        assert_eq!(s.on_calendar(), "Mon,Fri *-*-* 09,13,17:00,30:00");
        assert_eq!(s.calendar_entries().len(), 12);
    }

    #[test]
    fn sunday_is_seven_or_zero() {
        assert_eq!(
            Schedule::parse("0 0 * * 7").unwrap().day_of_week,
            Some(vec![0])
        );
        assert_eq!(Schedule::parse("0 0 * * 0-7").unwrap().day_of_week, None);
    }

    #[test]
    fn refused() {
        for s in [
            "",
            "* * * *",
            "60 * * * *",
            "0 0 1 * 1",
            "* * * * * *",
            "a b c d e",
            "5-1 * * * *",
            "*/0 * * * *",
        ] {
            assert!(Schedule::parse(s).is_err(), "{s:?}");
        }
    }
}
