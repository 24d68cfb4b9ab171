//! Journey definitions (issue 6 §1): what starts a journey, who may enter, and the steps
//! a user walks — written as JSON (or YAML), stored as numbered versions.
//!
//! A definition is a list of steps, each with an `id`. A step goes on to its `next`, or
//! to the step listed after it; branching steps name their targets. `exit` ends the
//! run. The graph must be acyclic: a step's effect is done once per run, keyed by
//! (run, step), so a step is visited at most once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use flywheel_channels::{Category, Channel, MessageTemplate, VariableCatalog};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::QuietHours;

/// Why a definition was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefinitionError {
    /// The text is not a definition (syntax or shape), with the parser's message.
    #[error("invalid journey definition: {0}")]
    Parse(String),
    /// A rule of definitions is broken (named step, what is wrong).
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> DefinitionError {
    DefinitionError::Invalid(msg.into())
}

/// A span of time written `30s`, `15m`, `2h`, `7d` or `2w` (also `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl Span {
    /// Milliseconds.
    pub fn millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for ch in t.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("duration {s:?}: a number must come before {ch:?}"))?;
            digits.clear();
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(format!("duration {s:?}: unknown unit {ch:?} (use s, m, h, d, w)")),
            };
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("duration {s:?} is too long"))?;
        }
        if !digits.is_empty() {
            return Err(format!(
                "duration {s:?}: the number {digits} needs a unit (s, m, h, d, w)"
            ));
        }
        Ok(Span(Duration::from_secs(total)))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match s {
            s if s > 0 && s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s > 0 && s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s if s > 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A condition on one event property (dotted path into `properties`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PropertyTest {
    /// Equal (JSON equality; numbers compare as numbers).
    Eq(Value),
    /// Not equal.
    Ne(Value),
    /// Greater than (numbers).
    Gt(f64),
    /// At least (numbers).
    Gte(f64),
    /// Less than (numbers).
    Lt(f64),
    /// At most (numbers).
    Lte(f64),
    /// One of these values.
    In(Vec<Value>),
    /// Present and not null (`true`) or absent/null (`false`).
    Exists(bool),
    /// A string containing this text.
    Contains(String),
}

impl PropertyTest {
    /// Whether `value` (absent: `None`) passes.
    pub fn holds(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        let num = value.and_then(number_of);
        match self {
            PropertyTest::Exists(want) => value.is_some() == *want,
            PropertyTest::Eq(want) => value.is_some_and(|v| same(v, want)),
            PropertyTest::Ne(want) => !value.is_some_and(|v| same(v, want)),
            PropertyTest::Gt(n) => num.is_some_and(|v| v > *n),
            PropertyTest::Gte(n) => num.is_some_and(|v| v >= *n),
            PropertyTest::Lt(n) => num.is_some_and(|v| v < *n),
            PropertyTest::Lte(n) => num.is_some_and(|v| v <= *n),
            PropertyTest::In(list) => value.is_some_and(|v| list.iter().any(|w| same(v, w))),
            PropertyTest::Contains(text) => value
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains(text.as_str())),
        }
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (number_of(a), number_of(b)) {
        (Some(x), Some(y)) if a.is_number() || b.is_number() => x == y,
        _ => a == b,
    }
}

/// Looks up a dotted path (`cart.id`, `products.0.sku`) in a JSON object.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, part| match v {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Property conditions, all of which must hold.
pub type Filters = BTreeMap<String, PropertyTest>;

/// Whether an event's properties pass every filter.
pub fn filters_hold(filters: &Filters, properties: &Value) -> bool {
    filters.iter().all(|(path, t)| t.holds(lookup(properties, path)))
}

/// An event trigger or awaited event: its name and property filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    /// Event name (`Product Added`).
    pub name: String,
    /// Property conditions (`{"value": {"gte": 100}}`).
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: Filters,
}

impl EventMatch {
    /// Whether an event of `name` with `properties` matches.
    pub fn matches(&self, name: &str, properties: &Value) -> bool {
        self.name == name && filters_hold(&self.filters, properties)
    }
}

/// Segment or tag transitions that start a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceChange {
    /// The user entered the segment / got the tag.
    Entered,
    /// The user left the segment / lost the tag.
    Exited,
}

/// A schedule: a cron expression (5 fields, shop timezone) or one instant, entering
/// everyone in `audience` (a segment expression; absent: every profile with a user id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `minute hour day-of-month month day-of-week`, e.g. `0 9 * * 1` (Mondays 09:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// One run at this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Who enters (a segment expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// A date that comes round: every day at `at` (shop time), users whose date is
/// `days_before` days ahead enter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateKind {
    /// The `birthday` trait (`YYYY-MM-DD` or `MM-DD`); 29 Feb counts on 28 Feb in other years.
    Birthday,
    /// An unused coupon the user holds expires within `days_before` days (F14: lead time
    /// 3 days in the seed template); one run per coupon.
    CouponExpiry,
    /// The anniversary of the user's first paid order.
    FirstOrderAnniversary,
    /// Any date trait (`YYYY-MM-DD…`), its month and day each year.
    Trait(String),
    /// No sign-in for this many **calendar** months (R3.5 win-back: "3個月未登錄"): the
    /// shop-local date of the last `Signed In`/`Signed Up`/`Logged In` is on or before
    /// today minus the months (clamped to the month's end). A user enters once per lapse
    /// (the run key is the last sign-in date).
    NoSignIn {
        /// Calendar months (the seed's 3 by default in the win-back template).
        months: u32,
    },
}

/// A date trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateTrigger {
    /// Which date.
    pub date: DateKind,
    /// How many days before the date users enter (0: on the day).
    #[serde(default)]
    pub days_before: u32,
    /// Time of day (shop time) the daily check runs; default 09:00.
    #[serde(default = "nine")]
    pub at: NaiveTime,
}

fn nine() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()
}

/// What starts a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A tracked event (with property filters).
    Event(EventMatch),
    /// Entering or leaving a saved segment.
    Segment {
        /// Segment name.
        name: String,
        /// Entered or exited.
        on: AudienceChange,
    },
    /// Getting or losing a tag.
    Tag {
        /// Tag name.
        name: String,
        /// Added (entered) or removed (exited).
        on: AudienceChange,
    },
    /// A schedule.
    Schedule(Schedule),
    /// A date trait coming round.
    Date(DateTrigger),
}

/// Who may enter again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EntryPolicy {
    /// A user (per key, in keyed journeys) enters once, ever.
    Once,
    /// Every trigger enters, unless the user (key) is in the journey now.
    #[default]
    EveryTime,
    /// Like `every_time`, and only when the last entry is at least this long ago.
    Cooldown(Span),
}

/// A goal: the event that counts as conversion (ends the run when `exit` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// The event.
    #[serde(flatten)]
    pub event: EventMatch,
    /// In keyed journeys, only an event carrying the run's key counts.
    #[serde(default)]
    pub same_key: bool,
    /// Reaching the goal ends the run (default true).
    #[serde(default = "yes")]
    pub exit: bool,
}

fn yes() -> bool {
    true
}

/// A branch of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Branch name (shown in reports).
    pub name: String,
    /// Share in percent (all branches and the holdout sum to 100).
    pub percent: Percent,
    /// Step the branch goes to.
    pub next: String,
}

/// A percentage with at most two decimals, compared exactly (basis points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percent(pub u32);

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 100.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Percent, D::Error> {
        let p = f64::deserialize(d)?;
        let bp = (p * 100.0).round();
        if !(0.0..=10_000.0).contains(&bp) || ((p * 100.0) - bp).abs() > 1e-6 {
            return Err(serde::de::Error::custom(format!(
                "percent {p} must be between 0 and 100 with at most two decimals"
            )));
        }
        Ok(Percent(bp as u32))
    }
}

/// A wait until a time of day (and optionally a weekday), shop time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    /// Time of day.
    pub time: NaiveTime,
    /// Weekday (`Mon`…`Sun`); absent: the next such time on any day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<Weekday>,
}

/// A message step: channels in order of preference (the first reachable, consenting
/// one is used), category, and the template per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// Channels by preference (`["push", "sms"]`: push, else SMS).
    pub channels: Vec<Channel>,
    /// Marketing (caps, quiet hours, consent needed) or transactional.
    #[serde(default = "marketing")]
    pub category: Category,
    /// Subject (email) or title (push, WeChat).
    #[serde(default)]
    pub subject: String,
    /// Email HTML body.
    #[serde(default)]
    pub html: String,
    /// Plain text (email text part, SMS, push body, WeChat, webhook).
    #[serde(default)]
    pub text: String,
    /// Send at the user's most active hour (R5.9) instead of at once.
    #[serde(default)]
    pub at_active_hour: bool,
    /// Campaign name for attribution (default: the journey name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

impl SendStep {
    /// The step's template parts (empty subject or HTML: none).
    pub fn source(&self) -> flywheel_channels::TemplateSource {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        flywheel_channels::TemplateSource {
            subject: some(&self.subject),
            html: some(&self.html),
            text: self.text.clone(),
        }
    }

    /// The step's template, compiled in this thread and checked against `catalog`.
    pub fn template(
        &self,
        catalog: &VariableCatalog,
    ) -> Result<MessageTemplate, flywheel_channels::TemplateError> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        MessageTemplate::compile(
            some(&self.subject).as_deref(),
            some(&self.html).as_deref(),
            &self.text,
            catalog,
        )
    }
}

fn marketing() -> Category {
    Category::Marketing
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Wait a duration.
    Wait {
        /// How long.
        duration: Span,
    },
    /// Wait until a time of day / weekday (shop time).
    WaitUntil(WaitUntil),
    /// Wait for an event; go to `on_event` when it comes, to `on_timeout` when not.
    WaitForEvent {
        /// The awaited event.
        #[serde(flatten)]
        event: EventMatch,
        /// In keyed journeys, only an event carrying the run's key counts (default true).
        #[serde(default = "yes")]
        same_key: bool,
        /// How long to wait.
        timeout: Span,
        /// Step when the event comes (`exit` ends the run).
        on_event: String,
        /// Step when it does not.
        on_timeout: String,
    },
    /// Branch on a segment expression evaluated for the user now.
    Condition {
        /// Segment expression (`spend(30d) > 1000`).
        #[serde(rename = "if")]
        expression: String,
        /// Step when it holds.
        then: String,
        /// Step when it does not.
        #[serde(rename = "else")]
        otherwise: String,
    },
    /// Random split; the holdout share exits at once, sending nothing, and is kept for
    /// measuring uplift.
    Split {
        /// Branches with their shares.
        branches: Vec<Branch>,
        /// Holdout share in percent.
        #[serde(default)]
        holdout: Percent,
    },
    /// Send a message.
    Send(Box<SendStep>),
    /// Issue a coupon from a template (the coupon is available to later messages as `coupon`).
    Coupon {
        /// Coupon template id.
        template: String,
        /// What the coupon covers when not what its template says: `cart`, the products
        /// left in the cart the run is keyed by (R3.6 "推送加購商品的優惠券", fixture F5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<CouponScope>,
    },
    /// Grant the member tier's birthday perk (R7.6, F17: a higher tier's is worth at
    /// least a lower one's), once per user per year; later messages see it as `perk`.
    BirthdayPerk,
    /// Award points.
    Points {
        /// How many.
        amount: i64,
        /// Ledger reason.
        #[serde(default = "journey_reason")]
        reason: String,
    },
    /// Add a manual tag.
    AddTag {
        /// Tag.
        tag: String,
    },
    /// Remove a manual tag.
    RemoveTag {
        /// Tag.
        tag: String,
    },
    /// Set a profile trait (recorded as an `identify` event).
    SetTrait {
        /// Trait name.
        name: String,
        /// Value.
        value: Value,
    },
    /// POST the run to a URL (signed like webhook providers).
    Webhook {
        /// URL.
        url: String,
    },
    /// End the run.
    Exit,
}

/// A coupon step's own scope ([`Action::Coupon`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponScope {
    /// The products the customer added to the run's cart (`Product Added` events carrying
    /// the run's key) and neither removed from it (`Product Removed` with that key) nor
    /// bought since (`Order Completed`). Needs a keyed journey; an empty cart issues no
    /// coupon.
    Cart,
}

fn journey_reason() -> String {
    "journey".into()
}

/// A step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the journey.
    pub id: String,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
    /// The step after it (default: the next in the list; after the last, the run ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A journey definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journey {
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// What starts it.
    pub trigger: Trigger,
    /// Keyed journeys: the trigger event property holding the business key
    /// (`cart_id`); an instance runs per key, and awaited events must carry the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Who may enter again.
    #[serde(default)]
    pub entry: EntryPolicy,
    /// At most this many runs in the journey at once; further entries are refused (logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u64>,
    /// Conversion event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// Only users in this segment expression enter (checked at entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Quiet hours for this journey's marketing sends (default: the shop's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// The steps; the first is where runs start.
    pub steps: Vec<Step>,
}

/// Where a step goes: a step index, or the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Step at this index.
    Step(usize),
    /// The run ends.
    End,
}

impl Journey {
    /// Parses a JSON definition.
    pub fn from_json(text: &str) -> Result<Journey, DefinitionError> {
        serde_json::from_str(text).map_err(|e| DefinitionError::Parse(e.to_string()))
    }

    /// Parses a definition written in JSON (text starting with `{`) or YAML.
    pub fn parse(text: &str) -> Result<Journey, DefinitionError> {
        if text.trim_start().starts_with('{') {
            return Journey::from_json(text);
        }
        // Through a JSON value: YAML maps then read exactly as JSON objects do (serde's
        // YAML would otherwise want `!tags` for the trigger and entry variants).
        let value: serde_json::Value =
            serde_norway::from_str(text).map_err(|e| DefinitionError::Parse(format!("YAML: {e}")))?;
        serde_json::from_value(value).map_err(|e| DefinitionError::Parse(e.to_string()))
    }

    /// Checks the rules ([`Journey::validate_rules`]) and compiles every template in this
    /// thread against `catalog` (unknown variables are errors here, not at send time).
    /// The server checks templates in its render sandbox instead (compiling folds
    /// constants, which a hostile template can make huge).
    pub fn validate(&self, catalog: &VariableCatalog) -> Result<(), DefinitionError> {
        self.validate_rules()?;
        for s in &self.steps {
            if let Action::Send(send) = &s.action {
                send.template(catalog)
                    .map_err(|e| invalid(format!("step {:?}: {e}", s.id)))?;
            }
        }
        Ok(())
    }

    /// Checks the rules: a name of 1–100 characters, unique step ids, every target a
    /// step (or `exit`), no cycle, split shares summing to 100, send steps with the parts
    /// their channels need, and a keyed journey triggered by an event. Templates are not
    /// compiled here.
    pub fn validate_rules(&self) -> Result<(), DefinitionError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.contains('/') {
            return Err(invalid("journey name must be 1–100 characters without '/'"));
        }
        if self.steps.is_empty() {
            return Err(invalid("a journey needs at least one step"));
        }
        if self.key.is_some() && !matches!(self.trigger, Trigger::Event(_)) {
            return Err(invalid(
                "`key` needs an event trigger (the key is read from the trigger event)",
            ));
        }
        if let Trigger::Schedule(s) = &self.trigger {
            if s.audience.is_none() {
                return Err(invalid(
                    "trigger.schedule needs an `audience` (a segment expression naming who enters)",
                ));
            }
            match (&s.cron, &s.at) {
                (Some(c), None) => {
                    crate::cron::CronSchedule::parse(c)
                        .map_err(|e| invalid(format!("trigger.schedule.cron: {e}")))?;
                }
                (None, Some(_)) => {}
                _ => return Err(invalid("trigger.schedule needs exactly one of `cron` and `at`")),
            }
        }
        let mut ids = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if s.id.is_empty() || s.id == "exit" || s.id.contains('/') {
                return Err(invalid(format!(
                    "step id {:?} is not allowed (non-empty, not `exit`, no '/')",
                    s.id
                )));
            }
            if ids.insert(s.id.as_str(), i).is_some() {
                return Err(invalid(format!("step id {:?} is used twice", s.id)));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            for t in self.targets_named(i) {
                if t != "exit" && !ids.contains_key(t) {
                    return Err(invalid(format!(
                        "step {:?} goes to {t:?}, which is not a step",
                        s.id
                    )));
                }
            }
            self.validate_step(s)?;
        }
        self.check_acyclic()
    }

    fn validate_step(&self, s: &Step) -> Result<(), DefinitionError> {
        let at = |m: String| invalid(format!("step {:?}: {m}", s.id));
        match &s.action {
            Action::Split { branches, holdout } => {
                let sum = branches.iter().map(|b| b.percent.0).sum::<u32>() + holdout.0;
                if sum != 10_000 || branches.is_empty() {
                    return Err(at(format!(
                        "split shares and holdout sum to {}%, they must sum to 100%",
                        f64::from(sum) / 100.0
                    )));
                }
            }
            Action::Send(send) => {
                if send.channels.is_empty() {
                    return Err(at("a send step needs at least one channel".into()));
                }
                if send.channels.contains(&Channel::Email)
                    && (send.subject.is_empty() || send.html.is_empty() && send.text.is_empty())
                {
                    return Err(at("an email needs a subject and an html or text body".into()));
                }
                if send.text.is_empty() && send.channels.iter().any(|c| *c != Channel::Email) {
                    return Err(at("sms, push, wechat and webhook sends need `text`".into()));
                }
            }
            Action::WaitForEvent { same_key: true, .. } if self.key.is_none() => {
                // Unkeyed journeys: any event of the user counts; `same_key` has nothing to compare.
            }
            Action::Coupon {
                scope: Some(CouponScope::Cart),
                ..
            } if self.key.is_none() => {
                return Err(at(
                    "`scope: cart` needs a keyed journey (`key`, e.g. cart_id): the run's key names the cart"
                        .into(),
                ));
            }
            Action::Points { amount, .. } if *amount <= 0 => {
                return Err(at("points must be a positive amount".into()));
            }
            Action::Webhook { url } if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(at(format!(
                    "webhook URL {url:?} must start with http:// or https://"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// The step names a step may go to (before resolving defaults).
    fn targets_named(&self, i: usize) -> Vec<&str> {
        let s = &self.steps[i];
        let mut out: Vec<&str> = match &s.action {
            Action::WaitForEvent {
                on_event, on_timeout, ..
            } => vec![on_event, on_timeout],
            Action::Condition { then, otherwise, .. } => vec![then, otherwise],
            Action::Split { branches, .. } => branches.iter().map(|b| b.next.as_str()).collect(),
            _ => Vec::new(),
        };
        if let Some(n) = &s.next {
            out.push(n);
        }
        out
    }

    /// Resolves a step name (`exit` ends).
    pub fn target(&self, name: &str) -> Target {
        if name == "exit" {
            return Target::End;
        }
        self.steps
            .iter()
            .position(|s| s.id == name)
            .map_or(Target::End, Target::Step)
    }

    /// Where step `i` goes when it simply continues: its `next`, else the next in the
    /// list, else the end.
    pub fn after(&self, i: usize) -> Target {
        match &self.steps[i].next {
            Some(n) => self.target(n),
            None if i + 1 < self.steps.len() => Target::Step(i + 1),
            None => Target::End,
        }
    }

    /// Every target index of step `i` (branches and continuation).
    fn successors(&self, i: usize) -> Vec<usize> {
        let mut out: Vec<Target> = match &self.steps[i].action {
            Action::WaitForEvent {
                on_event, on_timeout, ..
            } => vec![self.target(on_event), self.target(on_timeout)],
            Action::Condition { then, otherwise, .. } => vec![self.target(then), self.target(otherwise)],
            Action::Split { branches, .. } => branches.iter().map(|b| self.target(&b.next)).collect(),
            Action::Exit => Vec::new(),
            _ => vec![self.after(i)],
        };
        out.dedup();
        out.into_iter()
            .filter_map(|t| match t {
                Target::Step(j) => Some(j),
                Target::End => None,
            })
            .collect()
    }

    fn check_acyclic(&self) -> Result<(), DefinitionError> {
        // 0 unvisited, 1 on the stack, 2 done.
        let mut mark = vec![0u8; self.steps.len()];
        for start in 0..self.steps.len() {
            if mark[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, 0usize)];
            mark[start] = 1;
            while let Some((node, child)) = stack.pop() {
                let next = self.successors(node);
                if let Some(&j) = next.get(child) {
                    stack.push((node, child + 1));
                    match mark[j] {
                        1 => {
                            return Err(invalid(format!(
                                "steps form a loop through {:?}: a step runs at most once per run",
                                self.steps[j].id
                            )))
                        }
                        0 => {
                            mark[j] = 1;
                            stack.push((j, 0));
                        }
                        _ => {}
                    }
                } else {
                    mark[node] = 2;
                }
            }
        }
        Ok(())
    }

    /// Names of events runs of this journey wait for or convert on.
    pub fn awaited_events(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::WaitForEvent { event, .. } => Some(event.name.as_str()),
                _ => None,
            })
            .collect();
        if let Some(g) = &self.goal {
            out.insert(g.event.name.as_str());
        }
        out
    }

    /// Segment expressions the journey evaluates (audience and conditions), to check
    /// when saving.
    pub fn expressions(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        if let Some(a) = &self.audience {
            out.push(("audience", a.as_str()));
        }
        if let Trigger::Schedule(Schedule {
            audience: Some(a), ..
        }) = &self.trigger
        {
            out.push(("trigger.schedule.audience", a.as_str()));
        }
        for s in &self.steps {
            if let Action::Condition { expression, .. } = &s.action {
                out.push((s.id.as_str(), expression.as_str()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cart() -> Value {
        json!({
            "name": "cart",
            "trigger": {"event": {"name": "Product Added", "where": {"cart_id": {"exists": true}}}},
            "key": "cart_id",
            "entry": "every_time",
            "goal": {"name": "Order Completed", "same_key": true},
            "steps": [
                {"id": "wait", "type": "wait_for_event", "name": "Order Completed", "timeout": "1h",
                 "on_event": "exit", "on_timeout": "remind"},
                {"id": "remind", "type": "send", "channels": ["email"], "subject": "您的購物車還有商品",
                 "html": "<p>{{ profile.name }}</p>", "text": "{{ profile.name }}"}
            ]
        })
    }

    fn parse(v: Value) -> Result<Journey, DefinitionError> {
        let j = Journey::from_json(&v.to_string())?;
        j.validate(&VariableCatalog::standard())?;
        Ok(j)
    }

    #[test]
    fn a_keyed_cart_journey_parses_and_resolves_its_steps() {
        let j = parse(cart()).unwrap();
        assert_eq!(j.target("remind"), Target::Step(1));
        assert_eq!(j.after(1), Target::End);
        assert_eq!(
            j.awaited_events().into_iter().collect::<Vec<_>>(),
            vec!["Order Completed"]
        );
        // Round trip through serde keeps it equal.
        let again = Journey::from_json(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(again, j);
    }

    #[test]
    fn broken_definitions_are_refused_with_the_reason() {
        let mut v = cart();
        v["steps"][0]["on_timeout"] = json!("nowhere");
        assert!(parse(v)
            .unwrap_err()
            .to_string()
            .contains("\"nowhere\", which is not a step"));

        let mut v = cart();
        v["steps"][1]["text"] = json!("{{ profile.nmae }}");
        assert!(parse(v).unwrap_err().to_string().contains("nmae"));

        let mut v = cart();
        v["steps"][1]["next"] = json!("wait");
        assert!(parse(v).unwrap_err().to_string().contains("loop"));

        let mut v = cart();
        v["steps"][0]["timeout"] = json!("1x");
        assert!(matches!(parse(v), Err(DefinitionError::Parse(_))));

        let mut v = cart();
        v["steps"][1] = json!({"id": "remind", "type": "split", "branches": [{"name": "a", "percent": 50, "next": "exit"}], "holdout": 40});
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("sum to 90%"), "{e}");

        let mut v = cart();
        v["bogus"] = json!(1);
        assert!(matches!(parse(v), Err(DefinitionError::Parse(_))));
    }

    #[test]
    fn a_cart_scoped_coupon_needs_a_keyed_journey() {
        let coupon = json!({"id": "coupon", "type": "coupon", "template": "t", "scope": "cart"});
        let mut v = cart();
        v["steps"][1]["next"] = json!("coupon");
        v["steps"].as_array_mut().unwrap().push(coupon.clone());
        let j = parse(v.clone()).unwrap();
        assert!(matches!(
            j.steps[2].action,
            Action::Coupon {
                scope: Some(CouponScope::Cart),
                ..
            }
        ));
        // Without a key there is no cart to read.
        let mut unkeyed = v.clone();
        unkeyed.as_object_mut().unwrap().remove("key");
        unkeyed["goal"] = json!({"name": "Order Completed"});
        unkeyed["steps"][0]["same_key"] = json!(false);
        let e = parse(unkeyed).unwrap_err().to_string();
        assert!(e.contains("`scope: cart` needs a keyed journey"), "{e}");
        // Only `cart` is a scope.
        let mut other = v;
        other["steps"][2]["scope"] = json!("shop");
        let e = parse(other).unwrap_err();
        assert!(
            matches!(&e, DefinitionError::Parse(m) if m.contains("cart")),
            "{e}"
        );
    }

    #[test]
    fn yaml_and_json_give_the_same_journey() {
        let yaml = r#"
name: cart
trigger:
  event:
    name: Product Added
    where:
      cart_id: {exists: true}
key: cart_id
entry: every_time
goal: {name: Order Completed, same_key: true}
steps:
  - id: wait
    type: wait_for_event
    name: Order Completed
    timeout: 1h
    on_event: exit
    on_timeout: remind
  - id: remind
    type: send
    channels: [email]
    subject: 您的購物車還有商品
    html: "<p>{{ profile.name }}</p>"
    text: "{{ profile.name }}"
"#;
        let from_yaml = Journey::parse(yaml).unwrap();
        assert_eq!(from_yaml, Journey::parse(&cart().to_string()).unwrap());
        assert!(
            matches!(Journey::parse("name: [unclosed"), Err(DefinitionError::Parse(m)) if m.starts_with("YAML"))
        );
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!("1h30m".parse::<Span>().unwrap().0, Duration::from_secs(5400));
        assert_eq!("7d".parse::<Span>().unwrap().to_string(), "7d");
        assert!("90".parse::<Span>().is_err());
        assert!("".parse::<Span>().is_err());
    }

    #[test]
    fn property_tests_compare_numbers_as_numbers() {
        let props = json!({"value": "120.5", "cart": {"id": "c1"}, "tags": ["a"]});
        assert!(PropertyTest::Gte(120.5).holds(lookup(&props, "value")));
        assert!(!PropertyTest::Gt(120.5).holds(lookup(&props, "value")));
        assert!(PropertyTest::Eq(json!("c1")).holds(lookup(&props, "cart.id")));
        assert!(PropertyTest::Exists(false).holds(lookup(&props, "missing")));
        assert!(PropertyTest::Eq(json!(120.5)).holds(lookup(&props, "value")));
        assert!(PropertyTest::Eq(json!("a")).holds(lookup(&props, "tags.0")));
    }
}
