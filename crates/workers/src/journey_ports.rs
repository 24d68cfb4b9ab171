//! The adapters behind journeys' ports ([`flywheel_journeys::ports`]): segment
//! membership and manual tags over the audience engine, coupon issue over the coupon
//! service, points and perks over the loyalty program, recording events through the
//! ingest pipeline. Each maps its service's errors to an outage (the store's, a full
//! queue) or a refusal, which is what decides whether a journey step is retried.
//!
//! This file depends on the domain crates only (no `crate::` item), so the journeys
//! crate's tests drive their engine through the very same adapters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use flywheel_audience::{Audience, SegmentInput};
use flywheel_core::Timestamp;
use flywheel_ingest::Pipeline;
use flywheel_journeys::ports::{
    AudiencePort, CouponIssuer, EventRecorder, PointsPort, PointsView, PortError, PortFuture, PortResult,
    ProfileView, TagKind,
};
use flywheel_journeys::Services;
use flywheel_loyalty::Loyalty;
use flywheel_promotions::coupons::{CouponInstance, CouponService, CouponTemplate, Validity};
use flywheel_promotions::rules::CouponBenefit;
use serde_json::{json, Value};

/// The journeys' services over the real ones (alerts and faults are added by the caller).
pub fn services(
    audience: Option<Audience>,
    coupons: Option<CouponService>,
    loyalty: Option<Loyalty>,
    pipeline: Option<Pipeline>,
) -> Services {
    Services {
        audience: audience.map(|a| Arc::new(AudienceAdapter(a)) as Arc<dyn AudiencePort>),
        coupons: coupons.map(|c| Arc::new(CouponAdapter(c)) as Arc<dyn CouponIssuer>),
        loyalty: loyalty.map(|l| Arc::new(LoyaltyAdapter(l)) as Arc<dyn PointsPort>),
        pipeline: pipeline.map(|p| Arc::new(PipelineRecorder(p)) as Arc<dyn EventRecorder>),
        ..Services::default()
    }
}

fn audience_error(e: flywheel_audience::Error) -> PortError {
    match &e {
        flywheel_audience::Error::Store(s) => PortError::store(s),
        _ => PortError::refused(e.to_string()),
    }
}

fn coupon_error(e: flywheel_promotions::Error) -> PortError {
    match &e {
        flywheel_promotions::Error::Store(s) => PortError::store(s),
        _ => PortError::refused(format!("{e} ({})", e.code())),
    }
}

fn loyalty_error(e: flywheel_loyalty::Error) -> PortError {
    match &e {
        flywheel_loyalty::Error::Store(s) => PortError::store(s),
        _ => PortError::refused(format!("{e} ({})", e.code())),
    }
}

fn ingest_error(e: flywheel_ingest::Error) -> PortError {
    match &e {
        flywheel_ingest::Error::Store(s) => PortError::store(s),
        flywheel_ingest::Error::Overloaded | flywheel_ingest::Error::ShuttingDown => {
            PortError::transient(e.to_string())
        }
        _ => PortError::refused(e.to_string()),
    }
}

/// Segment membership and manual tags over the audience engine.
pub struct AudienceAdapter(pub Audience);

impl AudiencePort for AudienceAdapter {
    fn check_expression(&self, expression: &str) -> Result<(), (flywheel_core::ErrorCode, String)> {
        self.0
            .compile(&SegmentInput::text(expression))
            .map(|_| ())
            .map_err(|e| (e.code(), e.to_string()))
    }

    fn tag_kind(&self, tag: &str) -> TagKind {
        match self.0.tag(tag) {
            Ok(t) if t.def.kind == flywheel_audience::definitions::TagKind::Manual => TagKind::Manual,
            Ok(_) => TagKind::Rule,
            Err(_) => TagKind::Missing,
        }
    }

    fn is_member(&self, expression: &str, profile_id: &str) -> bool {
        self.0
            .is_member(&SegmentInput::text(expression), profile_id)
            .unwrap_or(false)
    }

    fn members(&self, expression: &str) -> PortResult<Vec<String>> {
        let input = SegmentInput::text(expression);
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .0
                .members(&input, cursor.as_deref(), 10_000)
                .map_err(audience_error)?;
            users.extend(page.members.into_iter().filter_map(|m| m.user_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(users),
            }
        }
    }

    fn profile(&self, profile_id: &str) -> Option<ProfileView> {
        self.0.profile(profile_id).ok().map(|p| ProfileView {
            traits: p.traits,
            tags: p.tags,
        })
    }

    fn assign_tag<'a>(&'a self, tag: &'a str, profile_id: &'a str, remove: bool) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .assign(tag, &[profile_id.to_string()], remove)
                .await
                .map(|_| ())
                .map_err(audience_error)
        })
    }
}

/// Coupon issue over the coupon service: once per effect key (the coupon's id derives
/// from it, so a repeat answers the first coupon and takes no quantity).
pub struct CouponAdapter(pub CouponService);

impl CouponIssuer for CouponAdapter {
    fn issue<'a>(
        &'a self,
        template: &'a str,
        user: &'a str,
        key: &'a str,
        products: Option<&'a [String]>,
    ) -> PortFuture<'a, Value> {
        Box::pin(async move {
            let actor = format!("journey:{key}");
            let issued = match products {
                Some(p) => {
                    self.0
                        .issue_once_for_products(template, user, &actor, &actor, p.to_vec())
                        .await
                }
                None => self.0.issue_once(template, user, &actor, &actor).await,
            };
            issued.map(|c| coupon_vars(&c)).map_err(coupon_error)
        })
    }

    fn preview<'a>(&'a self, template: &'a str, now: Timestamp) -> PortFuture<'a, Option<Value>> {
        Box::pin(async move {
            match self.0.template(template).await {
                Ok(t) => Ok(Some(template_vars(&t, now))),
                Err(flywheel_promotions::Error::NotFound(_)) => Ok(None),
                Err(e) => Err(coupon_error(e)),
            }
        })
    }

    fn coupon<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Value>> {
        Box::pin(async move {
            match self.0.get(id).await {
                Ok(c) => Ok(Some(coupon_vars(&c))),
                Err(flywheel_promotions::Error::NotFound(_)) => Ok(None),
                Err(e) => Err(coupon_error(e)),
            }
        })
    }
}

/// `coupon.value_yuan` and `coupon.threshold_yuan` of a benefit.
fn benefit_vars(b: &CouponBenefit) -> (String, String) {
    let (value, threshold) = match b {
        CouponBenefit::Amount { off, min_spend } => (off.to_yuan_string(), *min_spend),
        CouponBenefit::Percent {
            percent, min_spend, ..
        } => (format!("{percent}%"), *min_spend),
        CouponBenefit::FreeShipping { min_spend } => ("free shipping".to_string(), *min_spend),
    };
    (
        value,
        threshold
            .map(|f| f.to_yuan_string())
            .unwrap_or_else(|| "0.00".into()),
    )
}

/// What a preview shows of the coupon a template would issue now (code `PREVIEW`).
pub fn template_vars(t: &CouponTemplate, now: Timestamp) -> Value {
    let (value, threshold) = benefit_vars(&t.benefit);
    let expires = match &t.validity {
        Validity::Window { until, .. } => *until,
        Validity::DaysAfterIssue { days } => now + chrono::Duration::days(i64::from(*days)),
    };
    json!({"id": null, "code": "PREVIEW", "name": t.name, "value_yuan": value, "threshold_yuan": threshold,
           "expires_at": expires.to_rfc3339()})
}

/// What templates see of a coupon: `coupon.code`, `coupon.name`, `coupon.value_yuan`
/// (amount off, or `8.5折`-style percent), `coupon.threshold_yuan`, `coupon.expires_at`.
pub fn coupon_vars(c: &CouponInstance) -> Value {
    let (value, threshold) = benefit_vars(&c.coupon.benefit);
    json!({
        "id": c.id,
        "code": c.code.clone().unwrap_or_else(|| c.id.clone()),
        "name": c.coupon.name,
        "value_yuan": value,
        "threshold_yuan": threshold,
        "expires_at": c.coupon.valid_until.map(|t| t.to_rfc3339()),
    })
}

/// Points, tiers and birthday perks over the loyalty program.
pub struct LoyaltyAdapter(pub Loyalty);

impl PointsPort for LoyaltyAdapter {
    fn award<'a>(&'a self, user: &'a str, key: &'a str, points: i64) -> PortFuture<'a, i64> {
        Box::pin(async move {
            self.0
                .award(user, key, points)
                .await
                .map(|p| p.balance)
                .map_err(loyalty_error)
        })
    }

    fn birthday_perk<'a>(&'a self, user: &'a str, now: Timestamp) -> PortFuture<'a, Value> {
        Box::pin(async move {
            let tier = self.0.tier_of(user, now).await.map_err(loyalty_error)?.tier;
            let perks = self
                .0
                .birthday_perks(&[(user.to_string(), tier)])
                .await
                .map_err(loyalty_error)?;
            Ok(match perks.into_iter().next() {
                Some(p) => json!({
                    "tier": p.tier, "value_yuan": p.value.to_yuan_string(), "year": p.year, "granted_now": p.granted_now,
                }),
                None => json!({"tier": null, "value_yuan": "0.00"}),
            })
        })
    }

    fn view<'a>(
        &'a self,
        user: &'a str,
        now: Timestamp,
    ) -> Pin<Box<dyn Future<Output = PointsView> + Send + 'a>> {
        Box::pin(async move {
            let mut view = PointsView::default();
            if let Ok(b) = self.0.balance(user, None, 1).await {
                let first = b.lots.first();
                view.points = Some(json!({
                    "balance": b.balance,
                    "expiring": first.map(|l| l.left),
                    "expiring_at": first.map(|l| l.expires_at.to_rfc3339()),
                }));
            }
            if let Ok(t) = self.0.tier_of(user, now).await {
                view.tier = Some(t.tier);
            }
            view
        })
    }
}

/// Recording events through the ingest pipeline.
pub struct PipelineRecorder(pub Pipeline);

impl EventRecorder for PipelineRecorder {
    fn record(&self, events: Vec<flywheel_store::NewEvent>, wait: bool) -> PortFuture<'_, ()> {
        Box::pin(async move {
            let done = if wait {
                self.0.submit_waiting(events).await
            } else {
                self.0.submit(events).await
            };
            done.map(|_| ()).map_err(ingest_error)
        })
    }
}
