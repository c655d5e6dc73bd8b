//! Deepgram Flux (`/v2/listen`, protocols/stt.md B2): the same provider, key and host as v1,
//! chosen for models named `flux-…`. Flux detects turns itself and reports them as `TurnInfo`
//! events; v2 has no `KeepAlive`/`Finalize` messages and no usage summary, so those become
//! silence frames and usage is counted locally (`estimated`).

use super::Deepgram;
use crate::wspump::{self, Dialect, Flow};
use crate::{SttError, SttEvent, SttRequest, SttStream};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use url::Url;

const CLOSE_STREAM: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"CloseStream"}"#);
/// Silence sent for `Finalize`: Flux ends a turn on its own once it hears a pause.
const FINALIZE_SILENCE_MS: u32 = 500;
/// Silence sent as a keep-alive (Flux has no KeepAlive message).
const KEEPALIVE_SILENCE_MS: u32 = 100;

/// Models that [`Deepgram`] routes to Flux.
pub(super) fn is_flux(model: &str) -> bool {
    model.starts_with("flux")
}

pub(super) async fn connect(dg: &Deepgram, req: &SttRequest<'_>) -> Result<SttStream, SttError> {
    req.require_rate()?;
    let url = listen_url(req)?;
    let ws = super::open(&url, req, dg.connect_timeout).await?;
    let opts =
        wspump::Opts { sample_rate: req.sample_rate, keepalive_after: dg.keepalive_after, close_wait: dg.close_wait };
    Ok(wspump::spawn(ws, Flux { sample_rate: req.sample_rate }, opts))
}

fn listen_url(req: &SttRequest<'_>) -> Result<Url, SttError> {
    let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v2", "listen"])?;
    url.query_pairs_mut()
        .append_pair("model", req.model)
        .append_pair("encoding", "linear16")
        .append_pair("sample_rate", &req.sample_rate.to_string());
    if req.model.ends_with("-multi") {
        let lang = req.language.split(['-', '_']).next().unwrap_or(req.language);
        if !lang.is_empty() {
            url.query_pairs_mut().append_pair("language_hint", lang);
        }
    }
    Ok(url)
}

pub(crate) struct Flux {
    pub(crate) sample_rate: u32,
}

impl Flux {
    fn silence(&self, ms: u32, out: &mut Vec<Message>) {
        let mut left = ms;
        while left > 0 {
            let chunk = left.min(100);
            out.push(Message::Binary(wspump::silence(self.sample_rate, chunk)));
            left -= chunk;
        }
    }
}

impl Dialect for Flux {
    const NAME: &'static str = "deepgram-flux";

    fn finalize(&mut self, out: &mut Vec<Message>) {
        self.silence(FINALIZE_SILENCE_MS, out);
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        self.silence(KEEPALIVE_SILENCE_MS, out);
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        out.push(Message::Text(CLOSE_STREAM));
        Flow::Continue
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, _out: &mut Vec<Message>) -> Result<Flow, SttError> {
        decode(text, events)?;
        Ok(Flow::Continue)
    }
}

/// Server → client text frames (only the fields we use).
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    TurnInfo(TurnInfo),
    Error {
        #[serde(default)]
        code: String,
        #[serde(default)]
        description: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct TurnInfo {
    event: String,
    audio_window_start: f64,
    audio_window_end: f64,
    transcript: String,
}

/// TurnInfo → events: StartOfTurn = speech started (+ interim text); Update, EagerEndOfTurn and
/// TurnResumed = interim (the turn's cumulative text); EndOfTurn = the turn's final, end of speech.
fn decode(text: &str, events: &mut Vec<SttEvent>) -> Result<(), SttError> {
    let msg: ServerMsg =
        serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable Flux message: {e}")))?;
    let t = match msg {
        ServerMsg::TurnInfo(t) => t,
        ServerMsg::Error { code, description } => {
            tracing::warn!(%code, %description, "deepgram flux: fatal error");
            return Err(SttError::Closed { code: 1011, reason: code });
        }
        ServerMsg::Other => return Ok(()),
    };
    let (start_s, end_s) = (t.audio_window_start, t.audio_window_end);
    match t.event.as_str() {
        "EndOfTurn" => events.push(SttEvent::Final { text: t.transcript, start_s, end_s, speech_final: true }),
        event => {
            if event == "StartOfTurn" {
                events.push(SttEvent::SpeechStarted { at_s: start_s });
            }
            if !t.transcript.is_empty() {
                events.push(SttEvent::Interim { text: t.transcript, start_s, end_s });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_turn_mapping() {
        let req = SttRequest::for_test("https://api.deepgram.com", "flux-general-en", 16000, "en");
        assert_eq!(
            listen_url(&req).unwrap().as_str(),
            "wss://api.deepgram.com/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
        );
        let multi = SttRequest { model: "flux-general-multi", language: "de-DE", ..req };
        assert!(listen_url(&multi).unwrap().as_str().ends_with("&language_hint=de"));

        let info = |event: &str, transcript: &str| {
            format!(
                r#"{{"type":"TurnInfo","request_id":"r","sequence_id":3,"event":"{event}","turn_index":0,
                "audio_window_start":0.5,"audio_window_end":1.7,"transcript":"{transcript}","words":[],
                "end_of_turn_confidence":0.9}}"#
            )
        };
        let mut ev = Vec::new();
        decode(&info("StartOfTurn", ""), &mut ev).unwrap();
        decode(&info("Update", "Hello."), &mut ev).unwrap();
        decode(&info("EagerEndOfTurn", "Hello. What"), &mut ev).unwrap();
        decode(&info("EndOfTurn", "Hello. What?"), &mut ev).unwrap();
        decode(r#"{"type":"Connected","request_id":"r","sequence_id":0}"#, &mut ev).unwrap();
        assert_eq!(
            ev,
            [
                SttEvent::SpeechStarted { at_s: 0.5 },
                SttEvent::Interim { text: "Hello.".into(), start_s: 0.5, end_s: 1.7 },
                SttEvent::Interim { text: "Hello. What".into(), start_s: 0.5, end_s: 1.7 },
                SttEvent::Final { text: "Hello. What?".into(), start_s: 0.5, end_s: 1.7, speech_final: true },
            ]
        );
        let err =
            decode(r#"{"type":"Error","sequence_id":9,"code":"INTERNAL_SERVER_ERROR","description":"x"}"#, &mut ev);
        assert_eq!(err, Err(SttError::Closed { code: 1011, reason: "INTERNAL_SERVER_ERROR".into() }));
        assert!(matches!(decode("nope", &mut ev), Err(SttError::Protocol(_))));
    }
}
