//! Amazon Polly simulator (protocols/aws-azure.md A3.1, K): `POST /v1/speech`
//! (`SynthesizeSpeech`) and `GET /v1/voices` (`DescribeVoices`), both SigV4-verified against the
//! accepted `ACCESS_KEY_ID:SECRET` keys and refused like AWS (403, `x-amzn-ErrorType`, JSON
//! `{"__type","message"}`). Speech is the synthetic voice, PCM at the requested 8000/16000 Hz,
//! its length following the text, streamed in chunks faster than real time like Polly.
//! `TextType: ssml` is accepted; tags are neither voiced nor billed.

use super::speech::{Pacing, Speaker};
use super::SimKeys;
use aws::verify::{AuthError, IncomingRequest, ERROR_TYPE_HEADER};
use aws::Credentials;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct PollySimConfig {
    /// Accepted `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` keys.
    pub keys: SimKeys,
    /// From the request to the first audio bytes.
    pub first_audio_delay: Duration,
    /// Audio length per character.
    pub ms_per_char: u32,
    /// Seconds of audio produced per wall-clock second (Polly is well ahead of real time).
    pub pace: f32,
}

impl Default for PollySimConfig {
    fn default() -> Self {
        Self { keys: SimKeys::default(), first_audio_delay: Duration::from_millis(150), ms_per_char: 50, pace: 5.0 }
    }
}

struct Shared {
    cfg: PollySimConfig,
    seen_keys: Mutex<Vec<String>>,
    requests: AtomicU64,
    chars_billed: AtomicU64,
    stop: CancellationToken,
}

/// A running simulator; stops on drop.
pub struct PollySim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
}

impl PollySim {
    pub async fn start(cfg: PollySimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: PollySimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("http://{addr}")).map_err(std::io::Error::other)?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            chars_billed: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let app =
            Router::new().route("/v1/speech", post(speech)).route("/v1/voices", get(voices)).with_state(shared.clone());
        let shutdown = stop.cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "polly simulator stopped");
            }
        });
        Ok(Self { addr, base_url, shared })
    }

    /// `http://127.0.0.1:PORT` (no `region`: clients sign for `us-east-1`).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Key of every accepted request, in order (test inspection only).
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// `SynthesizeSpeech` calls answered with audio.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Characters billed over all requests (`x-amzn-RequestCharacters` summed).
    pub fn chars_billed(&self) -> u64 {
        self.shared.chars_billed.load(Ordering::Relaxed)
    }
}

impl Drop for PollySim {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl simkit::RunningSim for PollySim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        PollySim::seen_keys(self)
    }
}

/// Registry entry.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = PollySim::start(PollySimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

/// A restJson1 error as Polly's front end sends it.
fn aws_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, Json(json!({ "message": message }))).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("{code}:http://internal.amazon.com/coral/com.amazonaws.parrot.service/"))
    {
        resp.headers_mut().insert(ERROR_TYPE_HEADER, v);
    }
    request_id(resp)
}

fn request_id(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

fn refusal(e: &AuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut resp = (status, e.json_body()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&e.error_type_header()) {
        h.insert(ERROR_TYPE_HEADER, v);
    }
    request_id(resp)
}

/// Verifies the request's SigV4 signature; the accepted key string on success.
fn authenticate(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AuthError> {
    let pairs: Vec<(&str, &str)> =
        headers.iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))).collect();
    let hash = aws::sha256_hex(body);
    let req = IncomingRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        payload_sha256: &hash,
    };
    let lookup = |akid: &str| -> Option<(String, Credentials)> {
        let key = shared.cfg.keys.find(|k| k.split(':').next() == Some(akid))?;
        let creds = Credentials::parse(&key).ok()?;
        Some((key, creds))
    };
    let verified = aws::verify(&req, "polly", SystemTime::now(), |akid| lookup(akid).map(|(_, c)| c))?;
    let (key, _) = lookup(verified.credentials.access_key_id()).ok_or(AuthError::UnrecognizedClient)?;
    if let Ok(mut seen) = shared.seen_keys.lock() {
        seen.push(key.clone());
    }
    Ok(key)
}

const VOICES: [(&str, &str, &str, &str); 6] = [
    ("Joanna", "Female", "en-US", "US English"),
    ("Matthew", "Male", "en-US", "US English"),
    ("Ruth", "Female", "en-US", "US English"),
    ("Amy", "Female", "en-GB", "British English"),
    ("Lupe", "Female", "es-US", "US Spanish"),
    ("Vicki", "Female", "de-DE", "German"),
];

async fn voices(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = authenticate(&shared, &method, &uri, &headers, b"") {
        return refusal(&e);
    }
    let lang = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "LanguageCode")
        .map(|(_, v)| v.into_owned());
    let list: Vec<_> = VOICES
        .iter()
        .filter(|(_, _, code, _)| lang.as_deref().is_none_or(|l| l == *code))
        .map(|(id, gender, code, name)| {
            json!({"Gender": gender, "Id": id, "LanguageCode": code, "LanguageName": name, "Name": id,
                   "SupportedEngines": ["generative", "long-form", "neural", "standard"]})
        })
        .collect();
    request_id(Json(json!({ "Voices": list })).into_response())
}

/// Text as Polly voices and bills it: SSML tags removed, entities left as written.
fn spoken_text(text: &str, ssml: bool) -> String {
    if !ssml {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

async fn speech(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authenticate(&shared, &method, &uri, &headers, &body) {
        return refusal(&e);
    }
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return aws_error(400, "SerializationException", "Could not parse the request body as JSON.");
    };
    let field = |name: &str| req.get(name).and_then(|v| v.as_str());
    let (Some(format), Some(text), Some(voice)) = (field("OutputFormat"), field("Text"), field("VoiceId")) else {
        return aws_error(400, "ValidationException", "OutputFormat, Text and VoiceId are required.");
    };
    let engine = field("Engine").unwrap_or("standard");
    if !["standard", "neural", "long-form", "generative"].contains(&engine) {
        let msg = format!("1 validation error detected: Value '{engine}' at 'engine' failed to satisfy constraint: Member must satisfy enum value set: [standard, neural, long-form, generative]");
        return aws_error(400, "ValidationException", &msg);
    }
    if voice.is_empty() {
        return aws_error(400, "ValidationException", "VoiceId must not be empty.");
    }
    match format {
        "pcm" => {}
        "mp3" | "ogg_vorbis" | "ogg_opus" | "json" | "mulaw" | "alaw" => {
            return aws_error(400, "ValidationException", "The simulator produces OutputFormat pcm only.");
        }
        _ => {
            return aws_error(
                400,
                "ValidationException",
                "OutputFormat must be one of json, mp3, ogg_opus, ogg_vorbis, pcm, mulaw, alaw.",
            )
        }
    }
    let sample_rate = match field("SampleRate").unwrap_or("16000") {
        "8000" => 8000,
        "16000" => 16000,
        _ => return aws_error(400, "InvalidSampleRateException", "The specified sample rate is not valid for pcm."),
    };
    let ssml = match field("TextType").unwrap_or("text") {
        "text" => false,
        "ssml" => true,
        _ => return aws_error(400, "ValidationException", "TextType must be text or ssml."),
    };
    let spoken = spoken_text(text, ssml);
    let billed = spoken.chars().count() as u64;
    if text.chars().count() > 6000 || billed > 3000 {
        return aws_error(400, "TextLengthExceededException", "Maximum text length has been exceeded");
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.chars_billed.fetch_add(billed, Ordering::Relaxed);

    let cfg = &shared.cfg;
    let pacing = Pacing {
        sample_rate,
        ms_per_char: cfg.ms_per_char,
        piece_ms: 100,
        pace: cfg.pace,
        first_audio_delay: cfg.first_audio_delay,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let stop = shared.stop.clone();
    tokio::spawn(async move {
        let mut speaker = Speaker::new(pacing);
        speaker.say(&spoken, tokio::time::Instant::now());
        while let Some(due) = speaker.due() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
            }
            let Some(piece) = speaker.next() else { break };
            if tx.send(Ok(Bytes::copy_from_slice(piece.pcm))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/pcm"));
    h.insert("x-amzn-RequestCharacters", HeaderValue::from(billed));
    request_id(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssml_tags_are_not_spoken_or_billed() {
        assert_eq!(spoken_text("<speak>Hi <break time=\"1s\"/>there.</speak>", true), "Hi there.");
        assert_eq!(spoken_text("a < b", false), "a < b");
    }
}
