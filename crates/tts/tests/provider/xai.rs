//! xAI: utterances after the first keep stream-relative timings; exact refusals.

use crate::util::{keys, quick, two_utterances};
use tts::TtsEvent;
use tts_sim::{Voicing, XaiSim, XaiSimConfig};

const KEY: &str = "xai-sim-good-0123456789";

async fn sim() -> XaiSim {
    let cfg = XaiSimConfig { voicing: quick(Voicing::default(), 20.0, 10) };
    XaiSim::start(keys(KEY), cfg).await.unwrap()
}

#[tokio::test]
async fn two_utterances_keep_stream_relative_timings() {
    let sim = sim().await;
    let (events, starts) = two_utterances("xai", &sim.base_url(), KEY, "grok-voice", "One two. ").await;
    assert_eq!(starts.get(8), Some(&400), "the second utterance starts after the first's 8 × 50 ms");
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 15 }));
}
