//! `/system/namespaces` and `/system/namespace/{name}` (contract §1.11, §1.12), with faasd's semantics.
//!
//! Listing and reading are open, as in faas-provider (§3); creating, updating and deleting require basic
//! auth (safe: the gateway always injects credentials on these calls).
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, Authorized, blocking, decode};
use crate::types::{FunctionNamespace, to_json};

fn path_name(req: &HttpRequest) -> String {
    req.match_info().get("name").unwrap_or_default().to_owned()
}

/// Decodes the body and reconciles its name with the path's: the path must equal the body when both
/// are given; either may be missing.
fn body_namespace(req: &HttpRequest, body: &[u8]) -> Result<FunctionNamespace, ApiError> {
    let path = path_name(req);
    let mut ns: FunctionNamespace = if body.iter().all(u8::is_ascii_whitespace) {
        FunctionNamespace::default()
    } else {
        decode(body)?
    };
    match (path.is_empty(), ns.name.is_empty()) {
        (_, true) => ns.name = path,
        (false, false) if ns.name != path => {
            return Err(ApiError::BadRequest(format!(
                "namespace in the path ({path}) differs from the body ({})",
                ns.name
            )));
        }
        _ => {}
    }
    if ns.name.is_empty() {
        return Err(ApiError::BadRequest("namespace name is required".into()));
    }
    Ok(ns)
}

/// `GET /system/namespaces`: a JSON array of names.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let names: Vec<String> = state
        .catalog
        .namespaces()
        .into_iter()
        .map(|n| n.name)
        .collect();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(to_json(&names))
}

/// `GET /system/namespace/{name}`: 200 or 404.
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let name = path_name(&req);
    let ns = state
        .catalog
        .namespace(&name)
        .ok_or_else(|| ApiError::NotFound(format!("namespace {name} not found")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(to_json(&ns)))
}

/// `POST /system/namespace/`: 201, or 409 if it exists.
pub async fn create(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = body_namespace(&req, &body)?;
    let catalog = Arc::clone(&state.catalog);
    blocking(move || catalog.create_namespace(ns)).await?;
    Ok(HttpResponse::Created().finish())
}

/// `PUT /system/namespace/{name}`: 202, or 404.
pub async fn update(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = body_namespace(&req, &body)?;
    let catalog = Arc::clone(&state.catalog);
    blocking(move || catalog.update_namespace(ns)).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `DELETE /system/namespace/{name}`: 202, 404, or 409 while it still holds functions or secrets.
pub async fn delete(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = body_namespace(&req, &body)?;
    let catalog = Arc::clone(&state.catalog);
    blocking(move || catalog.delete_namespace(&ns.name)).await?;
    Ok(HttpResponse::Accepted().finish())
}
