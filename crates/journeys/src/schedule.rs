//! Schedule and date triggers (issue 6 §1): each active journey with one keeps a timer
//! `sched/<journey>/<version>` due at its next occurrence. When it fires, everyone the
//! occurrence concerns enters (run ids derived from the occurrence, so a firing repeated
//! after a crash enters nobody twice), then the timer moves to the next occurrence.
//!
//! Date triggers run daily at their time of day (shop time) for the date `days_before`
//! days ahead: birthdays (`birthday` trait, `YYYY-MM-DD` or `MM-DD`; 29 February counts
//! on 28 February in other years), other date traits, unused coupons expiring that day
//! (F14), first-order anniversaries, and lapses of N calendar months without a sign-in
//! (R3.5 win-back).

use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use flywheel_core::time::from_millis;
use flywheel_store::conn::Conn;
use flywheel_store::timers::{self, TimerRow};
use serde_json::json;

use crate::db::{self, Status};
use crate::definition::{DateKind, Journey, Trigger, WaitUntil};
use crate::engine::Engine;
use crate::tail::{enter, Entry, EntryCtx};

/// Key prefix of schedule timers.
pub const PREFIX: &str = "sched/";

/// Users entered per transaction during a fan-out.
const CHUNK: usize = 500;

fn timer_key(name: &str, version: i64) -> String {
    format!("{PREFIX}{name}/{version}")
}

/// The next occurrence of a schedule or date trigger strictly after `after`.
pub fn next_occurrence(trigger: &Trigger, after: i64, tz: Tz) -> Option<i64> {
    match trigger {
        Trigger::Schedule(s) => match (&s.cron, &s.at) {
            (Some(c), _) => crate::cron::CronSchedule::parse(c).ok()?.next_after(after, tz),
            (None, Some(at)) => Some(at.timestamp_millis()).filter(|t| *t > after),
            (None, None) => None,
        },
        Trigger::Date(d) => Some(crate::walk::next_time(
            &WaitUntil {
                time: d.at,
                weekday: None,
            },
            after,
            tz,
        )),
        _ => None,
    }
}

/// Whether a stored date (`YYYY-MM-DD…` or `MM-DD`) falls on `day`'s month and day.
pub fn same_day_of_year(stored: &str, day: NaiveDate) -> bool {
    let s = stored.trim();
    let md = if s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-') {
        &s[5..10]
    } else if s.len() == 5 {
        s
    } else {
        return false;
    };
    let mut parts = md.split('-');
    let (Some(Ok(m)), Some(Ok(d))) = (
        parts.next().map(str::parse::<u32>),
        parts.next().map(str::parse::<u32>),
    ) else {
        return false;
    };
    if (m, d) == (day.month(), day.day()) {
        return true;
    }
    // 29 Feb in a year without one: on 28 Feb.
    (m, d) == (2, 29)
        && (day.month(), day.day()) == (2, 28)
        && NaiveDate::from_ymd_opt(day.year(), 2, 29).is_none()
}

fn day_bounds(day: NaiveDate, tz: Tz) -> (i64, i64) {
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(0, |t| t.timestamp_millis())
    };
    (start(day), start(day + Duration::days(1)))
}

/// Who a date trigger concerns on `day`: (user id, occurrence detail).
fn date_targets(
    c: &mut dyn Conn,
    kind: &DateKind,
    day: NaiveDate,
    now: i64,
    tz: Tz,
) -> flywheel_store::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    match kind {
        DateKind::Birthday | DateKind::Trait(_) => {
            let key = match kind {
                DateKind::Trait(t) => t.as_str(),
                _ => "birthday",
            };
            for t in db::trait_values(c, key)? {
                if t.value.as_str().is_some_and(|v| same_day_of_year(v, day)) {
                    if let Some(user) = db::user_of_profile(c, &t.profile_id)? {
                        out.push((user, String::new()));
                    }
                }
            }
        }
        DateKind::CouponExpiry => {
            // Unused coupons expiring from now to the end of the target day: a coupon
            // issued with less lead time than `days_before` is still reminded of, and the
            // run key (the coupon) keeps it to one reminder.
            let (_, to) = day_bounds(day, tz);
            for coupon in db::coupons_expiring(c, now, to)? {
                out.push((coupon.owner, coupon.coupon_id));
            }
        }
        DateKind::NoSignIn { months } => {
            let Some(cutoff) = day.checked_sub_months(chrono::Months::new(*months)) else {
                return Ok(out);
            };
            let (_, end) = day_bounds(cutoff, tz);
            for last in db::last_sign_ins(c)? {
                if last.at < end {
                    let date = from_millis(last.at).with_timezone(&tz).date_naive();
                    out.push((last.user_id, format!("lapsed:{date}")));
                }
            }
        }
        DateKind::FirstOrderAnniversary => {
            for order in db::first_orders(c)? {
                let first = from_millis(order.at).with_timezone(&tz).date_naive();
                if first.year() < day.year() && same_day_of_year(&first.format("%Y-%m-%d").to_string(), day) {
                    out.push((order.user_id, format!("{}y", day.year() - first.year())));
                }
            }
        }
    }
    Ok(out)
}

impl Engine {
    /// Makes sure every active schedule or date journey has its timer.
    pub(crate) async fn ensure_schedules(&self) -> crate::Result<()> {
        let now = self.now();
        let tz = self.0.config.timezone;
        let wanted: Vec<(String, i64)> = {
            let defs = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
            defs.active()
                .filter_map(|(row, j)| {
                    next_occurrence(&j.trigger, now, tz).map(|at| (timer_key(&row.name, row.version), at))
                })
                .collect()
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let added = self
            .0
            .store
            .write_with(move |c| {
                let mut added = 0;
                for (key, at) in &wanted {
                    if timers::schedule(c, key, *at, "", now)? {
                        added += 1;
                    }
                }
                Ok(added)
            })
            .await?;
        if added > 0 {
            self.0.timers_due.notify_one();
        }
        Ok(())
    }

    /// Fires a schedule timer: enters everyone the occurrence concerns, then moves the
    /// timer to the next occurrence (or removes it: stale version, one-off, inactive).
    pub(crate) async fn fire_schedule(&self, t: &TimerRow) -> crate::Result<()> {
        let rest = &t.key[PREFIX.len()..];
        let (name, version) = rest
            .rsplit_once('/')
            .and_then(|(n, v)| v.parse::<i64>().ok().map(|v| (n.to_string(), v)))
            .ok_or_else(|| crate::Error::Invalid(format!("schedule timer {:?}", t.key)))?;
        let current = {
            let defs = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
            defs.current
                .get(&name)
                .filter(|(row, _)| row.version == version && row.status == Status::Active)
                .map(|(_, j)| j.clone())
        };
        let occurrence = t.due_at;
        if let Some(j) = &current {
            let users = self.occurrence_users(j, occurrence).await?;
            for chunk in users.chunks(CHUNK) {
                self.enter_users(j.clone(), version, chunk.to_vec(), occurrence)
                    .await?;
            }
        }
        let tz = self.0.config.timezone;
        let next = current.and_then(|j| next_occurrence(&j.trigger, occurrence.max(self.now()), tz));
        let key = t.key.clone();
        let now = self.now();
        self.0
            .store
            .write_with(move |c| {
                timers::complete(c, &key)?;
                if let Some(at) = next {
                    timers::schedule(c, &key, at, "", now)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// (user, occurrence detail) of everyone an occurrence concerns.
    async fn occurrence_users(&self, j: &Journey, occurrence: i64) -> crate::Result<Vec<(String, String)>> {
        let tz = self.0.config.timezone;
        match &j.trigger {
            Trigger::Date(d) => {
                let day = from_millis(occurrence).with_timezone(&tz).date_naive()
                    + Duration::days(i64::from(d.days_before));
                let kind = d.date.clone();
                let now = self.now();
                Ok(self
                    .0
                    .store
                    .read_with(move |c| date_targets(c, &kind, day, now, tz))
                    .await?)
            }
            Trigger::Schedule(s) => {
                let Some(audience) = &self.0.services.audience else {
                    return Ok(Vec::new());
                };
                let Some(expr) = s.audience.clone() else {
                    return Ok(Vec::new());
                };
                let users = audience
                    .members(&expr)
                    .map_err(|e| crate::Error::Invalid(e.to_string()))?
                    .into_iter()
                    .map(|u| (u, String::new()))
                    .collect();
                Ok(users)
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn enter_users(
        &self,
        j: Arc<Journey>,
        version: i64,
        users: Vec<(String, String)>,
        occurrence: i64,
    ) -> crate::Result<()> {
        let now = self.now();
        let tz = self.0.config.timezone;
        let engine = self.clone();
        let entered = self
            .0
            .store
            .write_with(move |c| {
                let mut n = 0u64;
                for (user, detail) in &users {
                    let profile =
                        flywheel_store::read::profile_id_of(c, &flywheel_core::Identity::User(user.clone()))?
                            .map(|p| p.0);
                    let probe = engine.probe(profile.clone());
                    let ctx = EntryCtx {
                        journey: &j,
                        version,
                        tz,
                        now,
                    };
                    let mut context = json!({"profile_id": profile, "occurrence": occurrence});
                    if matches!(&j.trigger, Trigger::Date(d) if d.date == DateKind::CouponExpiry) {
                        context["coupon_id"] = json!(detail);
                    }
                    let trigger = match &j.trigger {
                        Trigger::Date(d)
                            if matches!(d.date, DateKind::NoSignIn { .. } | DateKind::CouponExpiry) =>
                        {
                            format!("{PREFIX}{user}:{detail}")
                        }
                        _ => format!("{PREFIX}@{occurrence}:{user}:{detail}"),
                    };
                    // A date journey's key is the occurrence (`once` then means once per
                    // date); a lapse's is the last sign-in (once per lapse).
                    let key = match &j.trigger {
                        Trigger::Date(d) if matches!(d.date, DateKind::NoSignIn { .. }) => detail.clone(),
                        Trigger::Date(d) if d.date == DateKind::CouponExpiry => format!("coupon:{detail}"),
                        Trigger::Date(_) => format!("{occurrence}{detail}"),
                        _ => String::new(),
                    };
                    if enter(c, &ctx, user, &key, &trigger, context, &probe)? == Entry::Entered {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await?;
        self.0
            .stats
            .entered
            .fetch_add(entered, std::sync::atomic::Ordering::Relaxed);
        if entered > 0 {
            self.0.timers_due.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_match_by_month_and_day_with_leap_days_on_28_february() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(same_day_of_year("1990-11-30", d("2026-11-30")));
        assert!(same_day_of_year("11-30", d("2026-11-30")));
        assert!(!same_day_of_year("1990-11-29", d("2026-11-30")));
        assert!(same_day_of_year("2000-02-29", d("2027-02-28")));
        assert!(!same_day_of_year("2000-02-29", d("2028-02-28")));
        assert!(same_day_of_year("2000-02-29", d("2028-02-29")));
        assert!(!same_day_of_year("garbage", d("2026-11-30")));
    }
}
