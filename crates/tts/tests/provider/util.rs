//! Helpers the provider tests share.

use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;
use tts::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use tts_sim::{SimKeys, Voicing};
use url::Url;

/// `base` at test speed: `pace` × real time, first audio after `first_ms`.
pub fn quick(base: Voicing, pace: f32, first_ms: u64) -> Voicing {
    Voicing { pace, first_audio_delay: Duration::from_millis(first_ms), ..base }
}

pub fn keys(key: &str) -> SimKeys {
    SimKeys::from(vec![key.to_string()])
}

/// Connects `provider`'s adapter, as the registry builds it, to `base` with its stock voice.
pub async fn connect(provider: &str, base: &Url, key: &str, model: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let tts = tts::registry::build(provider).expect("a registered provider");
    let key = SecretString::from(key.to_string());
    let voice = tts::registry::default_voice(provider).unwrap_or_default();
    tts.connect(TtsRequest { base_url: base, key: &key, model, voice, sample_rate: rate }).await
}

/// Sends each input in turn.
pub async fn send(stream: &TtsStream, inputs: impl IntoIterator<Item = TtsInput>) {
    for input in inputs {
        stream.text.send(input).await.unwrap();
    }
}

pub fn text(t: &str) -> TtsInput {
    TtsInput::Text(t.into())
}

/// Connects `provider`'s adapter and sends a reply's first phrase alone (`Sure, `): its audio
/// must come without a flush, before the rest of the sentence or the end of the turn. Returns
/// the stream for more.
pub async fn first_phrase_is_voiced(provider: &str, base: &Url, key: &str, model: &str) -> TtsStream {
    let mut s = connect(provider, base, key, model, 16000).await.unwrap();
    send(&s, [text("Sure, ")]).await;
    let first = timeout(Duration::from_secs(5), s.events.recv()).await.expect("audio before a flush");
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{provider}: {first:?}");
    s
}

/// Every event until the adapter closes the channel.
pub async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.expect("stream ended") {
        out.push(ev);
    }
    out
}

/// Events up to and including the next `Done`.
pub async fn until_done(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while out.last() != Some(&TtsEvent::Done) {
        out.push(timeout(Duration::from_secs(5), stream.events.recv()).await.unwrap().expect("a Done"));
    }
    out
}

/// `first` then a flush, `Three.` then close, on one stream of `provider`'s adapter: both are
/// voiced in order, each ends in `Done`, and alignment starts keep rising (they are
/// stream-relative, not per utterance). Returns every event and those starts.
pub async fn two_utterances(
    provider: &str,
    base: &Url,
    key: &str,
    model: &str,
    first: &str,
) -> (Vec<TtsEvent>, Vec<u32>) {
    let mut s = connect(provider, base, key, model, 16000).await.unwrap();
    send(&s, [text(first), TtsInput::Flush]).await;
    let mut events = until_done(&mut s).await;
    send(&s, [text("Three."), TtsInput::Close]).await;
    events.extend(drain(&mut s).await);
    assert_eq!(voiced(&events), format!("{}Three.", first.trim_end()));
    let starts = starts(&events);
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{provider}: {starts:?}");
    assert_eq!(events.iter().filter(|e| **e == TtsEvent::Done).count(), 2);
    (events, starts)
}

pub fn audio_bytes(events: &[TtsEvent]) -> usize {
    events.iter().map(|e| if let TtsEvent::Audio { pcm, .. } = e { pcm.len() } else { 0 }).sum()
}

/// The characters the audio's timings cover, in order.
pub fn voiced(events: &[TtsEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio { alignment: Some(a), .. } => Some(a.chars.iter().collect::<String>()),
            _ => None,
        })
        .collect()
}

/// Character start times of the audio, in order.
pub fn starts(events: &[TtsEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(
            |e| if let TtsEvent::Audio { alignment: Some(a), .. } = e { Some(a.start_ms.clone()) } else { None },
        )
        .flatten()
        .collect()
}

/// Waits (briefly) for `cond`.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    timeout(Duration::from_millis(500), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

/// `check_key` with `key`.
pub async fn check(tts: &dyn Tts, base: &Url, key: &str) -> Result<(), TtsError> {
    tts.check_key(base, &SecretString::from(key.to_string())).await
}
