//! Server → client messages, written out as the provider's JSON (protocols/stt.md B1).

use crate::sim::recognizer::{bare, Hyp};
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

fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// `2024-08-29T22:37:55.202Z` without a date crate (civil-from-days, Howard Hinnant).
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_looks_like_rfc3339() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T");
    }
}
