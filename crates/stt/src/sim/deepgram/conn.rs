//! One simulated Deepgram stream: decode audio, run the recognizer, send its results in order,
//! each no earlier than its due time, and close the way the provider does.

use super::json::{self, Ids};
use super::Shared;
use crate::sim::recognizer::{Out, RecOpts, Recognizer};
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type Ws = WebSocketStream<TcpStream>;

/// Client control messages (text frames).
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum Control {
    KeepAlive,
    Finalize,
    CloseStream,
}

/// Results waiting for their due time. Due times never decrease, so order is kept.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<(Instant, String)>,
    last_due: Option<Instant>,
}

impl Outbox {
    fn push(&mut self, due: Instant, msg: String) {
        let due = self.last_due.map_or(due, |last| last.max(due));
        self.last_due = Some(due);
        self.queue.push_back((due, msg));
    }

    /// Everything queued is due now (Finalize / CloseStream flush pending work).
    fn release_all(&mut self, now: Instant) {
        self.queue.iter_mut().for_each(|(due, _)| *due = (*due).min(now));
        self.last_due = self.last_due.map(|d| d.min(now));
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }
}

pub(super) async fn run(mut ws: Ws, opts: RecOpts, model: String, shared: &Shared, stop: CancellationToken) {
    let cfg = &shared.cfg;
    let ids = Ids { request_id: Uuid::new_v4(), model_uuid: Uuid::new_v4(), model };
    let bytes_per_s = u64::from(opts.sample_rate) * 2;
    let mut rec = Recognizer::new(opts, cfg.catalog.clone());
    let mut out: Vec<Out> = Vec::new();
    let mut outbox = Outbox::default();
    let mut pcm: Vec<i16> = Vec::with_capacity(4096);
    let mut odd_byte: Option<u8> = None;
    let mut audio_bytes: u64 = 0;
    let mut last_activity = Instant::now();
    let mut idle_check =
        tokio::time::interval((cfg.idle_timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(250)));
    idle_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);

    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            msg = ws.next() => match msg {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Binary(bytes))) => {
                    last_activity = Instant::now();
                    audio_bytes += bytes.len() as u64;
                    shared.audio_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    decode_l16(&bytes, &mut odd_byte, &mut pcm);
                    rec.push(&pcm, &mut out);
                    schedule(&mut out, &mut outbox, &ids, cfg.final_delay);
                    if let Some(limit) = cfg.fail_after_audio_ms {
                        if audio_bytes * 1000 / bytes_per_s.max(1) >= limit {
                            close(&mut ws, 1011, "NET-0000").await;
                            return;
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::KeepAlive) => last_activity = Instant::now(),
                    Ok(Control::Finalize) => {
                        outbox.release_all(Instant::now());
                        rec.finalize(&mut out);
                        schedule(&mut out, &mut outbox, &ids, cfg.final_delay);
                    }
                    Ok(Control::CloseStream) => {
                        rec.flush(&mut out);
                        schedule(&mut out, &mut outbox, &ids, cfg.final_delay);
                        for (_, msg) in outbox.queue.drain(..) {
                            if ws.send(Message::text(msg)).await.is_err() {
                                return;
                            }
                        }
                        let billed = audio_bytes * u64::from(cfg.billed_pct) / 100;
                        let duration_s = billed as f64 / bytes_per_s.max(1) as f64;
                        if ws.send(Message::text(json::metadata(&ids, duration_s))).await.is_err() {
                            return;
                        }
                        close(&mut ws, 1000, "").await;
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("deepgram sim: undecodable text frame");
                        close(&mut ws, 1008, "DATA-0000").await;
                        return;
                    }
                },
                Some(Ok(Message::Close(_))) => {
                    drain(&mut ws).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            () = &mut due, if outbox.next_due().is_some() => {
                let now = Instant::now();
                while outbox.next_due().is_some_and(|d| d <= now) {
                    if let Some((_, msg)) = outbox.queue.pop_front() {
                        if ws.send(Message::text(msg)).await.is_err() {
                            return;
                        }
                    }
                }
            },
            _ = idle_check.tick() => {
                if last_activity.elapsed() >= cfg.idle_timeout {
                    close(&mut ws, 1011, "NET-0001").await;
                    return;
                }
            },
        }
        if let Some(next) = outbox.next_due() {
            if due.deadline() != next {
                due.as_mut().reset(next);
            }
        }
    }
}

/// Render recognizer output into the outbox: endpointed finals after `final_delay`, the rest now.
fn schedule(out: &mut Vec<Out>, outbox: &mut Outbox, ids: &Ids, final_delay: Duration) {
    let now = Instant::now();
    for o in out.drain(..) {
        let (due, msg) = match o {
            Out::Interim(hyp) => (now, json::results(ids, &hyp, false, false, false)),
            Out::Final { hyp, speech_final, from_finalize, delay } => {
                let due = if delay { now + final_delay } else { now };
                (due, json::results(ids, &hyp, true, speech_final, from_finalize))
            }
            Out::SpeechStarted { at_s } => (now, json::speech_started(at_s)),
            Out::UtteranceEnd { last_word_end_s } => (now, json::utterance_end(last_word_end_s)),
        };
        outbox.push(due, msg);
    }
}

/// Little-endian linear16 into `pcm` (reused), carrying an odd trailing byte to the next frame.
fn decode_l16(bytes: &[u8], odd: &mut Option<u8>, pcm: &mut Vec<i16>) {
    pcm.clear();
    let mut rest = bytes;
    if let (Some(lo), Some((&hi, tail))) = (*odd, bytes.split_first()) {
        pcm.push(i16::from_le_bytes([lo, hi]));
        *odd = None;
        rest = tail;
    }
    let mut pairs = rest.chunks_exact(2);
    pcm.extend((&mut pairs).map(|p| match p {
        [lo, hi] => i16::from_le_bytes([*lo, *hi]),
        _ => 0,
    }));
    if let [b] = pairs.remainder() {
        *odd = Some(*b);
    }
}

/// Send a close frame and wait (briefly) for the client's reply so the close is clean.
async fn close(ws: &mut Ws, code: u16, reason: &'static str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from_static(reason) };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        drain(ws).await;
    }
}

async fn drain(ws: &mut Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l16_decoding_carries_odd_bytes() {
        let mut pcm = Vec::new();
        let mut odd = None;
        decode_l16(&[0x01, 0x00, 0xff], &mut odd, &mut pcm);
        assert_eq!((pcm.as_slice(), odd), (&[1i16][..], Some(0xff)));
        decode_l16(&[0xff, 0x02, 0x00], &mut odd, &mut pcm);
        assert_eq!((pcm.as_slice(), odd), (&[-1i16, 2][..], None));
    }

    #[test]
    fn outbox_keeps_order_and_releases() {
        let t0 = Instant::now();
        let mut ob = Outbox::default();
        ob.push(t0 + Duration::from_millis(300), "final".into());
        ob.push(t0, "speech started".into());
        assert_eq!(ob.queue.back().map(|q| q.0), Some(t0 + Duration::from_millis(300)));
        ob.release_all(t0);
        assert_eq!(ob.next_due(), Some(t0));
        ob.push(t0, "next".into());
        assert_eq!(ob.queue.len(), 3);
    }
}
