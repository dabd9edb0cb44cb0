//! `/system/secrets` (contract §1.9): values are written to files (mode 0600) and never returned.
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, Authorized, blocking, decode, query_param};
use crate::types::{Secret, to_json};

/// The namespace of a mutating call: the body's, then the query's, then the default.
fn namespace_of(req: &HttpRequest, s: &Secret) -> String {
    if s.namespace.is_empty() {
        query_param(req, "namespace").unwrap_or_default()
    } else {
        s.namespace.clone()
    }
}

fn require_name(s: &Secret) -> Result<(), ApiError> {
    if s.name.is_empty() {
        Err(ApiError::BadRequest("secret name is required".into()))
    } else {
        Ok(())
    }
}

/// `GET /system/secrets?namespace=NS`: names and namespaces only.
pub async fn list(
    _: Authorized,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = query_param(&req, "namespace").unwrap_or_default();
    let resolved = state.catalog.resolve_namespace(&ns).to_owned();
    let out: Vec<Secret> = state
        .catalog
        .secrets(&ns)?
        .into_iter()
        .map(|name| Secret {
            name,
            namespace: resolved.clone(),
            ..Default::default()
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(to_json(&out)))
}

async fn put(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    create: bool,
) -> Result<HttpResponse, ApiError> {
    let s: Secret = decode(&body)?;
    require_name(&s)?;
    let ns = namespace_of(&req, &s);
    let catalog = Arc::clone(&state.catalog);
    let (rns, name) = (catalog.resolve_namespace(&ns).to_owned(), s.name.clone());
    blocking(move || catalog.put_secret(&ns, &s.name, s.bytes(), create)).await?;
    state.backend.secret_changed(&rns, &name).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /system/secrets`: 202, 409 if it exists (`faas-cli secret apply` relies on it).
pub async fn create(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    put(req, body, state, true).await
}

/// `PUT /system/secrets`: 202, 404 if missing.
pub async fn update(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    put(req, body, state, false).await
}

/// `DELETE /system/secrets`: 202, 404 if missing.
pub async fn delete(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let s: Secret = decode(&body)?;
    require_name(&s)?;
    let ns = namespace_of(&req, &s);
    let catalog = Arc::clone(&state.catalog);
    let (rns, name) = (catalog.resolve_namespace(&ns).to_owned(), s.name.clone());
    blocking(move || catalog.delete_secret(&ns, &s.name)).await?;
    state.backend.secret_changed(&rns, &name).await?;
    Ok(HttpResponse::Accepted().finish())
}
