//! Amazon Transcribe streaming simulator (protocols/aws-azure.md A2.1): the
//! `/stream-transcription-websocket` upgrade with its SigV4 presigned query verified against
//! the accepted `ACCESS_KEY_ID:SECRET` keys (a bad key or signature is refused with HTTP 403
//! and AWS's JSON error, before the upgrade), event-stream `AudioEvent`s in and
//! `TranscriptEvent`s out through the shared recognizer. The simulator signs as region
//! `us-east-1` unless the client's `?region=` says otherwise; it accepts any region in the
//! credential scope.

mod conn;

use aws::verify::{AuthError, IncomingRequest, ERROR_TYPE_HEADER};
use aws::Credentials;
use simkit::{Reply, Request, Route, Service, SimKeys, Stats, Ws};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Audio between partial results while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 300;
/// Silence that ends a segment.
const ENDPOINT_SILENCE_MS: u32 = 400;
/// Transcribe ends a stream that receives no audio for 15 s.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const PATH: &str = "/stream-transcription-websocket";

simulator!(
    /// The Amazon Transcribe streaming simulator.
    TranscribeSim
);

/// An upgraded stream: its key and query, or the `BadRequestException` it is refused with.
pub type Upgrade = (String, Result<Session, String>);

impl Service for TranscribeSim {
    type Session = Upgrade;
    const NAME: &'static str = "transcribe";

    fn route(&self, req: &Request, _: &Stats) -> Route<Upgrade> {
        if req.path != PATH {
            return Route::Reply(Reply::json(404, r#"{"message":"Not Found"}"#));
        }
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let incoming = IncomingRequest {
            method: "GET",
            path: &req.path,
            query: &req.query,
            headers: &headers,
            payload_sha256: aws::EMPTY_PAYLOAD_SHA256,
        };
        let keys = &self.cfg.keys;
        let verified =
            aws::verify(&incoming, "transcribe", SystemTime::now(), |akid| lookup(keys, akid).map(|(_, c)| c));
        let key = match verified.map(|v| lookup(keys, v.credentials.access_key_id())) {
            Ok(Some((key, _))) => key,
            Ok(None) => return Route::Reply(refusal(&AuthError::UnrecognizedClient)),
            Err(e) => return Route::Reply(refusal(&e)),
        };
        if !req.is_websocket() {
            return Route::Reply(Reply::with_type(400, "text/plain", "expected a WebSocket upgrade"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let headers = vec![("x-amzn-RequestId", id.clone()), ("x-amzn-SessionId", id)];
        Route::UpgradeWith((key, parse_session(&req.query)), headers)
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, (key, session): Upgrade, stats: Arc<Stats>, stop: CancellationToken) {
        match session {
            Err(message) => conn::refuse(&mut ws, "BadRequestException", &message).await,
            Ok(session) => {
                let _open = stats.accept(&key);
                let idle = self.cfg.idle_or(Some(IDLE_TIMEOUT));
                let mut p = conn::Conn::new(session, &self.cfg, idle, stats.clone());
                simkit::run(&mut ws, &mut p, &stop).await;
            }
        }
    }
}

/// The accepted key whose access key id is `akid`, as credentials.
fn lookup(keys: &SimKeys, akid: &str) -> Option<(String, Credentials)> {
    let key = keys.find(|k| k.split(':').next() == Some(akid))?;
    let creds = Credentials::parse(&key).ok()?;
    Some((key, creds))
}

/// AWS's refusal: status, `x-amzn-ErrorType`, JSON `{"__type","message"}`.
fn refusal(e: &AuthError) -> Reply {
    Reply::with_type(e.status(), "application/x-amz-json-1.1", e.json_body())
        .header(ERROR_TYPE_HEADER, e.error_type_header())
        .header("x-amzn-RequestId", uuid::Uuid::new_v4().to_string())
}

/// The stream parameters of the query (A2.1); `Err` is a `BadRequestException` message.
#[derive(Debug, Clone)]
pub struct Session {
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
