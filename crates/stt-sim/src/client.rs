//! Test support: drive an `stt` adapter against a simulator and collect what it reports.
//! Public (hidden from the docs) for the conformance suite and the adapters' own tests; it
//! panics when a stream hangs, which is the failure those tests want to see.

use crate::testdata;
use bytes::Bytes;
use secrecy::SecretString;
use std::time::Duration;
use stt::{Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use url::Url;

/// Longest a test waits for a stream to end or a result to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// Open a stream of 16 kHz audio.
pub async fn connect(
    stt: &dyn Stt,
    base_url: &Url,
    key: &str,
    model: &str,
    language: &str,
) -> Result<SttStream, SttError> {
    let key = SecretString::from(key.to_string());
    stt.connect(SttRequest { base_url, key: &key, model, sample_rate: testdata::RATE, language }).await
}

/// `check_key` with a plain-text key.
pub async fn check_key(stt: &dyn Stt, base_url: &Url, key: &str) -> Result<(), SttError> {
    stt.check_key(base_url, &SecretString::from(key.to_string())).await
}

/// Send `pcm` as 20 ms frames, as fast as the channel takes them (the adapter may be gone).
pub async fn send(stream: &SttStream, pcm: &[i16]) {
    for frame in pcm.chunks(testdata::RATE as usize / 50) {
        if stream.audio.send(SttInput::Audio(Bytes::from(testdata::to_bytes(frame)))).await.is_err() {
            return;
        }
    }
}

/// Every event until the stream ends.
pub async fn drain(stream: &mut SttStream) -> Vec<SttEvent> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(ev) = stream.events.recv().await {
            events.push(ev);
        }
    };
    tokio::time::timeout(WAIT, collect).await.expect("stream did not end");
    events
}

/// Events up to and including the first final.
pub async fn until_final(stream: &mut SttStream) -> Vec<SttEvent> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(ev) = stream.events.recv().await {
            let done = matches!(ev, SttEvent::Final { .. });
            events.push(ev);
            if done {
                return;
            }
        }
        panic!("stream ended without a final: {events:?}");
    };
    tokio::time::timeout(WAIT, collect).await.expect("no final");
    events
}

/// Text and `speech_final` of every final.
pub fn finals(events: &[SttEvent]) -> Vec<(&str, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Final { text, speech_final, .. } => Some((text.as_str(), *speech_final)),
            _ => None,
        })
        .collect()
}

/// The usage events.
pub fn usages(events: &[SttEvent]) -> Vec<(u64, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Usage { audio_ms, estimated } => Some((*audio_ms, *estimated)),
            _ => None,
        })
        .collect()
}

/// Milliseconds of 16 kHz audio in `pcm`.
pub fn ms_of(pcm: &[i16]) -> u64 {
    pcm.len() as u64 * 1000 / u64::from(testdata::RATE)
}

/// `lead_s` of silence, the utterance, `tail_s` of silence.
pub fn speech(utterance: Vec<i16>, lead_s: f64, tail_s: f64) -> Vec<i16> {
    let mut pcm = testdata::silence(lead_s);
    pcm.extend(utterance);
    pcm.extend(testdata::silence(tail_s));
    pcm
}
