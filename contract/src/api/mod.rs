//! The provider's HTTP API: every route of the OpenFaaS provider contract (§1), built in one place
//! ([`configure`]) so later features (DAG runner, `/system/plan`) add their routes beside these.
//!
//! Handlers only decode and validate, call the catalog and the backend, and return [`ApiError`], which
//! is mapped to HTTP in `error.rs`. Everything here is testable without sockets via `actix_web::test`.
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpRequest, HttpResponse, web};

mod auth;
pub mod dag_metrics;
pub mod dags;
mod functions;
mod logs;
mod namespaces;
mod secrets;
mod system;

pub use crate::prom::http as metrics;
pub use crate::state::{ApiError, AppState, GIT_SHA, decode};
pub use auth::Authorized;
pub use functions::function_status;

/// The whole application: metrics middleware, the contract routes and the 404 fallback.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = Arc::clone(&state.metrics);
    App::new()
        .wrap_fn(move |req, srv| {
            use actix_web::dev::Service;
            let start = Instant::now();
            let method = req.method().clone();
            let fut = srv.call(req);
            let metrics = Arc::clone(&metrics);
            async move {
                let res = fut.await?;
                let r = res.request();
                let path = match r.match_name() {
                    Some(n) => n,
                    None if r.path().starts_with("/function/") => crate::proxy::PATH_LABEL,
                    None => "unmatched",
                };
                metrics.observe(
                    res.status().as_u16(),
                    method.as_str(),
                    path,
                    start.elapsed(),
                );
                Ok(res)
            }
        })
        .configure(|cfg| configure(cfg, state))
}

/// Registers every route. Wrong method on a known path → 405 (actix's resource default), unknown
/// path → 404 (the default service). Each resource is named after its path for the metrics label.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let body_limit = web::PayloadConfig::new(state.max_body_bytes);
    cfg.app_data(state.clone())
        .app_data(body_limit)
        .app_data(crate::proxy::Pool::new(state.max_idle_conns_per_host))
        // The invocation proxy first: it is the hot path.
        .service(crate::proxy::scope())
        .service(
            web::resource("/healthz")
                .name("/healthz")
                .route(web::get().to(system::healthz))
                .route(web::head().to(system::healthz)),
        )
        .service(
            web::resource("/metrics")
                .name("/metrics")
                .to(system::metrics),
        )
        .service(
            web::resource("/system/info")
                .name("/system/info")
                .route(web::get().to(system::info)),
        )
        .service(
            web::resource("/system/functions")
                .name("/system/functions")
                .route(web::get().to(functions::list))
                .route(web::post().to(functions::deploy))
                .route(web::put().to(functions::update))
                .route(web::delete().to(functions::delete)),
        )
        .service(
            web::resource("/system/function/{name:[-a-zA-Z_0-9.]+}")
                .name("/system/function/{name}")
                .route(web::get().to(functions::status)),
        )
        .service(
            web::resource("/system/scale-function/{name:[-a-zA-Z_0-9.]+}")
                .name("/system/scale-function/{name}")
                .route(web::post().to(functions::scale)),
        )
        .service(
            web::resource("/system/plan")
                .name("/system/plan")
                .route(web::get().to(dags::plan)),
        )
        .service(
            web::resource("/system/secrets")
                .name("/system/secrets")
                .route(web::get().to(secrets::list))
                .route(web::post().to(secrets::create))
                .route(web::put().to(secrets::update))
                .route(web::delete().to(secrets::delete)),
        )
        .service(
            web::resource("/system/logs")
                .name("/system/logs")
                .route(web::get().to(logs::logs)),
        )
        .service(
            web::resource("/system/namespaces")
                .name("/system/namespaces")
                .route(web::get().to(namespaces::list)),
        )
        .service(
            web::resource([
                "/system/namespace/",
                "/system/namespace/{name:[-a-zA-Z_0-9.]+}",
            ])
            .name("/system/namespace/{name}")
            .route(web::get().to(namespaces::get))
            .route(web::post().to(namespaces::create))
            .route(web::put().to(namespaces::update))
            .route(web::delete().to(namespaces::delete)),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(format!("404 page not found: {}", req.path()))
}

/// Runs blocking catalog work off the async worker.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, crate::catalog::CatalogError> + Send + 'static,
) -> Result<R, ApiError> {
    Ok(web::block(f).await??)
}

/// The decoded query pairs, in order; an undecodable query string counts as empty.
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The first value of a query parameter, as Go's `r.URL.Query().Get`.
fn query_param(req: &HttpRequest, key: &str) -> Option<String> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
