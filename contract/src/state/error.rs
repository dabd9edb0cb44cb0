//! The one place where failures become HTTP statuses (contract §10.3). Handlers return `ApiError`;
//! its `ResponseError` impl writes a plain-text message like faas-provider does.
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::backend::BackendError;
use crate::catalog::CatalogError;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Internal(String),
    /// A dependency (the Kubernetes API server) cannot be reached now: 503, retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(m) => ApiError::BadRequest(m),
            CatalogError::FunctionNotFound { .. }
            | CatalogError::SecretNotFound { .. }
            | CatalogError::NamespaceNotFound(_) => ApiError::NotFound(e.to_string()),
            CatalogError::Conflict(m) => ApiError::Conflict(m),
            CatalogError::Io(_) | CatalogError::Corrupt(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Invalid(m) => ApiError::BadRequest(m),
            BackendError::Failed(m) => ApiError::Internal(m),
            BackendError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(m) = self {
            tracing::error!("internal error: {m}");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("text/plain; charset=utf-8");
        if matches!(self, ApiError::Unauthorized) {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Restricted\""),
            ));
        }
        res.body(self.to_string())
    }
}

/// Decodes a JSON body with Go's leniency (unknown keys ignored, `null` maps accepted); any failure is 400.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("failed to unmarshal request: {e}")))
}
