//! Speech service messages as the adapter reads them (protocols/aws-azure.md Z1). Bodies are
//! JSON with PascalCase fields; times are 100-ns ticks from the start of the current turn's audio.

use crate::SttError;
use serde::Deserialize;

/// Ticks per second (100 ns each).
pub(crate) const TICKS_PER_S: f64 = 10_000_000.0;

/// `speech.config`, once per connection: who we are and what audio follows.
pub(crate) fn speech_config(sample_rate: u32) -> String {
    serde_json::json!({
        "context": {
            "system": {"name": "SpeechSDK", "version": "1.44.0", "build": "JavaScript", "lang": "JavaScript"},
            "os": {"platform": "Linux", "name": "switchboard", "version": env!("CARGO_PKG_VERSION")},
            "audio": {"source": {
                "bitspersample": 16, "channelcount": 1, "connectivity": "Unknown",
                "manufacturer": "Speech SDK", "model": "stream", "samplerate": sample_rate, "type": "Stream",
            }},
        },
        "recognition": "conversation",
    })
    .to_string()
}

/// `speech.context`, once per turn: no phrase lists or language id, so an empty object (the
/// SDK sends `{}` when it has no sections).
pub(crate) const SPEECH_CONTEXT: &str = "{}";

/// One service message, decoded.
#[derive(Debug, PartialEq)]
pub(crate) enum Service {
    TurnStart,
    SpeechStart {
        offset: u64,
    },
    /// `speech.hypothesis` and `speech.fragment`: interim text.
    Hypothesis {
        text: String,
        offset: u64,
        duration: u64,
    },
    Phrase(Phrase),
    SpeechEnd {
        offset: u64,
    },
    TurnEnd,
    Other,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Phrase {
    pub recognition_status: String,
    #[serde(default)]
    pub display_text: Option<String>,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub duration: u64,
    #[serde(default, rename = "NBest")]
    pub n_best: Vec<NBest>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct NBest {
    #[serde(default, rename = "Display")]
    pub display: String,
}

impl Phrase {
    /// `DisplayText` (both formats carry it), else the best `NBest` entry.
    pub(crate) fn text(&self) -> &str {
        match self.display_text.as_deref() {
            Some(t) => t,
            None => self.n_best.first().map_or("", |n| n.display.as_str()),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Hypothesis {
    text: String,
    offset: u64,
    duration: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Detected {
    offset: u64,
}

/// Decode one text message's body by its `Path`.
pub(crate) fn decode(path: &str, body: &str) -> Result<Service, SttError> {
    let json = |e: serde_json::Error| SttError::Protocol(format!("undecodable Azure {path} message: {e}"));
    Ok(match path.to_ascii_lowercase().as_str() {
        "turn.start" => Service::TurnStart,
        "turn.end" => Service::TurnEnd,
        "speech.startdetected" => {
            Service::SpeechStart { offset: serde_json::from_str::<Detected>(body).map_err(json)?.offset }
        }
        // The SDK treats an empty body as offset 0.
        "speech.enddetected" if body.trim().is_empty() => Service::SpeechEnd { offset: 0 },
        "speech.enddetected" => {
            Service::SpeechEnd { offset: serde_json::from_str::<Detected>(body).map_err(json)?.offset }
        }
        "speech.hypothesis" | "speech.fragment" => {
            let h: Hypothesis = serde_json::from_str(body).map_err(json)?;
            Service::Hypothesis { text: h.text, offset: h.offset, duration: h.duration }
        }
        "speech.phrase" => Service::Phrase(serde_json::from_str(body).map_err(json)?),
        _ => Service::Other,
    })
}

/// What a phrase's `RecognitionStatus` means for the stream (the SDK's EnumTranslation).
#[derive(Debug, PartialEq)]
pub(crate) enum Status {
    Recognized,
    /// `NoMatch`, `InitialSilenceTimeout`, `BabbleTimeout`: nothing to report.
    NoMatch,
    /// `EndOfDictation`: the dictation turn is over; not an error.
    EndOfDictation,
    Failed(SttError),
}

pub(crate) fn status(s: &str) -> Status {
    match s {
        "Success" => Status::Recognized,
        "NoMatch" | "InitialSilenceTimeout" | "BabbleTimeout" => Status::NoMatch,
        "EndOfDictation" => Status::EndOfDictation,
        "TooManyRequests" => Status::Failed(SttError::RateLimited),
        "Forbidden" => Status::Failed(SttError::Unauthorized),
        other => Status::Failed(SttError::Protocol(format!("recognition failed: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_in_both_formats() {
        let simple = r#"{"RecognitionStatus":"Success","DisplayText":"Remind me to buy 5 pencils.","Offset":0,"Duration":12300000}"#;
        let Service::Phrase(p) = decode("speech.phrase", simple).unwrap() else { panic!() };
        assert_eq!((p.text(), p.duration), ("Remind me to buy 5 pencils.", 12_300_000));
        let detailed = r#"{"RecognitionStatus":"Success","Offset":8100000,"Duration":30200000,
            "NBest":[{"Confidence":0.95,"Lexical":"two three four five","ITN":"2345","MaskedITN":"2345","Display":"2345."}]}"#;
        let Service::Phrase(p) = decode("speech.phrase", detailed).unwrap() else { panic!() };
        assert_eq!((p.text(), p.offset), ("2345.", 8_100_000));
        let none = r#"{"RecognitionStatus":"InitialSilenceTimeout","Offset":0,"Duration":50000000}"#;
        let Service::Phrase(p) = decode("speech.phrase", none).unwrap() else { panic!() };
        assert_eq!(status(&p.recognition_status), Status::NoMatch);
        assert_eq!(status("TooManyRequests"), Status::Failed(SttError::RateLimited));
    }

    #[test]
    fn other_messages() {
        assert_eq!(
            decode("speech.hypothesis", r#"{"Text":"this is","Offset":100,"Duration":200}"#).unwrap(),
            Service::Hypothesis { text: "this is".into(), offset: 100, duration: 200 }
        );
        assert_eq!(
            decode("Speech.StartDetected", r#"{"Offset":100000}"#).unwrap(),
            Service::SpeechStart { offset: 100000 }
        );
        assert_eq!(decode("speech.endDetected", "").unwrap(), Service::SpeechEnd { offset: 0 });
        assert_eq!(decode("turn.start", r#"{"context":{"serviceTag":"x"}}"#).unwrap(), Service::TurnStart);
        assert_eq!(decode("turn.end", "").unwrap(), Service::TurnEnd);
        assert_eq!(decode("speech.keyword", "{}").unwrap(), Service::Other);
        assert!(matches!(decode("speech.phrase", "{"), Err(SttError::Protocol(_))));
    }
}
