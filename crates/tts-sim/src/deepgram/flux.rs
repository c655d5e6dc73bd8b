//! One simulated Flux TTS `/v2/speak` connection (protocols/tts.md C5, early access):
//! `Connected` on open; the first `Speak` of a turn answers `SpeechStarted`; text is voiced as
//! it comes, up to its last clause or sentence boundary (text with none is voiced once it has
//! waited [`DeepgramTtsSimConfig::flux_hold`]); `Flush` voices the rest and ends the turn with
//! `SpeechMetadata` then `Flushed`; `Close` ends the open turn, sends `SessionMetadata` and
//! closes 1000. No `Clear` (early access has none), and a 1011 fault.

use super::{DeepgramTtsSimConfig, Handshake};
use crate::frame;
use crate::pacer::{Renderer, Schedule};
use bytes::Bytes;
use futures::SinkExt;
use serde::Deserialize;
use serde_json::json;
use simkit::{Stats, Ws as SimWs};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ClientMsg {
    Speak { text: String },
    Flush,
    Close,
}

enum Out {
    Audio(Vec<char>),
    Json(String),
    Close,
}

/// The open turn: its id, its text not yet voiced, and its counts.
struct Turn {
    id: String,
    pending: String,
    /// When `pending` (which has no boundary) is voiced anyway.
    hold_until: Option<Instant>,
    chars: u64,
    billable: u64,
}

/// What the whole socket has voiced, for `SessionMetadata`.
#[derive(Default)]
struct Totals {
    chars: u64,
    billable: u64,
}

/// Index just past the last clause or sentence boundary (`.` `,` `!` `?` `;` `:` followed by
/// whitespace) in `buf`.
fn clause_cut(buf: &str) -> Option<usize> {
    let mut cut = None;
    let mut prev_end = false;
    for (i, c) in buf.char_indices() {
        if prev_end && c.is_whitespace() {
            cut = Some(i + c.len_utf8());
        }
        prev_end = matches!(c, '.' | ',' | '!' | '?' | ';' | ':');
    }
    cut
}

struct Conn<'a> {
    cfg: &'a DeepgramTtsSimConfig,
    stats: &'a Stats,
    schedule: Schedule<Out>,
    turn: Option<Turn>,
    totals: Totals,
    closing: bool,
}

impl Conn<'_> {
    /// `Speak`: opens a turn if none is (its `SpeechStarted` is the reply), then voices what
    /// has a boundary.
    fn speak(&mut self, text: &str, now: Instant) -> Option<String> {
        let n = text.chars().count() as u64;
        self.stats.received(n as usize);
        let mut started = None;
        let turn = self.turn.get_or_insert_with(|| {
            let id = format!("dg_sp_{:012x}", uuid::Uuid::new_v4().as_u128() >> 80);
            started = Some(json!({"type": "SpeechStarted", "speech_id": id}).to_string());
            Turn { id, pending: String::new(), hold_until: None, chars: 0, billable: 0 }
        });
        turn.pending.push_str(text);
        turn.chars += n;
        turn.billable += text.chars().filter(|c| !c.is_control()).count() as u64;
        if let Some(cut) = clause_cut(&turn.pending) {
            let voiced: String = turn.pending.drain(..cut).collect();
            self.schedule.speak(&voiced, now, Out::Audio);
            turn.hold_until = None;
        }
        // The wait counts from the oldest text still unvoiced.
        if turn.pending.is_empty() {
            turn.hold_until = None;
        } else if turn.hold_until.is_none() {
            turn.hold_until = Some(now + self.cfg.flux_hold);
        }
        started
    }

    /// Held text whose wait is over is voiced.
    fn release(&mut self, now: Instant) {
        if let Some(turn) = self.turn.as_mut().filter(|t| t.hold_until.is_some_and(|h| h <= now)) {
            turn.hold_until = None;
            self.schedule.speak(&std::mem::take(&mut turn.pending), now, Out::Audio);
        }
    }

    /// `Flush` (or `Close` with a turn open): the rest voiced, then the turn's report.
    fn end_turn(&mut self, now: Instant) -> Option<String> {
        let Some(turn) = self.turn.take() else {
            return Some(
                json!({"type": "Warning", "code": "NO_ACTIVE_SPEECH",
                "description": "Flush received with no active speech turn."})
                .to_string(),
            );
        };
        if !turn.pending.is_empty() {
            self.schedule.speak(&turn.pending, now, Out::Audio);
        }
        self.totals.chars += turn.chars;
        self.totals.billable += turn.billable;
        let meta = json!({"type": "SpeechMetadata", "speech_id": turn.id,
            "audio_duration_ms": turn.chars * self.schedule.ms_per_char(),
            "input_character_count": turn.chars, "billable_character_count": turn.billable,
            "controls_applied": {"pronunciations_applied": 0, "pronunciation_warnings": 0}});
        self.schedule.then(Out::Json(meta.to_string()), now);
        self.schedule.then(Out::Json(json!({"type": "Flushed", "speech_id": turn.id}).to_string()), now);
        None
    }

    fn close(&mut self, now: Instant) {
        self.closing = true;
        if self.turn.is_some() {
            self.end_turn(now);
        }
        let t = &self.totals;
        let session = json!({"type": "SessionMetadata",
            "total_audio_duration_ms": t.chars * self.schedule.ms_per_char(),
            "total_input_character_count": t.chars, "total_billable_character_count": t.billable});
        self.schedule.then(Out::Json(session.to_string()), now);
        self.schedule.then(Out::Close, now);
    }

    fn on_text(&mut self, text: &str, now: Instant) -> Option<String> {
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Speak { text }) => self.speak(&text, now),
            Ok(ClientMsg::Flush) => self.end_turn(now),
            Ok(ClientMsg::Close) => {
                self.close(now);
                None
            }
            Err(_) => Some(
                json!({"type": "Error", "code": "MESSAGE-0000",
                "description": "Expected a Speak, Flush or Close message."})
                .to_string(),
            ),
        }
    }

    /// The next wake-up: queued output or the end of a hold.
    fn next_due(&self) -> Option<Instant> {
        let hold = self.turn.as_ref().and_then(|t| t.hold_until);
        match (self.schedule.next_due(), hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pub(super) async fn run(
    mut ws: SimWs,
    hs: Handshake,
    cfg: &DeepgramTtsSimConfig,
    stats: &Stats,
    stop: CancellationToken,
) {
    let connected = json!({"type": "Connected", "request_id": uuid::Uuid::new_v4().to_string(),
        "model_name": hs.model, "model_version": "ea", "model_uuids": [uuid::Uuid::new_v4().to_string()]});
    if ws.send(Message::text(connected.to_string())).await.is_err() {
        return;
    }
    let mut renderer = Renderer::new(hs.sample_rate, cfg.voicing.ms_per_char);
    let mut c = Conn {
        cfg,
        stats,
        schedule: Schedule::new(cfg.voicing),
        turn: None,
        totals: Totals::default(),
        closing: false,
    };
    loop {
        // Closing ends at the queued `Out::Close`.
        let due = c.next_due();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
            text = frame::next_text(&mut ws), if !c.closing => {
                let Some(text) = text else { return };
                if let Some(reply) = c.on_text(&text, Instant::now()) {
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                c.release(now);
                if c.schedule.next_due().is_none_or(|d| d > now) {
                    continue;
                }
                let sent = match c.schedule.pop() {
                    Some(Out::Audio(chars)) => {
                        let pcm = Bytes::copy_from_slice(renderer.render(&chars));
                        ws.send(Message::binary(pcm)).await
                    }
                    Some(Out::Json(j)) => ws.send(Message::text(j)).await,
                    Some(Out::Close) => return simkit::close(&mut ws, 1000, "").await,
                    None => continue,
                };
                if sent.is_err() {
                    return;
                }
                if cfg.voicing.fails_at(renderer.voiced()) {
                    simkit::close(&mut ws, 1011, "NET-0001: internal synthesis failure").await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clause_cut;

    #[test]
    fn clauses_end_at_punctuation_before_a_space() {
        assert_eq!(clause_cut("Sure, I can"), Some(6));
        assert_eq!(clause_cut("One. Two; three"), Some(10));
        assert_eq!(clause_cut("We are "), None);
        assert_eq!(clause_cut("3,000 seats"), None);
        assert_eq!(clause_cut("Done."), None, "the space may still be a decimal's digit");
    }
}
