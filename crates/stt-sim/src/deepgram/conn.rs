//! One simulated Deepgram v1 stream: audio in, results out in order (endpointed finals after the
//! provider's delay), `Finalize`/`CloseStream` answered, and closed the way the provider does.

use super::json::{self, Ids};
use crate::audio::Listener;
use crate::recognizer::{Out, RecOpts};
use crate::SimConfig;
use simkit::{Flow, Message, Outbox, Protocol, Stats};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Client control messages (text frames).
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum Control {
    KeepAlive,
    Finalize,
    CloseStream,
}

pub(super) struct V1 {
    ids: Ids,
    listen: Listener,
    idle: Option<Duration>,
    billed_pct: u32,
}

impl V1 {
    pub(super) fn new(
        opts: RecOpts,
        model: String,
        cfg: &SimConfig,
        idle: Option<Duration>,
        stats: Arc<Stats>,
    ) -> Self {
        let ids = Ids { request_id: Uuid::new_v4(), model_uuid: Uuid::new_v4(), model };
        Self { ids, listen: Listener::new(opts, cfg, stats), idle, billed_pct: cfg.billed_pct }
    }

    /// Render recognizer output into the outbox.
    fn schedule(&mut self, outbox: &mut Outbox) {
        for (due, o) in self.listen.results(false) {
            let msg = match o {
                Out::Interim(hyp) => json::results(&self.ids, &hyp, false, false, false),
                Out::Final { hyp, speech_final, from_finalize, .. } => {
                    json::results(&self.ids, &hyp, true, speech_final, from_finalize)
                }
                Out::SpeechStarted { at_s } => json::speech_started(at_s),
                Out::UtteranceEnd { last_word_end_s } => json::utterance_end(last_word_end_s),
            };
            outbox.push(due, msg);
        }
    }
}

impl Protocol for V1 {
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Binary(bytes) => {
                let failed = self.listen.audio(&bytes);
                self.schedule(out);
                if failed {
                    out.clear();
                    return Flow::close(1011, "NET-0000");
                }
                Flow::Active
            }
            Message::Text(text) => match serde_json::from_str::<Control>(&text) {
                Ok(Control::KeepAlive) => Flow::Active,
                Ok(Control::Finalize) => {
                    // Answered before the next message is read, as Deepgram does.
                    out.release_all(Instant::now());
                    self.listen.finalize();
                    self.schedule(out);
                    Flow::Continue
                }
                Ok(Control::CloseStream) => {
                    self.listen.flush();
                    self.schedule(out);
                    out.now(json::metadata(&self.ids, self.listen.billed_s(self.billed_pct)));
                    Flow::close(1000, "")
                }
                Err(_) => super::undecodable("v1"),
            },
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    fn on_idle(&mut self, out: &mut Outbox) -> Flow {
        super::idle_close(out)
    }
}
