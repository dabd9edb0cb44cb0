//! HTTP basic auth exactly like faas-provider (contract §3): one credential pair shared with the gateway,
//! compared in constant time, 401 with `WWW-Authenticate: Basic realm="Restricted"` on failure.
//!
//! It is an extractor rather than a middleware so that, as with gorilla/mux, a wrong method on a known
//! path is 405 before credentials are looked at. Every protected handler takes [`Authorized`] as its
//! first argument.
use std::future::{Ready, ready};

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::config::Credentials;

/// Proof that the request passed basic auth (or that auth is off).
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

impl FromRequest for Authorized {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let creds = req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.credentials.as_ref());
        ready(match creds {
            None => Ok(Authorized),
            Some(c)
                if check(
                    req.headers()
                        .get(header::AUTHORIZATION)
                        .map(|v| v.as_bytes()),
                    c,
                ) =>
            {
                Ok(Authorized)
            }
            Some(_) => Err(ApiError::Unauthorized),
        })
    }
}

/// True when `authorization` is `Basic base64(user:password)` matching `c`.
pub fn check(authorization: Option<&[u8]>, c: &Credentials) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix(b"Basic ")
        .or_else(|| value.strip_prefix(b"basic "))
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim_ascii()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    // Evaluate both comparisons before combining, so timing does not reveal which one failed.
    let user_ok = user.ct_eq(c.user.as_bytes());
    let password_ok = password.ct_eq(c.password.as_bytes());
    bool::from(user_ok & password_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            user: "admin".into(),
            password: "s3cr:et".into(),
        }
    }

    #[test]
    fn accepts_only_the_exact_pair() {
        let ok = format!("Basic {}", STANDARD.encode("admin:s3cr:et"));
        assert!(check(Some(ok.as_bytes()), &creds()));
        for bad in [
            format!("Basic {}", STANDARD.encode("admin:s3cr")),
            format!("Basic {}", STANDARD.encode("Admin:s3cr:et")),
            format!("Bearer {}", STANDARD.encode("admin:s3cr:et")),
            "Basic !!!".to_owned(),
            format!("Basic {}", STANDARD.encode("admin")),
        ] {
            assert!(!check(Some(bad.as_bytes()), &creds()), "{bad}");
        }
        assert!(!check(None, &creds()));
    }
}
