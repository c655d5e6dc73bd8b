//! The media routes: each gateway's websocket, upgraded and run as one session with that
//! gateway's codec. The route and its OpenAPI operation are made from the gateway's registry
//! row (`gateways`), so each websocket is one documented operation without a handler of its own.

use crate::api::{bearer, AppState};
use crate::gateways::{Gateway, Media};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use session::transport::{WireCodec, MAX_MESSAGE_BYTES};
use session::UpgradeAuth;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterIn, PathItem, PathsBuilder};
use utoipa::openapi::ResponseBuilder;
use utoipa::IntoParams;
use utoipa_axum::router::UtoipaMethodRouter;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// A stream or client token (carriers may send it as a header or a custom parameter instead).
    token: Option<String>,
}

/// Upgrade a gateway's websocket and run one session over it with that gateway's codec.
fn gateway_session(s: AppState, ws: WebSocketUpgrade, codec: fn() -> Box<dyn WireCodec>, up: UpgradeAuth) -> Response {
    let deps = s.deps.clone();
    // Small buffers: tungstenite zero-fills its read buffer's free space before every read
    // (its default 128 KiB dominated CPU and memory per call), and a carrier's 20 ms frame
    // (300–700 bytes) fits in 1 KiB; a larger message is read in 1 KiB pieces. Writes collect
    // up to 8 KiB until the writer flushes, so a burst of frames is one socket write.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| session::run_session(socket, codec(), deps, up))
}

/// What the upgrade request carries that may prove the caller: a bearer credential, a token
/// (query, or Telnyx's streaming auth header) and Twilio's signature of the stream URL.
fn upgrade_auth(s: &AppState, headers: &HeaderMap, path: &str, query: StreamQuery) -> UpgradeAuth {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    UpgradeAuth {
        bearer: bearer(headers).map(str::to_string),
        token: query.token.or_else(|| header("x-telnyx-streaming-auth-token")),
        twilio_signature: header("x-twilio-signature"),
        twilio_url: Some(format!("{}{path}", crate::answer::ws_base(s, headers))),
        listener: None,
    }
}

/// A gateway's media websocket and its OpenAPI operation (`<name>Stream`, tag `gateways`),
/// built from its registry row; `None` for a gateway that is not a websocket.
pub fn route(g: &'static Gateway) -> Option<UtoipaMethodRouter<AppState>> {
    let Media::Websocket { path, summary, description, codec } = g.media else { return None };
    let operation = OperationBuilder::new()
        .tag("gateways")
        .summary(Some(summary))
        .description(Some(description))
        .operation_id(Some(format!("{}Stream", g.name)))
        .parameters(Some(StreamQuery::into_params(|| Some(ParameterIn::Query))))
        .response("101", ResponseBuilder::new().description("Switching protocols (websocket)"))
        .build();
    let paths = PathsBuilder::new().path(path, PathItem::new(HttpMethod::Get, operation)).build();
    let handler = move |State(s): State<AppState>,
                        headers: HeaderMap,
                        Query(q): Query<StreamQuery>,
                        ws: WebSocketUpgrade| async move {
        let up = upgrade_auth(&s, &headers, path, q);
        gateway_session(s, ws, codec, up)
    };
    Some((Vec::new(), paths, axum::routing::get(handler)))
}
