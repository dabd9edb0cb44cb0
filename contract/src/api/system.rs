//! `/healthz`, `/system/info` and `/metrics`.
use actix_web::{HttpResponse, web};

use super::{AppState, Authorized};
use crate::types::to_json;

/// `GET`/`HEAD /healthz`: 200, empty body, no auth.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// `GET /system/info`: provider `smiless`, the backend's orchestration, crate version and git sha.
pub async fn info(_: Authorized, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(to_json(&state.info))
}

/// `/metrics` (any method, no auth): the provider's and the DAGs' metrics, OpenMetrics text
/// ([`crate::prom`]).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::prom::CONTENT_TYPE)
        .body(
            state.metrics.render()
                + &state.requests.render()
                + &super::dag_metrics::render(&state)
                + crate::prom::EOF,
        )
}
