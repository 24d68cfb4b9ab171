//! The funnel report: the steps' events of the period (plus the window after it) loaded
//! into [`EventColumns`] and run through [`columnar::funnel`] (rules there).

use flywheel_audience::plan::{closest, STANDARD_EVENTS};
use flywheel_core::ErrorCode;
use flywheel_store::analytics::event_names;
use flywheel_store::analytics::funnel as stored;
use flywheel_store::conn::Conn;

use super::{Error, Filter, Reports, Result};
use crate::columnar::{self, EventColumnsBuilder, FunnelReport};

/// Customer track events named one of `steps` in `[from, to)`: (person, ts, name).
fn step_events(
    conn: &mut dyn Conn,
    steps: &[String],
    from: i64,
    to: i64,
) -> flywheel_store::Result<Vec<(String, i64, String)>> {
    Ok(stored::step_events(conn, steps, from, to)?
        .into_iter()
        .map(|e| (e.person, e.at, e.name))
        .collect())
}

/// A JSON value as a breakdown value: strings unquoted, other scalars as JSON text;
/// `None` for null (no value).
fn shown(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Each person's value of profile trait `key` (JSON strings unquoted).
fn trait_values(conn: &mut dyn Conn, key: &str) -> flywheel_store::Result<Vec<(String, String)>> {
    Ok(stored::trait_values(conn, key)?
        .into_iter()
        .map(|t| {
            let value = match serde_json::from_str::<serde_json::Value>(&t.value) {
                Ok(v) => shown(&v).unwrap_or(t.value),
                Err(_) => t.value,
            };
            (t.person, value)
        })
        .collect())
}

/// Whether a breakdown names a property of the step-1 event (`properties.…`,
/// `context.…`) rather than a profile trait.
fn is_event_property(breakdown: &str) -> bool {
    breakdown.starts_with("properties.") || breakdown.starts_with("context.")
}

/// Each person's value of the event property at dotted `path` on their first `step`
/// event in `[from, to)` (first touch: the entry that brought them into the funnel
/// first); users whose first such event lacks it have no value.
fn first_step_values(
    conn: &mut dyn Conn,
    step: &str,
    path: &str,
    from: i64,
    to: i64,
) -> flywheel_store::Result<Vec<(String, String)>> {
    let rows = stored::step_bodies(conn, step, from, to)?;
    let mut first: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    for r in rows {
        if first.contains_key(&r.person) {
            continue;
        }
        let value = serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|body| path.split('.').try_fold(body, |v, key| v.get(key).cloned()))
            .and_then(|v| shown(&v));
        first.insert(r.person, value);
    }
    Ok(first.into_iter().filter_map(|(u, v)| v.map(|v| (u, v))).collect())
}

/// The longest conversion window, hours (a leap year).
pub const MAX_WINDOW_HOURS: f64 = 24.0 * 366.0;

/// A conversion window given in hours, in ms: in (0, [`MAX_WINDOW_HOURS`]], else refused
/// (`invalid_funnel`). The CLI's `--window-hours` and the API's `window_hours` read it.
pub fn window_of_hours(hours: f64) -> Result<i64> {
    if hours.is_nan() || hours <= 0.0 || hours > MAX_WINDOW_HOURS {
        return Err(Error::refused(
            ErrorCode::InvalidFunnel,
            format!("the window must be more than 0 and at most {MAX_WINDOW_HOURS} hours"),
        ));
    }
    Ok((hours * 3_600_000.0).round() as i64)
}

/// Refuses a funnel with no steps or more than [`columnar::MAX_STEPS`], or a window that
/// is not positive (`invalid_funnel`).
pub(super) fn check_shape(steps: &[String], window_ms: i64) -> Result<()> {
    if steps.is_empty() || steps.len() > columnar::MAX_STEPS {
        return Err(Error::refused(
            ErrorCode::InvalidFunnel,
            format!("a funnel has 1–{} steps", columnar::MAX_STEPS),
        ));
    }
    if window_ms <= 0 {
        return Err(Error::refused(
            ErrorCode::InvalidFunnel,
            "the window must be positive",
        ));
    }
    Ok(())
}

/// The refusal of step `name`, never received: with the closest of `known` (received
/// names and the standard e-commerce events) when one is near enough.
fn unknown_step(name: &str, known: &[String]) -> Error {
    let hint = closest(
        name,
        known
            .iter()
            .map(String::as_str)
            .chain(STANDARD_EVENTS.iter().copied()),
    );
    Error::refused(
        ErrorCode::UnknownFunnelStep,
        format!(
            "unknown funnel step {name:?}: no such event has been received and it is not a standard e-commerce event{}",
            hint.map(|h| format!(" (did you mean {h:?}?)")).unwrap_or_default()
        ),
    )
}

impl Reports {
    /// Refuses a funnel whose steps name an event never received that is not a standard
    /// e-commerce event either (`unknown_funnel_step`, with a "did you mean"): a misspelt
    /// step would otherwise silently count nobody.
    pub async fn check_steps(&self, steps: &[String]) -> Result<()> {
        let names: Vec<String> = steps
            .iter()
            .filter(|s| !STANDARD_EVENTS.contains(&s.as_str()))
            .cloned()
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let unknown = self
            .store
            .read_with(move |c| {
                for name in &names {
                    if !event_names::seen(c, name)? {
                        return Ok(Some((name.clone(), event_names::track_names(c)?)));
                    }
                }
                Ok(None)
            })
            .await?;
        match unknown {
            Some((name, known)) => Err(unknown_step(&name, &known)),
            None => Ok(()),
        }
    }

    /// The ordered funnel of `steps` for users entering in the filter's period, within
    /// `window_ms`, optionally broken down by `breakdown`: a profile trait (`gender`), or
    /// a property of the step-1 event (`properties.category`, `context.campaign.source`)
    /// as it was on the user's first step-1 event in the period.
    /// Refused: no steps, more than the engine's maximum, a window that is not
    /// positive, a step never received ([`Reports::check_steps`]).
    pub async fn funnel(
        &self,
        f: &Filter,
        steps: &[String],
        window_ms: i64,
        breakdown: Option<&str>,
    ) -> Result<FunnelReport> {
        check_shape(steps, window_ms)?;
        self.check_steps(steps).await?;
        let f = &self.touched_scope(f).await?;
        let p = f.period;
        let (names, key) = (steps.to_vec(), breakdown.map(str::to_string));
        let to = p.to.saturating_add(window_ms);
        let (events, mut traits) = self
            .store
            .read_with(move |c| {
                let traits = match &key {
                    Some(k) if is_event_property(k) => first_step_values(c, &names[0], k, p.from, p.to)?,
                    Some(k) => trait_values(c, k)?,
                    None => Vec::new(),
                };
                Ok((step_events(c, &names, p.from, to)?, traits))
            })
            .await?;
        let mut b = EventColumnsBuilder::with_capacity(events.len());
        let mut ids = Vec::with_capacity(steps.len());
        for s in steps {
            ids.push(
                b.name(s)
                    .map_err(|e| Error::refused(ErrorCode::InvalidFunnel, e.to_string()))?,
            );
        }
        for (user, ts, name) in events.iter().filter(|(u, _, _)| f.user(u)) {
            b.push(user, *ts, name)
                .map_err(|e| Error::refused(ErrorCode::InvalidFunnel, e.to_string()))?;
        }
        if let Some(k) = breakdown {
            // Values are interned in order, and the groups follow it: sorted, so the
            // groups come in value order whatever order the store answered in.
            traits.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let seen: std::collections::HashSet<&str> = events.iter().map(|(u, _, _)| u.as_str()).collect();
            for (user, value) in traits
                .iter()
                .filter(|(u, _)| seen.contains(u.as_str()) && f.user(u))
            {
                let u = b.user(user);
                b.set_property(k, u, value);
            }
        }
        let cols = b.build(self.tz);
        let prop = breakdown.and_then(|k| cols.property(k));
        columnar::funnel(&cols, &ids, window_ms, p, prop)
            .map_err(|e| Error::refused(ErrorCode::InvalidFunnel, e.to_string()))
    }
}
