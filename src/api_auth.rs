//! Who is asking, as axum extractors: a handler names the caller it needs in its signature
//! ([`OrgKey`], [`AdminToken`] or [`CallViewer`]) and the request is refused before the handler
//! runs, before its query or body is even read.

use crate::api::{check_admin, ApiError, AppState};
use crate::api_calls::viewer;
use crate::api_org::org_auth;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use billing::store::OrgRow;
use session::hub::Viewer;

/// An org, by its API key (`Authorization: Bearer sk_…`).
pub struct OrgKey(pub OrgRow);

/// The operator, by the admin token.
pub struct AdminToken;

/// The admin token, an org key, or (sandbox only) nobody, who sees the `default` org.
pub struct CallViewer(pub Viewer);

impl FromRequestParts<AppState> for OrgKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        org_auth(s, &parts.headers).await.map(OrgKey)
    }
}

impl FromRequestParts<AppState> for AdminToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        check_admin(s, &parts.headers).map(|()| AdminToken)
    }
}

impl FromRequestParts<AppState> for CallViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        viewer(s, &parts.headers).await.map(CallViewer)
    }
}
