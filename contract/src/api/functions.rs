//! `/system/functions`, `/system/function/{name}`, `/system/scale-function/{name}` (contract §1.3–§1.8).
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, Authorized, blocking, decode, query_param};
use crate::backend::ReplicaCounts;
use crate::catalog::FunctionRecord;
use crate::types::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, LABEL_FAAS_FUNCTION,
    ScaleServiceRequest, to_json,
};

/// The wire status of a record: exactly what was deployed, plus the `faas_function` label, the desired
/// replicas from the catalog and the ready replicas from the backend.
pub fn function_status(rec: &FunctionRecord, counts: ReplicaCounts) -> FunctionStatus {
    let d = &rec.deployment;
    let mut labels = d.labels.clone().unwrap_or_default();
    labels.insert(LABEL_FAAS_FUNCTION.to_owned(), d.service.clone());
    FunctionStatus {
        name: d.service.clone(),
        image: d.image.clone(),
        namespace: d.namespace.clone(),
        env_process: d.env_process.clone(),
        env_vars: d.env_vars.clone(),
        constraints: d.constraints.clone(),
        secrets: d.secrets.clone(),
        labels,
        annotations: d.annotations.clone().unwrap_or_default(),
        limits: d.limits.clone(),
        requests: d.requests.clone(),
        read_only_root_filesystem: d.read_only_root_filesystem,
        invocation_count: 0.0,
        replicas: u64::from(rec.replicas),
        available_replicas: u64::from(counts.available),
        created_at: rec.created_at,
        usage: None,
    }
}

fn status_of(state: &AppState, rec: &FunctionRecord) -> FunctionStatus {
    function_status(rec, state.backend.status(rec.namespace(), rec.name()))
}

fn json(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// `GET /system/functions?namespace=NS`: always a JSON array.
pub async fn list(
    _: Authorized,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = query_param(&req, "namespace").unwrap_or_default();
    let mut all: Vec<FunctionStatus> = state
        .catalog
        .functions(&ns)?
        .iter()
        .map(|r| status_of(&state, r))
        .collect();
    all.extend(super::dags::list(&state, &ns));
    Ok(json(to_json(&all)))
}

/// `GET /system/function/{name}?namespace=NS`: from memory.
pub async fn status(
    _: Authorized,
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ns = query_param(&req, "namespace").unwrap_or_default();
    if let Some(dag) = super::dags::describe(&state, &ns, &name) {
        return Ok(json(to_json(&dag)));
    }
    let rec = state.catalog.function(&ns, &name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "function {name} not found in namespace {}",
            state.catalog.resolve_namespace(&ns)
        ))
    })?;
    Ok(json(to_json(&status_of(&state, &rec))))
}

/// `POST /system/functions`: 202, or 400/409.
pub async fn deploy(
    _: Authorized,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let d: FunctionDeployment = decode(&body)?;
    state.backend.validate(&d)?;
    crate::dag::check_deployment(&state.catalog, &d).map_err(ApiError::BadRequest)?;
    let catalog = Arc::clone(&state.catalog);
    let rec = blocking(move || catalog.deploy(d)).await?;
    if let Err(e) = state.backend.deploy(&rec).await {
        // Undo, so the catalog never lists a function the backend refused.
        let catalog = Arc::clone(&state.catalog);
        let (ns, name) = (rec.namespace().to_owned(), rec.name().to_owned());
        let _ = blocking(move || catalog.delete(&ns, &name)).await;
        let _ = state.backend.delete(rec.namespace(), rec.name()).await;
        return Err(e.into());
    }
    Ok(HttpResponse::Accepted().finish())
}

/// `PUT /system/functions`: 202, 404 for an unknown function (faas-cli then POSTs), 400.
pub async fn update(
    _: Authorized,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let d: FunctionDeployment = decode(&body)?;
    let catalog = Arc::clone(&state.catalog);
    let ns = d.namespace.clone();
    if catalog.function(&ns, &d.service).is_none() {
        return Err(ApiError::NotFound(format!(
            "function {} not found in namespace {}",
            d.service,
            catalog.resolve_namespace(&ns)
        )));
    }
    state.backend.validate(&d)?;
    crate::dag::check_deployment(&catalog, &d).map_err(ApiError::BadRequest)?;
    let (old, rec) = blocking(move || catalog.update(d)).await?;
    if let Err(e) = state.backend.update(&rec).await {
        let catalog = Arc::clone(&state.catalog);
        let _ = blocking(move || catalog.restore(old)).await;
        return Err(e.into());
    }
    Ok(HttpResponse::Accepted().finish())
}

/// `DELETE /system/functions`: namespace from the body, then the query, then the default (§1.6).
pub async fn delete(
    _: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: DeleteFunctionRequest = decode(&body)?;
    if r.function_name.is_empty() {
        return Err(ApiError::BadRequest("functionName is required".into()));
    }
    let ns = if r.namespace.is_empty() {
        query_param(&req, "namespace").unwrap_or_default()
    } else {
        r.namespace
    };
    let catalog = Arc::clone(&state.catalog);
    let name = r.function_name.clone();
    let rec = blocking(move || catalog.delete(&ns, &name)).await?;
    state.backend.delete(rec.namespace(), rec.name()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /system/scale-function/{name}`: namespace from the query, then the body, then the default.
/// 0 is accepted; the desired count is recorded before the response (§4.2).
pub async fn scale(
    _: Authorized,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: ScaleServiceRequest = decode(&body)?;
    let ns = query_param(&req, "namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or(r.namespace);
    if let Some(done) = super::dags::scale(&state, &ns, &name, r.replicas).await {
        return done.map(|()| HttpResponse::Accepted().finish());
    }
    state.scale(&ns, &name, r.replicas).await?;
    Ok(HttpResponse::Accepted().finish())
}
