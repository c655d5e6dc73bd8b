//! Amazon Transcribe streaming simulator (protocols/aws-azure.md A2.1): the
//! `/stream-transcription-websocket` upgrade with its SigV4 presigned query verified against
//! the accepted `ACCESS_KEY_ID:SECRET` keys (a bad key or signature is refused with HTTP 403
//! and AWS's JSON error, before the upgrade), event-stream `AudioEvent`s in and
//! `TranscriptEvent`s out through the shared recognizer. The simulator signs as region
//! `us-east-1` unless the client's `?region=` says otherwise; it accepts any region in the
//! credential scope.

mod conn;

use super::wsconn::{HttpServer, Stats};
use super::{Catalog, SimKeys};
use aws::verify::{AuthError, IncomingRequest, ERROR_TYPE_HEADER};
use aws::Credentials;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct TranscribeSimConfig {
    /// Accepted `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` keys.
    pub keys: SimKeys,
    /// From the end of a segment to its final (`IsPartial: false`) result.
    pub final_delay: Duration,
    /// Audio between partial results while speech is ongoing.
    pub interim_every_ms: u64,
    /// Silence that ends a segment.
    pub endpoint_silence_ms: u32,
    /// Transcribe ends a stream that receives no audio for 15 s.
    pub idle_timeout: Duration,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, an `InternalFailureException` frame and close.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for TranscribeSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 300,
            endpoint_silence_ms: 400,
            idle_timeout: Duration::from_secs(15),
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
        }
    }
}

pub(crate) struct Shared {
    cfg: TranscribeSimConfig,
    stats: Stats,
    stop: CancellationToken,
}

/// A running simulator; stops on drop.
pub struct TranscribeSim {
    server: HttpServer,
    base_url: Url,
    shared: Arc<Shared>,
}

impl TranscribeSim {
    pub async fn start(cfg: TranscribeSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: TranscribeSimConfig) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared { stats: Stats::new(cfg.keys.clone()), cfg, stop: stop.clone() });
        let app = Router::new().route("/stream-transcription-websocket", get(stream)).with_state(shared.clone());
        let server = HttpServer::start(listener, app, stop, "transcribe")?;
        let base_url = server.url("ws")?;
        Ok(Self { server, base_url, shared })
    }

    /// `ws://127.0.0.1:PORT` (no `region`: clients sign for `us-east-1`).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// Key of every accepted stream, in order (test inspection only).
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.stats.seen_keys()
    }

    pub fn connections(&self) -> usize {
        self.shared.stats.connections()
    }

    pub fn open_connections(&self) -> usize {
        self.shared.stats.open_connections()
    }

    /// Audio bytes received over all streams.
    pub fn audio_bytes(&self) -> u64 {
        self.shared.stats.audio_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl simkit::RunningSim for TranscribeSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        TranscribeSim::seen_keys(self)
    }
}

/// Registry entry.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = TranscribeSim::start(TranscribeSimConfig {
            keys,
            final_delay: t.stt_final,
            catalog,
            fail_after_audio_ms: t.stt_fail_after_audio_ms,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

/// The accepted key whose access key id is `akid`, as credentials.
pub(crate) fn lookup(keys: &SimKeys, akid: &str) -> Option<(String, Credentials)> {
    let key = keys.find(|k| k.split(':').next() == Some(akid))?;
    let creds = Credentials::parse(&key).ok()?;
    Some((key, creds))
}

/// AWS's refusal: status, `x-amzn-ErrorType`, JSON `{"__type","message"}`.
pub(crate) fn refusal(e: &AuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut resp = (status, e.json_body()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Ok(v) = HeaderValue::from_str(&e.error_type_header()) {
        h.insert(ERROR_TYPE_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

/// The stream parameters of the query (A2.1); `Err` is a `BadRequestException` message.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub sample_rate: u32,
    pub language_code: String,
}

fn parse_session(query: &str) -> Result<Session, String> {
    let (mut rate, mut lang, mut encoding, mut identify) = (None, None, None, false);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "sample-rate" => rate = Some(v.into_owned()),
            "language-code" => lang = Some(v.into_owned()),
            "media-encoding" => encoding = Some(v.into_owned()),
            "identify-language" | "identify-multiple-languages" => identify = v == "true",
            _ => {}
        }
    }
    let sample_rate = match rate.as_deref().map(str::parse::<u32>) {
        Some(Ok(r)) if (8000..=48000).contains(&r) => r,
        Some(_) => return Err("The sample rate must be between 8000 and 48000 Hz.".into()),
        None => return Err("The sample-rate parameter is required.".into()),
    };
    match encoding.as_deref() {
        Some("pcm") => {}
        // Real Transcribe also takes ogg-opus and flac; the simulator decodes PCM only.
        Some("ogg-opus" | "flac") => return Err("The simulator accepts media-encoding pcm only.".into()),
        _ => return Err("The media-encoding parameter must be one of pcm, ogg-opus, flac.".into()),
    }
    let language_code = match lang {
        Some(l) if !l.is_empty() => l,
        _ if identify => "en-US".into(),
        _ => return Err("You must specify either a language code or identify-language.".into()),
    };
    Ok(Session { sample_rate, language_code })
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let pairs: Vec<(&str, &str)> =
        headers.iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))).collect();
    let query = uri.query().unwrap_or("");
    let req = IncomingRequest {
        method: "GET",
        path: uri.path(),
        query,
        headers: &pairs,
        payload_sha256: aws::EMPTY_PAYLOAD_SHA256,
    };
    let verified = aws::verify(&req, "transcribe", SystemTime::now(), |akid| {
        lookup(&shared.cfg.keys, akid).map(|(_, creds)| creds)
    });
    let key = match verified.map(|v| lookup(&shared.cfg.keys, v.credentials.access_key_id())) {
        Ok(Some((key, _))) => key,
        Ok(None) => return refusal(&AuthError::UnrecognizedClient),
        Err(e) => return refusal(&e),
    };
    let Ok(upgrade) = upgrade else {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
    };
    let session = parse_session(query);
    let mut resp = upgrade.on_upgrade(move |ws| async move {
        match session {
            Err(message) => conn::refuse(ws, "BadRequestException", &message).await,
            Ok(session) => {
                let _open = shared.stats.accept(&key);
                conn::run(ws, session, &shared).await;
            }
        }
    });
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-amzn-RequestId", v.clone());
        resp.headers_mut().insert("x-amzn-SessionId", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_parsing() {
        let s = parse_session("language-code=en-US&media-encoding=pcm&sample-rate=8000").unwrap();
        assert_eq!((s.sample_rate, s.language_code.as_str()), (8000, "en-US"));
        assert!(parse_session("language-code=en-US&media-encoding=pcm&sample-rate=4000").is_err());
        assert!(parse_session("language-code=en-US&media-encoding=mp3&sample-rate=8000").is_err());
        assert!(parse_session("media-encoding=pcm&sample-rate=8000").is_err());
        assert!(parse_session("identify-language=true&media-encoding=pcm&sample-rate=8000").is_ok());
    }
}
