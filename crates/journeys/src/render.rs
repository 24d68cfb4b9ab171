//! Rendering a send step's template (issue 14 §1): off the async runtime, within the
//! engine's [`flywheel_channels::Renderer`] limits, and tried on a sample customer when a
//! journey is saved.
//!
//! A render that hits a limit fails that one message (logged `failed` with the reason,
//! never retried: the same data would hit it again). A template that fails on the
//! sample customer — a typical profile with a 20-line cart and no computed traits —
//! by hitting a limit or by an operation that cannot succeed (`range(100000000)`) is
//! refused at save, so it never reaches an active journey. Failing on the sample only
//! for a value the sample lacks (a trait, an event property) is left to the per-user
//! render.

use flywheel_channels::{RenderedMessage, TemplateError, TemplateSource};
use flywheel_core::ErrorCode;
use serde_json::{json, Value};

use crate::definition::{Action, Journey};
use crate::engine::{catalog, Engine};
use crate::{Error, Result};

impl Engine {
    /// Renders a send step's `source` for `vars` on a blocking thread through the
    /// engine's renderer.
    pub(crate) async fn render(
        &self,
        source: TemplateSource,
        vars: Value,
    ) -> std::result::Result<RenderedMessage, TemplateError> {
        let renderer = self.0.providers.renderer.clone();
        blocking(move || renderer.render(&source, &vars)).await
    }

    /// Checks every send step of `j` through the renderer: it compiles against the
    /// catalog and renders for the sample customer within the limits.
    pub(crate) async fn check_templates(&self, j: &Journey) -> Result<()> {
        for s in &j.steps {
            let Action::Send(send) = &s.action else {
                continue;
            };
            let (renderer, source) = (self.0.providers.renderer.clone(), send.source());
            let sample = sample_vars(&j.name, &s.id);
            blocking(move || renderer.check(&source, &catalog(), &sample))
                .await
                .map_err(|e| refusal(&s.id, e))?;
        }
        Ok(())
    }
}

/// The refusal of step `step`'s template: over a render limit (`template_over_limit`)
/// or otherwise not sendable (`invalid_message_template`).
pub(crate) fn refusal(step: &str, e: TemplateError) -> Error {
    match e {
        TemplateError::Limit { .. } => Error::refused(
            ErrorCode::TemplateOverLimit,
            format!("step {step:?}: the template cannot be sent: {e}"),
        ),
        TemplateError::Render { .. } => Error::refused(
            ErrorCode::InvalidMessageTemplate,
            format!("step {step:?}: the template cannot be sent: {e}"),
        ),
        other => Error::refused(
            ErrorCode::InvalidMessageTemplate,
            format!("step {step:?}: {other}"),
        ),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, TemplateError> + Send + 'static,
) -> std::result::Result<T, TemplateError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(TemplateError::Render {
            part: "message",
            detail: format!("the render task failed: {e}"),
        })
    })
}

/// The sample customer a template is tried on at save: every profile, coupon, points,
/// tier and shop field filled with a typical value of the type sends fill it with,
/// twenty tags and a twenty-line cart; no computed traits and no trigger event (their
/// names and types are the shop's own).
pub(crate) fn sample_vars(journey: &str, step: &str) -> Value {
    let items: Vec<Value> = (1..=20)
        .map(|i| {
            json!({"product_id": format!("P{i:03}"), "title": format!("示例商品 {i}"), "name": format!("示例商品 {i}"),
                   "price_yuan": "99.00", "quantity": 1, "url": format!("https://shop.example/p/{i}"),
                   "image_url": format!("https://shop.example/i/{i}.jpg")})
        })
        .collect();
    let tags: Vec<String> = (1..=20).map(|i| format!("標籤{i}")).collect();
    json!({
        "profile": {"id": "sample-user", "name": "王小明", "email": "sample@example.com", "phone": "13800000000",
                    "gender": "female", "region": "華東", "city": "上海", "birthday": "1990-05-20", "age_band": "25-34"},
        "traits": {},
        "tags": tags,
        "coupon": {"id": "c-sample", "code": "FW-SAMPLE", "name": "滿199減20", "value_yuan": "20.00",
                   "threshold_yuan": "199.00", "expires_at": "2026-12-31T23:59:59+08:00"},
        "points": {"balance": 1200, "expiring": 200, "expiring_at": "2026-12-31T23:59:59+08:00"},
        "tier": {"name": "黃金", "next": "鉑金", "spend_to_next_yuan": "500.00"},
        "cart": {"items": items, "total_yuan": "1980.00", "url": "https://shop.example/cart"},
        "shop": {"name": "示例店鋪", "url": "https://shop.example"},
        "links": {"unsubscribe": "https://shop.example/unsubscribe/sample", "view_in_browser": "https://shop.example/view/sample",
                  "open_pixel": "https://shop.example/t/o/sample"},
        "perk": {"tier": "黃金", "value_yuan": "20.00"},
        "journey": {"name": journey, "step": step},
        "run": {"key": "sample"},
        "event": {},
    })
}
