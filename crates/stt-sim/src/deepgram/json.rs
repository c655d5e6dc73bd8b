//! Server → client messages, written out as the provider's JSON (protocols/stt.md B1).

use crate::audio::{ms, rfc3339_now};
use crate::recognizer::{bare, Hyp};
use serde_json::json;
use uuid::Uuid;

/// Fixed per connection: every `Results` carries the same request and model identity.
pub(super) struct Ids {
    pub request_id: Uuid,
    pub model_uuid: Uuid,
    pub model: String,
}

pub(super) fn results(ids: &Ids, hyp: &Hyp, is_final: bool, speech_final: bool, from_finalize: bool) -> String {
    let words: Vec<_> = hyp
        .words
        .iter()
        .map(|w| {
            json!({
                "word": bare(&w.punctuated),
                "start": ms(w.start_s),
                "end": ms(w.end_s),
                "confidence": 0.98,
                "punctuated_word": w.punctuated,
            })
        })
        .collect();
    let confidence = if hyp.transcript.is_empty() { 0.0 } else { 0.97 };
    json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": ms(hyp.end_s - hyp.start_s),
        "start": ms(hyp.start_s),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": hyp.transcript, "confidence": confidence, "words": words}]},
        "metadata": {
            "request_id": ids.request_id.to_string(),
            "model_uuid": ids.model_uuid.to_string(),
            "model_info": {"name": ids.model, "version": "sim", "arch": "sim"},
        },
    })
    .to_string()
}

pub(super) fn speech_started(at_s: f64) -> String {
    json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": ms(at_s)}).to_string()
}

pub(super) fn utterance_end(last_word_end_s: f64) -> String {
    json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": ms(last_word_end_s)}).to_string()
}

/// The summary sent after `CloseStream`; `duration` is the billable audio in seconds.
pub(super) fn metadata(ids: &Ids, duration_s: f64) -> String {
    json!({
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": ids.request_id.to_string(),
        "sha256": format!("{}{}", ids.request_id.simple(), ids.model_uuid.simple()),
        "created": rfc3339_now(),
        "duration": duration_s,
        "channels": 1,
        "models": [ids.model_uuid.to_string()],
        "model_info": {ids.model_uuid.to_string(): {"name": ids.model, "version": "sim", "arch": "sim"}},
    })
    .to_string()
}

/// HTTP error body at upgrade, e.g. `{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}`.
pub(super) fn http_error(err_code: &str, err_msg: &str) -> String {
    json!({"err_code": err_code, "err_msg": err_msg, "request_id": Uuid::new_v4().to_string()}).to_string()
}

/// Why a `sample_rate` was refused.
pub(super) const BAD_RATE: &str = "sample_rate must be an integer between 8000 and 48000";

/// A `sample_rate` query value Deepgram accepts.
pub(super) fn sample_rate(v: &str) -> Option<u32> {
    v.parse::<u32>().ok().filter(|r| (8000..=48000).contains(r))
}

/// Raw audio must name `encoding=linear16` and a sample rate; the rate, or why not.
pub(super) fn linear16(encoding: Option<&str>, sample_rate: Option<u32>) -> Result<u32, &'static str> {
    match encoding {
        Some("linear16") => {}
        Some(_) => return Err("the simulator decodes encoding=linear16 only"),
        None => return Err("raw audio needs encoding and sample_rate"),
    }
    sample_rate.ok_or("raw audio needs encoding and sample_rate")
}
