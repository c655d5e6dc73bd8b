//! Amazon Polly simulator (protocols/aws-azure.md A3.1, K): `POST /v1/speech`
//! (`SynthesizeSpeech`) and `GET /v1/voices` (`DescribeVoices`), both SigV4-verified against the
//! accepted `ACCESS_KEY_ID:SECRET` keys and refused like AWS (403, `x-amzn-ErrorType`, JSON
//! `{"__type","message"}`). Speech is the synthetic voice, PCM at the requested 8000/16000 Hz,
//! its length following the text, streamed in chunks faster than real time like Polly.
//! `TextType: ssml` is accepted; tags are neither voiced nor billed.

use crate::speech::Speaker;
use crate::Voicing;
use aws::verify::{AuthError, IncomingRequest, ERROR_TYPE_HEADER};
use aws::Credentials;
use serde_json::json;
use simkit::{BodyStream, Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to the real service (Polly is well ahead of real time).
/// The fault cuts a response body off mid-stream.
#[derive(Debug, Clone)]
pub struct PollySimConfig {
    pub voicing: Voicing,
}

impl Default for PollySimConfig {
    fn default() -> Self {
        Self { voicing: Voicing { pace: 5.0, piece_ms: 100, ..Voicing::default() } }
    }
}

/// A running Polly simulator: `PollySim::start(keys, config.into())`, keys being
/// `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`; stops on drop. Its base URL is
/// `http://127.0.0.1:PORT` (no `region`: clients sign for `us-east-1`). `received` counts the
/// characters billed (`x-amzn-RequestCharacters` summed); each response body is a stream.
pub type PollySim = SimServer<Polly>;

/// The Polly service: its knobs and how many `SynthesizeSpeech` calls it answered.
pub struct Polly {
    cfg: PollySimConfig,
    requests: AtomicU64,
}

impl From<PollySimConfig> for Polly {
    fn from(cfg: PollySimConfig) -> Self {
        Self { cfg, requests: AtomicU64::new(0) }
    }
}

impl Polly {
    /// `SynthesizeSpeech` calls answered with audio.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Service for Polly {
    /// Polly is REST only: nothing upgrades.
    type Session = ();

    const NAME: &'static str = "polly";
    const SCHEME: &'static str = "http";

    fn route(&self, req: &Request, stats: &Stats) -> Route<()> {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v1/speech") => self.speech(req, stats),
            ("GET", "/v1/voices") => Route::Reply(voices(req, stats)),
            _ => Route::Reply(aws_error(404, "UnknownOperationException", "No such operation.")),
        }
    }

    async fn serve(self: Arc<Self>, _: Ws, (): (), _: Arc<Stats>, _: CancellationToken) {}
}

/// A restJson1 error as Polly's front end sends it.
fn aws_error(status: u16, code: &str, message: &str) -> Reply {
    let kind = format!("{code}:http://internal.amazon.com/coral/com.amazonaws.parrot.service/");
    request_id(Reply::json(status, json!({ "message": message }).to_string()).header(ERROR_TYPE_HEADER, kind))
}

fn request_id(reply: Reply) -> Reply {
    reply.header("x-amzn-RequestId", uuid::Uuid::new_v4().to_string())
}

fn refusal(e: &AuthError) -> Reply {
    request_id(Reply::json(e.status(), e.json_body()).header(ERROR_TYPE_HEADER, e.error_type_header()))
}

/// Verifies the request's SigV4 signature; the accepted key string on success.
fn authenticate(req: &Request, stats: &Stats) -> Result<String, AuthError> {
    let pairs: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let hash = aws::sha256_hex(&req.body);
    let incoming = IncomingRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &pairs,
        payload_sha256: &hash,
    };
    let lookup = |akid: &str| -> Option<(String, Credentials)> {
        let key = stats.keys.find(|k| k.split(':').next() == Some(akid))?;
        let creds = Credentials::parse(&key).ok()?;
        Some((key, creds))
    };
    let verified = aws::verify(&incoming, "polly", SystemTime::now(), |akid| lookup(akid).map(|(_, c)| c))?;
    let (key, _) = lookup(verified.credentials.access_key_id()).ok_or(AuthError::UnrecognizedClient)?;
    stats.saw_key(&key);
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

/// `DescribeVoices`: a few voices in Polly's shape.
fn voices(req: &Request, stats: &Stats) -> Reply {
    if let Err(e) = authenticate(req, stats) {
        return refusal(&e);
    }
    let lang = req.query_param("LanguageCode");
    let list: Vec<_> = VOICES
        .iter()
        .filter(|(_, _, code, _)| lang.as_deref().is_none_or(|l| l == *code))
        .map(|(id, gender, code, name)| {
            json!({"Gender": gender, "Id": id, "LanguageCode": code, "LanguageName": name, "Name": id,
                   "SupportedEngines": ["generative", "long-form", "neural", "standard"]})
        })
        .collect();
    request_id(Reply::json(200, json!({ "Voices": list }).to_string()))
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

impl Polly {
    /// `SynthesizeSpeech`: validated like Polly, answered with paced PCM as it is produced.
    fn speech(&self, req: &Request, stats: &Stats) -> Route<()> {
        match self.synthesize(req, stats) {
            Ok((head, body)) => Route::Stream(head, body),
            Err(reply) => Route::Reply(reply),
        }
    }

    fn synthesize(&self, http: &Request, stats: &Stats) -> Result<(Reply, BodyStream), Reply> {
        authenticate(http, stats).map_err(|e| refusal(&e))?;
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(&http.body) else {
            return Err(aws_error(400, "SerializationException", "Could not parse the request body as JSON."));
        };
        let field = |name: &str| req.get(name).and_then(|v| v.as_str());
        let (Some(format), Some(text), Some(voice)) = (field("OutputFormat"), field("Text"), field("VoiceId")) else {
            return Err(aws_error(400, "ValidationException", "OutputFormat, Text and VoiceId are required."));
        };
        let engine = field("Engine").unwrap_or("standard");
        if !["standard", "neural", "long-form", "generative"].contains(&engine) {
            let msg = format!("1 validation error detected: Value '{engine}' at 'engine' failed to satisfy constraint: Member must satisfy enum value set: [standard, neural, long-form, generative]");
            return Err(aws_error(400, "ValidationException", &msg));
        }
        if voice.is_empty() {
            return Err(aws_error(400, "ValidationException", "VoiceId must not be empty."));
        }
        match format {
            "pcm" => {}
            "mp3" | "ogg_vorbis" | "ogg_opus" | "json" | "mulaw" | "alaw" => {
                return Err(aws_error(400, "ValidationException", "The simulator produces OutputFormat pcm only."));
            }
            _ => {
                return Err(aws_error(
                    400,
                    "ValidationException",
                    "OutputFormat must be one of json, mp3, ogg_opus, ogg_vorbis, pcm, mulaw, alaw.",
                ))
            }
        }
        let sample_rate = match field("SampleRate").unwrap_or("16000") {
            "8000" => 8000,
            "16000" => 16000,
            _ => {
                return Err(aws_error(
                    400,
                    "InvalidSampleRateException",
                    "The specified sample rate is not valid for pcm.",
                ))
            }
        };
        let ssml = match field("TextType").unwrap_or("text") {
            "text" => false,
            "ssml" => true,
            _ => return Err(aws_error(400, "ValidationException", "TextType must be text or ssml.")),
        };
        let spoken = spoken_text(text, ssml);
        let billed = spoken.chars().count() as u64;
        if text.chars().count() > 6000 || billed > 3000 {
            return Err(aws_error(400, "TextLengthExceededException", "Maximum text length has been exceeded"));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        stats.received(billed as usize);

        let cfg = &self.cfg;
        let mut speaker = Speaker::new(&cfg.voicing, sample_rate);
        speaker.say(&spoken, tokio::time::Instant::now());
        let head =
            request_id(Reply::with_type(200, "audio/pcm", "").header("x-amzn-RequestCharacters", billed.to_string()));
        Ok((head, paced(speaker, cfg.voicing.fail_after_chars)))
    }
}

/// A response body being voiced; with a fault, cut off once enough is voiced.
struct Body {
    speaker: Speaker,
    fail_after: Option<u64>,
    failed: bool,
}

/// The speaker's pieces, each sent when due; with a fault, an error after the piece that
/// reaches it.
fn paced(speaker: Speaker, fail_after: Option<u64>) -> BodyStream {
    let body = Body { speaker, fail_after, failed: false };
    Box::pin(futures::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        if body.failed {
            return Some((Err(std::io::Error::other("simulated synthesis fault")), None));
        }
        tokio::time::sleep_until(body.speaker.due()?).await;
        let pcm = body.speaker.next()?.pcm.to_vec();
        body.failed = body.fail_after.is_some_and(|n| body.speaker.voiced() >= n);
        Some((Ok(pcm), Some(body)))
    }))
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
