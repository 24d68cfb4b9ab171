//! Walking a run through its journey's steps without side effects: waits, conditions,
//! splits and exits are decided here; a step with an effect (send, coupon, points, tag,
//! trait, webhook) stops the walk so the engine can do it exactly once.

use chrono::{Datelike, Duration, TimeZone};
use chrono_tz::Tz;
use flywheel_core::time::from_millis;

use crate::db::{RunRow, RunState};
use crate::definition::{Action, Journey, Target, WaitUntil};
use crate::split::Split;

/// Where a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Park {
    /// The run waits (until a time, and possibly for an event).
    Wait {
        /// When the wait ends (ms).
        until: i64,
        /// The awaited event.
        event: Option<String>,
    },
    /// The step at this index has an effect to do.
    Effect(usize),
    /// The run ended in this state (`done`, `exited`, `holdout`).
    End(RunState),
}

/// Answers the questions a walk asks about the user.
pub trait Probe {
    /// Whether the user is in the segment expression now (unknown expressions: false).
    fn holds(&self, expression: &str) -> bool;
}

/// Resolves what a due timer means for a waiting run: a plain wait goes on to the next
/// step, a wait for an event that did not come goes to its timeout branch. Runs that are
/// not waiting are left as they are.
pub fn wake(journey: &Journey, run: &mut RunRow) {
    if run.state != RunState::Waiting {
        return;
    }
    let Some(step) = usize::try_from(run.step)
        .ok()
        .and_then(|i| journey.steps.get(i).map(|s| (i, s)))
    else {
        run.state = RunState::Active;
        return;
    };
    let (i, step) = step;
    let next = match &step.action {
        Action::WaitForEvent { on_timeout, .. } => {
            push_path(run, &format!("{}:timeout", step.id));
            journey.target(on_timeout)
        }
        _ => journey.after(i),
    };
    move_to(run, next);
}

/// Moves a waiting run on because its awaited event came.
pub fn event_came(journey: &Journey, run: &mut RunRow) -> bool {
    let Some((_, step)) = usize::try_from(run.step)
        .ok()
        .and_then(|i| journey.steps.get(i).map(|s| (i, s)))
    else {
        return false;
    };
    let Action::WaitForEvent { on_event, .. } = &step.action else {
        return false;
    };
    push_path(run, &format!("{}:event", step.id));
    let next = journey.target(on_event);
    move_to(run, next);
    true
}

fn move_to(run: &mut RunRow, target: Target) {
    run.state = RunState::Active;
    run.wait_event = None;
    run.wait_until = None;
    run.step = match target {
        Target::Step(j) => j as i64,
        Target::End => -1,
    };
}

/// Appends a step id to the run's path.
pub fn push_path(run: &mut RunRow, id: &str) {
    if !run.path.is_empty() {
        run.path.push('/');
    }
    run.path.push_str(id);
}

/// Walks an active run from its current step until a wait, an effect or the end,
/// updating its position, path and state.
pub fn walk(journey: &Journey, run: &mut RunRow, now: i64, tz: Tz, probe: &dyn Probe) -> Park {
    // At most one visit per step (the graph is acyclic), so this always ends.
    for _ in 0..=journey.steps.len() {
        let Some(i) = usize::try_from(run.step)
            .ok()
            .filter(|i| *i < journey.steps.len())
        else {
            return end(run, RunState::Done, now);
        };
        let step = &journey.steps[i];
        let next = match &step.action {
            Action::Wait { duration } => {
                push_path(run, &step.id);
                return wait(run, now.saturating_add(duration.millis()), None);
            }
            Action::WaitUntil(until) => {
                push_path(run, &step.id);
                return wait(run, next_time(until, now, tz), None);
            }
            Action::WaitForEvent { event, timeout, .. } => {
                push_path(run, &step.id);
                return wait(
                    run,
                    now.saturating_add(timeout.millis()),
                    Some(event.name.clone()),
                );
            }
            Action::Condition {
                expression,
                then,
                otherwise,
            } => {
                let yes = probe.holds(expression);
                push_path(run, &format!("{}:{}", step.id, if yes { "then" } else { "else" }));
                journey.target(if yes { then } else { otherwise })
            }
            Action::Split { branches, holdout } => {
                let mut weights: Vec<(String, u32)> =
                    branches.iter().map(|b| (b.name.clone(), b.percent.0)).collect();
                weights.push(("holdout".into(), holdout.0));
                let split = Split { branches: weights };
                let chosen = split
                    .branch_for(&journey.name, &step.id, &run.user_id)
                    .unwrap_or("holdout")
                    .to_string();
                push_path(run, &format!("{}:{chosen}", step.id));
                match branches.iter().find(|b| b.name == chosen) {
                    Some(b) => journey.target(&b.next),
                    None => return end(run, RunState::Holdout, now),
                }
            }
            Action::Exit => {
                push_path(run, &step.id);
                return end(run, RunState::Exited, now);
            }
            _ => return Park::Effect(i),
        };
        match next {
            Target::Step(j) => run.step = j as i64,
            Target::End => return end(run, RunState::Done, now),
        }
    }
    end(run, RunState::Done, now)
}

fn wait(run: &mut RunRow, until: i64, event: Option<String>) -> Park {
    run.state = RunState::Waiting;
    run.wait_until = Some(until);
    run.wait_event = event.clone();
    Park::Wait { until, event }
}

fn end(run: &mut RunRow, state: RunState, now: i64) -> Park {
    run.state = state;
    run.wait_event = None;
    run.wait_until = None;
    run.ended_at = Some(now);
    Park::End(state)
}

/// The first instant after `now` at the wait's time of day (and weekday), shop time.
/// A time skipped by a daylight-saving jump moves to the first valid instant after it.
pub fn next_time(until: &WaitUntil, now: i64, tz: Tz) -> i64 {
    let local = from_millis(now).with_timezone(&tz);
    let mut day = local.date_naive();
    for _ in 0..9 {
        let weekday_ok = until.weekday.is_none_or(|w| day.weekday() == w);
        if weekday_ok {
            let naive = day.and_time(until.time);
            let candidate = tz
                .from_local_datetime(&naive)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(naive + Duration::hours(1))).earliest())
                .map(|t| t.timestamp_millis());
            if let Some(t) = candidate.filter(|t| *t > now) {
                return t;
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::Journey;
    use serde_json::json;

    struct Always(bool);
    impl Probe for Always {
        fn holds(&self, _: &str) -> bool {
            self.0
        }
    }

    fn journey() -> Journey {
        Journey::from_json(
            &json!({
                "name": "j",
                "trigger": {"event": {"name": "Signed Up"}},
                "steps": [
                    {"id": "c", "type": "condition", "if": "orders(all) > 0", "then": "w", "else": "s"},
                    {"id": "s", "type": "split", "branches": [{"name": "a", "percent": 90, "next": "w"}], "holdout": 10},
                    {"id": "w", "type": "wait", "duration": "1h"},
                    {"id": "tag", "type": "add_tag", "tag": "x"},
                    {"id": "bye", "type": "exit"}
                ]
            })
            .to_string(),
        )
        .unwrap()
    }

    fn run(user: &str) -> RunRow {
        RunRow {
            id: "r".into(),
            journey: "j".into(),
            version: 1,
            user_id: user.into(),
            key: String::new(),
            step: 0,
            state: RunState::Active,
            wait_event: None,
            wait_until: None,
            path: String::new(),
            context: json!({}),
            entered_at: 0,
            ended_at: None,
            converted_at: None,
        }
    }

    #[test]
    fn a_walk_stops_at_waits_and_effects_and_ends_at_exit() {
        let j = journey();
        let mut r = run("u1");
        assert_eq!(
            walk(&j, &mut r, 1000, Tz::UTC, &Always(true)),
            Park::Wait {
                until: 3_601_000,
                event: None
            }
        );
        assert_eq!(r.path, "c:then/w");
        wake(&j, &mut r);
        assert_eq!(
            walk(&j, &mut r, 3_601_000, Tz::UTC, &Always(true)),
            Park::Effect(3)
        );
        r.step = 4;
        assert_eq!(
            walk(&j, &mut r, 3_601_001, Tz::UTC, &Always(true)),
            Park::End(RunState::Exited)
        );
        assert_eq!(r.ended_at, Some(3_601_001));
    }

    #[test]
    fn about_a_tenth_are_held_out_and_always_the_same_ones() {
        let j = journey();
        let held: Vec<bool> = (0..2000)
            .map(|i| {
                let mut r = run(&format!("u{i}"));
                walk(&j, &mut r, 0, Tz::UTC, &Always(false)) == Park::End(RunState::Holdout)
            })
            .collect();
        let n = held.iter().filter(|h| **h).count();
        assert!((140..=260).contains(&n), "{n} of 2000 held out");
        let again = (0..2000).filter(|i| {
            let mut r = run(&format!("u{i}"));
            walk(&j, &mut r, 0, Tz::UTC, &Always(false)) == Park::End(RunState::Holdout)
        });
        assert_eq!(again.count(), n);
    }

    #[test]
    fn waiting_until_a_time_of_day_is_strictly_later_in_shop_time() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_local_timezone(tz)
                .unwrap()
                .timestamp_millis()
        };
        let nine = WaitUntil {
            time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            weekday: None,
        };
        assert_eq!(
            next_time(&nine, at("2026-11-30 08:59"), tz),
            at("2026-11-30 09:00")
        );
        assert_eq!(
            next_time(&nine, at("2026-11-30 09:00"), tz),
            at("2026-12-01 09:00")
        );
        let friday = WaitUntil {
            weekday: Some(chrono::Weekday::Fri),
            ..nine
        };
        assert_eq!(
            next_time(&friday, at("2026-11-30 10:00"), tz),
            at("2026-12-04 09:00")
        );
    }
}
