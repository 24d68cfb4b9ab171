//! `/api/v1/tags…`, `/api/v1/segments…`, `/api/v1/rfm`, `/api/v1/audience/…` and
//! `/api/v1/profiles/{id}/audience`: the admin API of the audience engine. Thin
//! handlers: authenticate, read the body, call one engine function, map the error.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_audience::engine::{MemberPage, ProfileAudience, SegmentInfo, TagInfo};
use flywheel_audience::{DefKind, SegmentInput, TagInput};
use flywheel_core::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody, Params};
use crate::profiles::PageQuery;
use crate::AppState;

/// Largest admin request body (segment definitions, tag assignments).
pub const MAX_ADMIN_BODY: usize = 1024 * 1024;

/// A segment definition or a one-off expression in a request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    ast: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

impl SegmentBody {
    fn input(&self) -> Result<SegmentInput, ApiError> {
        let ast = match &self.ast {
            None => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|e| ApiError::new(ErrorCode::InvalidExpression, format!("ast: {e}")))?,
            ),
        };
        Ok(SegmentInput {
            expression: self.expression.clone(),
            ast,
        })
    }
}

/// `GET /api/v1/tags`.
pub async fn list_tags(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"tags": s.audience.tags()})))
}

/// `POST /api/v1/tags`.
pub async fn create_tag(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let input: TagInput = body.json()?;
    let name = input.name.clone();
    s.audience.put_tag(input, false).await?;
    Ok((StatusCode::CREATED, Json(s.audience.tag(&name)?)).into_response())
}

/// `GET /api/v1/tags/{name}`.
pub async fn show_tag(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<TagInfo>, ApiError> {
    Ok(Json(s.audience.tag(&name)?))
}

/// `PUT /api/v1/tags/{name}`: replaces the definition (the body's name, if any, must match).
pub async fn replace_tag(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<Json<TagInfo>, ApiError> {
    let mut v: Value = body.json()?;
    if let Some(obj) = v.as_object_mut() {
        match obj.get("name").and_then(Value::as_str) {
            Some(n) if n != name => {
                return Err(ApiError::new(
                    ErrorCode::NameMismatch,
                    format!("body names {n:?}, the path {name:?}"),
                ))
            }
            _ => {
                obj.insert("name".into(), json!(name));
            }
        }
    }
    let input: TagInput = serde_json::from_value(v)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request body: {e}")))?;
    s.audience.put_tag(input, true).await?;
    Ok(Json(s.audience.tag(&name)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assignment {
    profiles: Vec<String>,
    #[serde(default)]
    remove: bool,
}

/// `POST /api/v1/tags/{name}/members`: `{"profiles": [ids], "remove": false}` for a manual tag.
pub async fn assign_tag(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<Json<Value>, ApiError> {
    let a: Assignment = body.json()?;
    if a.profiles.is_empty() || a.profiles.len() > 10_000 {
        return Err(ApiError::new(
            ErrorCode::InvalidProfiles,
            "give 1 to 10000 profile ids",
        ));
    }
    let done = s.audience.assign(&name, &a.profiles, a.remove).await?;
    Ok(Json(json!({"tag": name, "removed": a.remove, "profiles": done})))
}

/// `GET /api/v1/segments`.
pub async fn list_segments(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"segments": s.audience.segments()})))
}

/// `POST /api/v1/segments`: `{"name", "expression" | "ast", "description"}`.
pub async fn create_segment(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let sb: SegmentBody = body.json()?;
    let name = sb
        .name
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidSegment, "a segment needs a \"name\""))?;
    s.audience
        .put_segment(name.clone(), &sb.input()?, sb.description.clone(), false)
        .await?;
    Ok((StatusCode::CREATED, Json(s.audience.segment(&name)?)).into_response())
}

/// `GET /api/v1/segments/{name}`.
pub async fn show_segment(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<SegmentInfo>, ApiError> {
    Ok(Json(s.audience.segment(&name)?))
}

/// `PUT /api/v1/segments/{name}`.
pub async fn replace_segment(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<Json<SegmentInfo>, ApiError> {
    let sb: SegmentBody = body.json()?;
    if sb.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::new(
            ErrorCode::NameMismatch,
            "the body's name differs from the path's",
        ));
    }
    s.audience
        .put_segment(name.clone(), &sb.input()?, sb.description.clone(), true)
        .await?;
    Ok(Json(s.audience.segment(&name)?))
}

/// `DELETE /api/v1/tags/{name}` and `DELETE /api/v1/segments/{name}`.
pub async fn delete_definition(
    kind: DefKind,
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.audience.delete(kind, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tags/{name}/members` and `GET /api/v1/segments/{name}/members` (`?cursor=&limit=`).
pub async fn members(
    kind: DefKind,
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
    Params(q): Params<PageQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    let limit = q.limit()?;
    Ok(Json(s.audience.members_of(
        kind,
        &name,
        q.cursor.as_deref(),
        limit,
    )?))
}

/// `POST /api/v1/segments/count` (with the log `position` the count was taken at): `{"expression" | "ast"}` → count and canonical text.
pub async fn count(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Json<Value>, ApiError> {
    let sb: SegmentBody = body.json()?;
    let input = sb.input()?;
    s.audience.prepare(&input).await?;
    let (n, position) = s.audience.count_at(&input)?;
    let explained = s.audience.explain(&input)?;
    Ok(Json(
        json!({"count": n, "position": position, "expression": explained["expression"], "ast": explained["ast"]}),
    ))
}

/// `POST /api/v1/segments/preview`: `{"expression" | "ast", "cursor", "limit"}` → a page of members.
pub async fn preview(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Json<MemberPage>, ApiError> {
    let sb: SegmentBody = body.json()?;
    let limit = PageQuery {
        cursor: None,
        limit: sb.limit,
    }
    .limit()?;
    let input = sb.input()?;
    s.audience.prepare(&input).await?;
    Ok(Json(s.audience.members(&input, sb.cursor.as_deref(), limit)?))
}

/// `POST /api/v1/segments/export`: every member as CSV (`profile_id,user_id`).
pub async fn export(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let sb: SegmentBody = body.json()?;
    let input = sb.input()?;
    s.audience.prepare(&input).await?;
    let csv = s.audience.export_csv(&input)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

/// `GET /api/v1/profiles/{id}/audience`.
pub async fn profile(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<ProfileAudience>, ApiError> {
    let pid = s
        .store
        .find_profile_id(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id:?}")))?;
    Ok(Json(s.audience.profile(&pid.0)?))
}

#[derive(Debug, Deserialize)]
pub struct RfmQuery {
    /// Observation end: an RFC 3339 instant, or a bare date meaning the end of that
    /// shop-local day (default now).
    as_of: Option<String>,
}

/// `GET /api/v1/rfm?as_of=`: every buyer's lifetimes-style summary, scores and segment.
pub async fn rfm(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<RfmQuery>,
) -> Result<Json<Value>, ApiError> {
    let as_of = match q.as_of.as_deref() {
        None => s.audience.now(),
        Some(t) => flywheel_core::time::parse_observation_end(t, s.reports.tz())
            .map(flywheel_core::time::to_millis)
            .map_err(|e| ApiError::new(ErrorCode::InvalidTime, e.to_string()))?,
    };
    let rows = s.audience.rfm_report(as_of);
    Ok(Json(
        json!({"as_of": flywheel_core::time::from_millis(as_of).to_rfc3339(), "buyers": rows.len(), "rows": rows}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct TransitionQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/v1/audience/transitions?after=&limit=`: recent segment/tag entries and exits.
pub async fn transitions(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<TransitionQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        json!({"transitions": s.audience.transitions(q.after.unwrap_or(0), limit)}),
    ))
}

/// `GET /api/v1/audience/traits`: the trait catalogue of the segment language.
pub async fn traits(_: Admin) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = flywheel_audience::traits::CATALOGUE
        .iter()
        .map(|e| json!({"name": e.name, "windowed": e.windowed.is_some(), "type": format!("{:?}", e.ty).to_lowercase(), "description": e.description}))
        .collect();
    Ok(Json(json!({"traits": list})))
}
