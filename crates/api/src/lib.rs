//! Flywheel's HTTP surface (axum).
//!
//! One route table ([`router`]): the Segment-compatible tracking API under `/v1`
//! (write-key auth), the admin read API under `/api/v1` (bearer admin token), and
//! operations endpoints (`/healthz`, `/readyz`, `/metrics`). Handlers are thin:
//! extract and authenticate, call one service function, map the error through
//! [`error::ApiError`], which owns every status and error code. No SQL and no
//! business rule lives here.

mod analytics;
mod audience;
pub mod auth;
pub mod body;
mod console;
mod coupons;
pub mod dead_letters;
pub mod error;
mod extract;
mod flash;
mod funnels;
mod groups;
mod journeys;
mod loyalty;
mod ops;
mod pricing;
mod profiles;
pub mod rate_limit;
mod referrals;
pub mod server;
mod tracking;

use std::sync::Arc;

use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use flywheel_audience::DefKind;
use flywheel_core::EventKind;
use flywheel_ingest::{Limits, Pipeline};
use flywheel_store::Store;

pub use ops::OPENAPI;

/// What every handler shares.
pub struct AppState {
    /// The system of record.
    pub store: Store,
    /// The ingest write queue.
    pub pipeline: Pipeline,
    /// Tracking API size limits.
    pub limits: Limits,
    /// Request rates on the tracking and admin APIs (`[limits]`).
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// Write-key checker.
    pub write_keys: auth::WriteKeys,
    /// The server-wide budget of request-body bytes held in memory, and the body idle
    /// timeout.
    pub bodies: body::BodyBudget,
    /// Admin credential.
    pub admin: auth::AdminToken,
    /// The audience engine (tags, segments, RFM).
    pub audience: flywheel_audience::Audience,
    /// Coupon templates and coupons.
    pub coupons: flywheel_promotions::coupons::CouponService,
    /// Points and member tiers.
    pub loyalty: flywheel_loyalty::Loyalty,
    /// Points-for-coupon exchanges (spend and coupon in one idempotent operation).
    pub exchange: flywheel_loyalty::PointsExchange,
    /// Who may hold a coupon template's coupons (its audience segment).
    pub audience_gate: Arc<dyn flywheel_promotions::coupons::AudienceGate>,
    /// The referral program.
    pub referrals: flywheel_promotions::referral::Referrals,
    /// Group buys.
    pub groups: flywheel_promotions::group::GroupBuys,
    /// The journey engine (journeys, message log, consent, tracked links).
    pub journeys: flywheel_journeys::Engine,
    /// Analytics reports (KPIs, cohorts, campaigns, channels, goals, alerts).
    pub reports: flywheel_analytics::reports::Reports,
    /// Flash sales.
    pub flash: Arc<flywheel_promotions::flash::FlashSales<flywheel_promotions::flash::AnyStock>>,
    /// Retries dead-lettered workflow items (the order rewards).
    pub dead_letters: Arc<dyn dead_letters::RetryDeadLetter>,
    /// The background services' health (`/metrics`, `/readyz`).
    pub workers: Arc<dyn flywheel_core::health::WorkerHealth>,
}

/// A route: method (as in the OpenAPI document), path, handler.
type Route = (&'static str, &'static str, MethodRouter<Arc<AppState>>);

/// The one route table: the router is built from it and the OpenAPI test reads it.
fn routes() -> Vec<Route> {
    vec![
        (
            "post",
            "/v1/track",
            post(|s, h, b| tracking::single(EventKind::Track, s, h, b)),
        ),
        (
            "post",
            "/v1/identify",
            post(|s, h, b| tracking::single(EventKind::Identify, s, h, b)),
        ),
        (
            "post",
            "/v1/page",
            post(|s, h, b| tracking::single(EventKind::Page, s, h, b)),
        ),
        (
            "post",
            "/v1/screen",
            post(|s, h, b| tracking::single(EventKind::Screen, s, h, b)),
        ),
        (
            "post",
            "/v1/group",
            post(|s, h, b| tracking::single(EventKind::Group, s, h, b)),
        ),
        (
            "post",
            "/v1/alias",
            post(|s, h, b| tracking::single(EventKind::Alias, s, h, b)),
        ),
        ("post", "/v1/batch", post(tracking::batch)),
        ("post", "/v1/import", post(tracking::batch)),
        ("get", "/api/v1/profiles", get(profiles::list)),
        ("get", "/api/v1/profiles/{id}", get(profiles::show)),
        ("get", "/api/v1/profiles/{id}/events", get(profiles::events)),
        ("get", "/api/v1/profiles/{id}/orders", get(profiles::orders)),
        ("get", "/api/v1/profiles/{id}/audience", get(audience::profile)),
        ("get", "/api/v1/tags", get(audience::list_tags)),
        ("post", "/api/v1/tags", admin_body(post(audience::create_tag))),
        ("get", "/api/v1/tags/{name}", get(audience::show_tag)),
        (
            "put",
            "/api/v1/tags/{name}",
            admin_body(put(audience::replace_tag)),
        ),
        (
            "delete",
            "/api/v1/tags/{name}",
            delete(|s, h, p| audience::delete_definition(DefKind::Tag, s, h, p)),
        ),
        (
            "get",
            "/api/v1/tags/{name}/members",
            get(|s, h, p, q| audience::members(DefKind::Tag, s, h, p, q)),
        ),
        (
            "post",
            "/api/v1/tags/{name}/members",
            admin_body(post(audience::assign_tag)),
        ),
        ("get", "/api/v1/segments", get(audience::list_segments)),
        (
            "post",
            "/api/v1/segments",
            admin_body(post(audience::create_segment)),
        ),
        (
            "post",
            "/api/v1/segments/count",
            admin_body(post(audience::count)),
        ),
        (
            "post",
            "/api/v1/segments/preview",
            admin_body(post(audience::preview)),
        ),
        (
            "post",
            "/api/v1/segments/export",
            admin_body(post(audience::export)),
        ),
        ("get", "/api/v1/segments/{name}", get(audience::show_segment)),
        (
            "put",
            "/api/v1/segments/{name}",
            admin_body(put(audience::replace_segment)),
        ),
        (
            "delete",
            "/api/v1/segments/{name}",
            delete(|s, h, p| audience::delete_definition(DefKind::Segment, s, h, p)),
        ),
        (
            "get",
            "/api/v1/segments/{name}/members",
            get(|s, h, p, q| audience::members(DefKind::Segment, s, h, p, q)),
        ),
        ("get", "/api/v1/rfm", get(audience::rfm)),
        ("get", "/api/v1/audience/traits", get(audience::traits)),
        ("get", "/api/v1/audience/transitions", get(audience::transitions)),
        ("post", "/api/v1/cart/price", admin_body(post(pricing::price))),
        ("get", "/api/v1/coupon-templates", get(coupons::list_templates)),
        (
            "post",
            "/api/v1/coupon-templates",
            admin_body(post(coupons::create_template)),
        ),
        (
            "post",
            "/api/v1/coupon-templates/{id}/issue",
            admin_body(post(coupons::issue)),
        ),
        (
            "post",
            "/api/v1/coupon-templates/{id}/codes",
            admin_body(post(coupons::codes)),
        ),
        ("post", "/api/v1/coupons/claim", admin_body(post(coupons::claim))),
        (
            "post",
            "/api/v1/coupons/{id}/reserve",
            admin_body(post(coupons::reserve)),
        ),
        (
            "post",
            "/api/v1/coupons/{id}/redeem",
            admin_body(post(coupons::redeem)),
        ),
        (
            "post",
            "/api/v1/coupons/{id}/release",
            admin_body(post(coupons::release)),
        ),
        (
            "post",
            "/api/v1/coupons/{id}/refund",
            admin_body(post(coupons::refund)),
        ),
        ("get", "/api/v1/coupons/{id}/audit", get(coupons::audit)),
        ("get", "/api/v1/users/{user_id}/coupons", get(coupons::of_user)),
        ("get", "/api/v1/flash-sales", get(flash::list)),
        ("post", "/api/v1/flash-sales", admin_body(post(flash::create))),
        (
            "post",
            "/api/v1/flash-sales/{id}/orders",
            admin_body(post(flash::buy)),
        ),
        ("post", "/api/v1/flash-orders/{id}/pay", post(flash::pay)),
        ("get", "/api/v1/group-deals", get(groups::deals)),
        (
            "post",
            "/api/v1/group-deals",
            admin_body(post(groups::create_deal)),
        ),
        (
            "post",
            "/api/v1/group-deals/{id}/groups",
            admin_body(post(groups::open)),
        ),
        ("get", "/api/v1/groups/{id}", get(groups::show)),
        ("post", "/api/v1/groups/{id}/join", admin_body(post(groups::join))),
        ("get", "/api/v1/users/{user_id}/points", get(loyalty::balance)),
        (
            "post",
            "/api/v1/users/{user_id}/points/check-in",
            post(loyalty::check_in),
        ),
        (
            "post",
            "/api/v1/users/{user_id}/points/review",
            admin_body(post(loyalty::review)),
        ),
        (
            "post",
            "/api/v1/users/{user_id}/points/share",
            admin_body(post(loyalty::share)),
        ),
        (
            "post",
            "/api/v1/users/{user_id}/points/spend",
            admin_body(post(loyalty::spend)),
        ),
        (
            "post",
            "/api/v1/users/{user_id}/points/redeem",
            admin_body(post(loyalty::redeem)),
        ),
        ("get", "/api/v1/users/{user_id}/tier", get(loyalty::tier)),
        ("get", "/api/v1/referral-program", get(referrals::program)),
        (
            "put",
            "/api/v1/referral-program",
            admin_body(put(referrals::set_program)),
        ),
        (
            "get",
            "/api/v1/users/{user_id}/invite-code",
            get(referrals::invite_code),
        ),
        (
            "get",
            "/api/v1/users/{user_id}/referrals",
            get(referrals::of_inviter),
        ),
        ("post", "/api/v1/referrals", admin_body(post(referrals::register))),
        ("get", "/api/v1/referrals/{invitee}", get(referrals::show)),
        (
            "post",
            "/api/v1/referrals/{invitee}/first-order",
            admin_body(post(referrals::first_order)),
        ),
        (
            "post",
            "/api/v1/referrals/{invitee}/claw-back",
            admin_body(post(referrals::claw_back)),
        ),
        ("get", "/api/v1/journeys", get(journeys::list)),
        ("post", "/api/v1/journeys", admin_body(post(journeys::create))),
        ("get", "/api/v1/journeys/{name}", get(journeys::get)),
        ("put", "/api/v1/journeys/{name}", admin_body(put(journeys::put))),
        ("delete", "/api/v1/journeys/{name}", delete(journeys::delete)),
        ("post", "/api/v1/journeys/{name}/start", post(journeys::start)),
        ("post", "/api/v1/journeys/{name}/pause", post(journeys::pause)),
        ("post", "/api/v1/journeys/{name}/stop", post(journeys::stop)),
        (
            "post",
            "/api/v1/journeys/{name}/dry-run",
            admin_body(post(journeys::dry_run)),
        ),
        (
            "post",
            "/api/v1/journeys/{name}/preview",
            admin_body(post(journeys::preview)),
        ),
        ("get", "/api/v1/journeys/{name}/stats", get(journeys::stats)),
        ("get", "/api/v1/journeys/{name}/runs", get(journeys::runs)),
        ("get", "/api/v1/messages", get(journeys::messages)),
        ("get", "/api/v1/consent/{user_id}", get(journeys::consent)),
        (
            "put",
            "/api/v1/consent/{user_id}",
            admin_body(put(journeys::set_consent)),
        ),
        ("get", "/t/o/{token}", get(journeys::open_pixel)),
        ("get", "/t/c/{token}", get(journeys::click)),
        ("get", "/unsubscribe/{token}", get(journeys::unsubscribe_page)),
        ("post", "/unsubscribe/{token}", post(journeys::unsubscribe)),
        (
            "post",
            "/v1/channels/{channel}/status",
            post(journeys::delivery_status)
                .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_CALLBACK_BODY)),
        ),
        ("get", "/api/v1/analytics/kpi", get(analytics::kpi)),
        ("get", "/api/v1/analytics/cohort", get(analytics::cohort)),
        ("get", "/api/v1/analytics/funnel", get(analytics::funnel)),
        (
            "post",
            "/api/v1/analytics/funnels",
            admin_body(post(funnels::create)),
        ),
        ("get", "/api/v1/analytics/funnels", get(funnels::list)),
        ("get", "/api/v1/analytics/funnels/{name}", get(funnels::get_one)),
        (
            "delete",
            "/api/v1/analytics/funnels/{name}",
            delete(funnels::delete),
        ),
        ("get", "/api/v1/analytics/ltv", get(analytics::ltv)),
        ("get", "/api/v1/analytics/campaigns", get(analytics::campaigns)),
        ("get", "/api/v1/analytics/channels", get(analytics::channels)),
        (
            "get",
            "/api/v1/analytics/attribution",
            get(analytics::attribution),
        ),
        ("get", "/api/v1/analytics/uplift", get(analytics::uplift)),
        ("get", "/api/v1/analytics/goals", get(analytics::goals)),
        ("get", "/api/v1/analytics/alerts", get(analytics::alerts)),
        ("get", "/api/v1/analytics/review", get(analytics::review)),
        ("get", "/api/v1/analytics/reviews", get(analytics::reviews)),
        (
            "get",
            "/api/v1/analytics/reviews/{id}",
            get(analytics::stored_review),
        ),
        (
            "post",
            "/api/v1/analytics/spend",
            admin_body(post(analytics::spend)),
        ),
        ("get", "/api/v1/analytics/spend", get(analytics::spend_list)),
        (
            "delete",
            "/api/v1/analytics/spend/{id}",
            delete(analytics::spend_delete),
        ),
        ("get", "/api/v1/dead-letters", get(dead_letters::list)),
        (
            "post",
            "/api/v1/dead-letters/{id}/retry",
            post(dead_letters::retry),
        ),
        (
            "post",
            "/api/v1/dead-letters/{id}/dismiss",
            post(dead_letters::dismiss),
        ),
        ("get", "/api/v1/openapi.json", get(ops::openapi)),
        ("get", "/healthz", get(ops::healthz)),
        ("get", "/readyz", get(ops::readyz)),
        ("get", "/metrics", get(ops::metrics)),
    ]
}

/// An admin write route whose body is read up to [`audience::MAX_ADMIN_BODY`].
fn admin_body(r: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    r.layer(axum::extract::DefaultBodyLimit::max(audience::MAX_ADMIN_BODY))
}

/// Every route of the server. Request bodies are read by the handlers within the
/// tracking limits (so an oversize body gets our JSON 400, not a bare 413).
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        // The web console's static files (not API routes: not in the table above).
        .merge(console::router())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(not_found)
        .with_state(state)
}

/// The operations routes only (`/healthz`, `/readyz`, `/metrics`): what a worker process
/// serves.
pub fn ops_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("route")
}

/// The served routes as `(method, path)`.
pub fn route_list() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_every_route_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = route_list()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn every_authenticated_route_documents_its_rate_limit() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut checked = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let security = op["security"].to_string();
                if security.contains("adminToken") || security.contains("writeKey") {
                    assert_eq!(
                        op["responses"]["429"]["$ref"], "#/components/responses/RateLimited",
                        "{method} {path}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
        let limited = &doc["components"]["responses"]["RateLimited"];
        assert!(limited["headers"]["Retry-After"].is_object());
    }
}
