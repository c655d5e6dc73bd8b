//! Carrier answer webhooks: a carrier asks what to do with an incoming call. The called number
//! picks the org and agent; the carrier's signature is checked with that org's carrier
//! credential; the answer opens the bidirectional media stream with a per-call, single-use
//! stream token bound to the carrier's call id. Algorithms: `protocols/gateway-auth.md`.
//!
//! Each handler is routed from its carrier's row in `crate::gateways`.
//!
//! Refusals: 404 for a number nobody routed, 403 for a missing, bad or stale signature, a
//! missing carrier credential, or a replayed webhook (a call id that already got a token).

use crate::api::{ApiError, AppState};
use crate::api_access::{e164, mint};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::store::NumberRow;
use std::time::Duration;

/// A stream token must be used within this long after the answer.
const STREAM_TOKEN_TTL_S: i64 = 300;

/// The public base the carrier reached us at (`--public-url`), else this request's Host.
pub fn http_base(s: &AppState, headers: &HeaderMap) -> String {
    match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}")
        }
    }
}

/// [`http_base`] as a websocket base: `https` → `wss`, `http` → `ws`.
pub fn ws_base(s: &AppState, headers: &HeaderMap) -> String {
    let base = http_base(s, headers);
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{base}"),
    }
}

/// The URL the carrier signed: public base, path and the raw query.
fn signed_url(s: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}{}{query}", http_base(s, headers), uri.path())
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn now_s() -> i64 {
    billing::store::now_ms() / 1000
}

/// The number's route and its org's credential for `carrier`.
async fn route(s: &AppState, carrier: &str, to: Option<&str>) -> Result<(NumberRow, carrier::Credentials), ApiError> {
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "unknown_number", "the called number is not routed here");
    let number = e164(to.unwrap_or_default()).ok_or_else(unknown)?;
    let row = s
        .deps
        .store
        .number(&number)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "number lookup failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the store is unavailable")
        })?
        .filter(|r| r.carrier == carrier)
        .ok_or_else(unknown)?;
    let creds = session::admission::carrier_credentials(&s.deps, &row.org_id, carrier)
        .await
        .map_err(|d| forbidden(d.code, d.message))?
        .ok_or_else(|| {
            forbidden("carrier_credential_missing", format!("the number's org has no {carrier} credential"))
        })?;
    Ok((row, creds))
}

/// Mint the call's stream token; a call id that already got one is a replay.
async fn token_for(s: &AppState, route: &NumberRow, call_id: Option<&str>) -> Result<String, ApiError> {
    let call_id = call_id.filter(|c| !c.is_empty()).ok_or_else(|| forbidden("missing_call_id", "no call id"))?;
    let minted =
        mint(s, &route.carrier, &route.org_id, &route.agent_id, Some(call_id), Some(&route.id), STREAM_TOKEN_TTL_S)
            .await?;
    let (token, _) = minted.ok_or_else(|| forbidden("replayed", "this call was already answered"))?;
    tracing::info!(carrier = %route.carrier, org = %route.org_id, number = %route.number, "call answered with a stream token");
    Ok(token)
}

fn xml(doc: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], doc).into_response()
}

/// Twilio voice webhook
///
/// Form POST signed with `X-Twilio-Signature`: answers TwiML `<Connect><Stream>` with a
/// per-call stream token as a `<Parameter>` (Twilio's stream URL takes no query string).
#[utoipa::path(post, path = "/twilio/voice", operation_id = "twilioVoiceWebhook", tag = "webhooks", request_body(content = std::collections::HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "The carrier's call parameters (To, CallSid, …)"),
    responses((status = 200, description = "TwiML", content_type = "text/xml", body = String)))]
pub async fn twilio_voice(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = form(&body);
    let (route, creds) = route(&s, "twilio", param(&params, "To")).await?;
    if param(&params, "AccountSid") != Some(creds.account_id()) {
        return Err(forbidden("bad_signature", "AccountSid is not the number's account"));
    }
    let sig = header_str(&headers, "x-twilio-signature")
        .ok_or_else(|| forbidden("missing_signature", "no X-Twilio-Signature"))?;
    gwauth::twilio::verify(creds.secret_field(), &signed_url(&s, &headers, &uri), &params, sig)
        .map_err(|e| forbidden(e.code(), "X-Twilio-Signature does not match"))?;
    let token = token_for(&s, &route, param(&params, "CallSid")).await?;
    let url = carrier::xml_escape(&format!("{}/twilio/stream", ws_base(&s, &headers)));
    Ok(xml(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{url}"><Parameter name="vt" value="{token}"/></Stream></Connect></Response>"#
    )))
}

fn verify_telnyx(headers: &HeaderMap, body: &[u8], creds: &carrier::Credentials) -> Result<(), ApiError> {
    gwauth::telnyx::verify(
        creds.account_id(),
        header_str(headers, "telnyx-timestamp"),
        body,
        header_str(headers, "telnyx-signature-ed25519"),
        now_s(),
    )
    .map_err(|e| forbidden(e.code(), "the Telnyx signature does not verify"))
}

/// Telnyx TeXML webhook
///
/// Form POST signed with Ed25519 over `timestamp|body` (`telnyx-signature-ed25519`,
/// `telnyx-timestamp`): answers `<Connect><Stream>` bidirectional RTP with the token as a
/// `<Parameter>`.
#[utoipa::path(post, path = "/telnyx/texml", operation_id = "telnyxTexmlWebhook", tag = "webhooks", request_body(content = std::collections::HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "The carrier's call parameters (To, CallSid, …)"),
    responses((status = 200, description = "TeXML", content_type = "text/xml", body = String)))]
pub async fn telnyx_texml(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let params = form(&body);
    let (route, creds) = route(&s, "telnyx", param(&params, "To")).await?;
    verify_telnyx(&headers, &body, &creds)?;
    let token = token_for(&s, &route, param(&params, "CallSid")).await?;
    let url = carrier::xml_escape(&format!("{}/telnyx/stream", ws_base(&s, &headers)));
    Ok(xml(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{url}" bidirectionalMode="rtp" bidirectionalCodec="PCMU"><Parameter name="vt" value="{token}"/></Stream></Connect></Response>"#
    )))
}

/// What a Call Control event got: answered (`call.initiated`) or ignored (anything else).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CallControlAck {
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered: Option<bool>,
}

/// Telnyx Call Control webhook
///
/// JSON events signed with Ed25519: on `call.initiated` answers the call over the REST API and
/// starts the stream with the token as its `stream_auth_token`. Other events are acknowledged
/// and ignored.
#[utoipa::path(post, path = "/telnyx/call-control", operation_id = "telnyxCallControlWebhook", tag = "webhooks",
    request_body(content = Object, description = "A Telnyx Call Control event"),
    responses((status = 200, body = CallControlAck)))]
pub async fn telnyx_call_control(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let event: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "the webhook body is not JSON"))?;
    let data = &event["data"];
    if data["event_type"] != "call.initiated" {
        return Ok(Json(CallControlAck { ignored: Some(true), answered: None }).into_response());
    }
    let payload = &data["payload"];
    let (route, creds) = route(&s, "telnyx", payload["to"].as_str()).await?;
    verify_telnyx(&headers, &body, &creds)?;
    let call = payload["call_control_id"].as_str().unwrap_or_default().to_string();
    let token = token_for(&s, &route, Some(&call)).await?;
    let stream_url = format!("{}/telnyx/stream", ws_base(&s, &headers));
    let base = s.deps.access.carrier_urls.get("telnyx").cloned().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "carrier_unconfigured", "no Telnyx API base URL")
    })?;
    let api_key = secrecy::SecretString::from(creds.secret_field().to_string());
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        carrier::telnyx_answer_and_stream(&s.deps.access.http, &base, &api_key, &call, &stream_url, &token),
    )
    .await;
    match answered {
        Ok(Ok(())) => Ok(Json(CallControlAck { ignored: None, answered: Some(true) }).into_response()),
        Ok(Err(e)) => {
            tracing::warn!(code = e.code(), "Telnyx answer failed: {e}");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "carrier_error",
                format!("Telnyx refused the answer: {}", e.code()),
            ))
        }
        Err(_) => Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "carrier_timeout", "Telnyx did not answer in 10 s")),
    }
}

/// Plivo answer URL
///
/// Form POST signed with `X-Plivo-Signature-V3` and its nonce: answers a bidirectional
/// `<Stream>` with the token in `extraHeaders` (alphanumeric, which the hex token is).
#[utoipa::path(post, path = "/plivo/answer", operation_id = "plivoAnswerWebhook", tag = "webhooks", request_body(content = std::collections::HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "The carrier's call parameters (To, CallSid, …)"),
    responses((status = 200, description = "Plivo XML", content_type = "text/xml", body = String)))]
pub async fn plivo_answer(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = form(&body);
    let (route, creds) = route(&s, "plivo", param(&params, "To")).await?;
    gwauth::plivo::verify_v3(
        creds.secret_field(),
        "POST",
        &signed_url(&s, &headers, &uri),
        &params,
        header_str(&headers, "x-plivo-signature-v3-nonce"),
        header_str(&headers, "x-plivo-signature-v3"),
    )
    .map_err(|e| forbidden(e.code(), "X-Plivo-Signature-V3 does not match"))?;
    let token = token_for(&s, &route, param(&params, "CallUUID")).await?;
    let url = carrier::xml_escape(&format!("{}/plivo/stream", ws_base(&s, &headers)));
    Ok(xml(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000" extraHeaders="vt={token}">{url}</Stream></Response>"#
    )))
}

/// Plivo transfer XML
///
/// Where Plivo's Transfer API fetches the dial instructions of an agent's `transfer_call`
/// (Plivo takes a URL, not the XML): `<Dial>` to the `to` number or SIP URI. It only says
/// where to dial, so it needs no signature; the transfer itself is our authenticated REST call.
#[utoipa::path(get, path = "/plivo/transfer.xml", operation_id = "plivoTransferXml", tag = "webhooks",
    params(("to" = String, Query, description = "E.164 number or SIP URI")),
    responses((status = 200, description = "Plivo XML", content_type = "text/xml", body = String)))]
pub async fn plivo_transfer_xml(uri: Uri) -> Result<Response, ApiError> {
    let params = form(uri.query().unwrap_or_default().as_bytes());
    let target = carrier::Target::parse(param(&params, "to").unwrap_or_default())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    Ok(xml(carrier::plivo_dial_xml(&target, None)))
}

/// Vonage answer URL
///
/// GET with the call in the query and a signed-webhook JWT in `Authorization`: answers an NCCO
/// that connects a websocket with the token as its `Authorization` and in its headers.
#[utoipa::path(get, path = "/vonage/answer", operation_id = "vonageAnswerWebhook", tag = "webhooks",
    params(("to" = Option<String>, Query, description = "The called number"),
           ("uuid" = Option<String>, Query, description = "Vonage's call id")),
    responses((status = 200, description = "NCCO", body = Vec<Object>)))]
pub async fn vonage_answer(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let params = form(uri.query().unwrap_or_default().as_bytes());
    let (route, creds) = route(&s, "vonage", param(&params, "to")).await?;
    let claims =
        gwauth::vonage::verify_webhook(creds.secret_field(), header_str(&headers, "authorization"), None, now_s())
            .map_err(|e| forbidden(e.code(), "the Vonage signed-webhook JWT does not verify"))?;
    if claims.get("application_id").and_then(|v| v.as_str()).is_some_and(|a| a != creds.account_id()) {
        return Err(forbidden("bad_signature", "the JWT is for another application"));
    }
    let uuid = param(&params, "uuid").unwrap_or_default().to_string();
    let token = token_for(&s, &route, Some(&uuid)).await?;
    let ncco = serde_json::json!([{
        "action": "connect",
        "endpoint": [{
            "type": "websocket",
            "uri": format!("{}/vonage/stream", ws_base(&s, &headers)),
            "content-type": "audio/l16;rate=16000",
            "headers": {"vt": token, "call_uuid": uuid},
            "authorization": {"type": "custom", "value": format!("Bearer {token}")},
        }],
    }]);
    Ok(Json(ncco).into_response())
}
