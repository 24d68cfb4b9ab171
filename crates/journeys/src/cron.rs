//! Schedule triggers (issue 6 §1): standard five-field cron expressions
//! (`minute hour day-of-month month day-of-week`) evaluated in the shop timezone.
//!
//! Parsing and stepping are the `cron` crate's; it reads Quartz-style fields (seconds
//! first, days of week 1 = Sunday), so the Unix form is translated: a seconds field of
//! `0` is put in front and day-of-week numbers become names (0 and 7 are Sunday, 1
//! Monday, as `crontab(5)` says).

use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;

const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule(cron::Schedule);

impl CronSchedule {
    /// Parses five fields (Unix cron). Errors say which part is wrong.
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "cron {text:?} needs 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let dow = day_names(fields[4]).map_err(|e| format!("cron {text:?}: {e}"))?;
        let quartz = format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3]);
        cron::Schedule::from_str(&quartz)
            .map(CronSchedule)
            .map_err(|e| format!("cron {text:?}: {e}"))
    }

    /// The first firing strictly after `after`, in `tz`.
    pub fn next_after(&self, after: i64, tz: Tz) -> Option<i64> {
        let start = tz.timestamp_millis_opt(after).single()?;
        self.0.after(&start).next().map(|t| t.timestamp_millis())
    }
}

/// Day-of-week numbers (Unix: 0–7, Sunday 0 and 7) as names; names and `*`, `?` pass.
fn day_names(field: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len() + 8);
    let mut digits = String::new();
    let mut after_slash = false;
    let flush = |digits: &mut String, out: &mut String, step: bool| -> Result<(), String> {
        if digits.is_empty() {
            return Ok(());
        }
        if step {
            out.push_str(digits);
        } else {
            let n: usize = digits.parse().map_err(|_| format!("day of week {digits:?}"))?;
            let name = DAYS.get(n).ok_or_else(|| format!("day of week {n} is not 0–7"))?;
            out.push_str(name);
        }
        digits.clear();
        Ok(())
    };
    for ch in field.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        flush(&mut digits, &mut out, after_slash)?;
        after_slash = ch == '/';
        if ch == ',' {
            after_slash = false;
        }
        out.push(ch);
    }
    flush(&mut digits, &mut out, after_slash)?;
    if out.contains("-SUN") && field.contains('7') {
        // "5-7" (Friday to Sunday) would wrap in Quartz order.
        return Err("write a range ending on Sunday as a list, e.g. 5,6,0".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn at(tz: Tz, s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_local_timezone(tz)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn unix_weekday_numbers_mean_what_crontab_says() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-30 is a Monday.
        let monday_9 = CronSchedule::parse("0 9 * * 1").unwrap();
        let next = monday_9.next_after(at(tz, "2026-11-30 08:59"), tz).unwrap();
        assert_eq!(next, at(tz, "2026-11-30 09:00"));
        // Strictly after: at 09:00 the next is a week later.
        let after = monday_9.next_after(next, tz).unwrap();
        assert_eq!(after, at(tz, "2026-12-07 09:00"));
        let sunday = CronSchedule::parse("30 20 * * 0").unwrap();
        let t = tz
            .timestamp_millis_opt(sunday.next_after(next, tz).unwrap())
            .unwrap();
        assert_eq!(
            (t.weekday(), t.hour(), t.minute()),
            (chrono::Weekday::Sun, 20, 30)
        );
        let weekdays = CronSchedule::parse("0 8 * * 1-5").unwrap();
        let sat = at(tz, "2026-12-05 07:00");
        assert_eq!(weekdays.next_after(sat, tz).unwrap(), at(tz, "2026-12-07 08:00"));
    }

    #[test]
    fn bad_expressions_say_why() {
        assert!(CronSchedule::parse("0 9 * *").unwrap_err().contains("5 fields"));
        assert!(CronSchedule::parse("0 9 * * 8").unwrap_err().contains("0–7"));
        assert!(CronSchedule::parse("61 9 * * *").is_err());
        assert!(CronSchedule::parse("0 9 * * 5-7").is_err());
        assert!(CronSchedule::parse("*/15 * * * 1,3,5").is_ok());
    }
}
