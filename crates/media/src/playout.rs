//! The gateway's playout clock, as the writer models it: when the agent audio sent so far will
//! have finished playing.
//!
//! TTS produces audio faster than real time. Sending it all at once would leave seconds queued
//! at the gateway, and the writer could no longer tell how much the caller heard. Sending each
//! 20 ms frame at the moment it plays costs a timer wake-up and a socket write per frame. Carriers
//! that queue outbound media and drop the queue on `clear` (Twilio, Telnyx, Plivo) can be kept a
//! little ahead instead: a burst of frames per wake-up, with barge-in still instant.

use std::time::Duration;
use tokio::time::Instant;

/// How far ahead of playback a gateway may be fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lead {
    /// Audio the gateway still holds when the writer wakes to send more; covers timer jitter.
    pub min: Duration,
    /// Frames sent per wake-up in steady state.
    pub burst: u32,
}

impl Lead {
    /// One frame at the moment it plays, for gateways that play what arrives (AudioSocket) or
    /// ask for real-time pacing (Vonage).
    pub const REAL_TIME: Self = Self { min: Duration::ZERO, burst: 1 };
    /// Between 40 and 140 ms ahead, five 20 ms frames (one socket write) per wake-up.
    pub const QUEUED: Self = Self { min: Duration::from_millis(40), burst: 5 };
}

/// Lateness (in frames) past which the schedule restarts from now instead of catching up.
const MAX_CATCH_UP_FRAMES: u32 = 5;

/// A schedule of frame slots on tokio's clock (so paused-time tests work).
#[derive(Debug, Clone)]
pub struct Playout {
    frame: Duration,
    lead: Lead,
    /// When the audio already sent ends; `None` when nothing has been sent since a clear.
    until: Option<Instant>,
}

impl Playout {
    pub fn new(frame: Duration, lead: Lead) -> Self {
        Self { frame, lead: Lead { burst: lead.burst.max(1), ..lead }, until: None }
    }

    /// Where the next frame goes on the schedule. A writer that is a little late (a scheduling
    /// hiccup) keeps the schedule and catches up; after a stall or a pause between turns the
    /// schedule starts again from now.
    fn next_slot(&self, now: Instant) -> Instant {
        match self.until {
            Some(u) if u + self.frame * MAX_CATCH_UP_FRAMES >= now => u,
            _ => now,
        }
    }

    /// Claim the slot for one more frame, if one is due at `now`; false when the gateway
    /// already holds enough audio.
    pub fn take_slot(&mut self, now: Instant) -> bool {
        let slot = self.next_slot(now);
        if slot >= now + self.lead.min + self.frame * self.lead.burst {
            return false;
        }
        self.until = Some(slot + self.frame);
        true
    }

    /// When more audio should be sent: once only `lead.min` of what was sent is left to play.
    pub fn next_send(&self, now: Instant) -> Instant {
        let slot = self.next_slot(now);
        slot.checked_sub(self.lead.min).filter(|t| *t > now).unwrap_or(now)
    }

    /// When everything sent so far has played.
    pub fn played_out_at(&self, now: Instant) -> Instant {
        self.until.filter(|u| *u > now).unwrap_or(now)
    }

    /// Audio sent and not yet played.
    pub fn ahead(&self, now: Instant) -> Duration {
        self.until.map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }

    /// The gateway dropped what it had queued (barge-in): the next frame plays at once.
    pub fn clear(&mut self) {
        self.until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_millis(20);

    /// Frames sent at `now`, as the writer does on a wake-up.
    fn send_due(p: &mut Playout) -> u32 {
        let now = Instant::now();
        let mut n = 0;
        while p.take_slot(now) {
            n += 1;
        }
        n
    }

    /// Run a writer for `frames` frames: wake at `next_send`, send what is due. Returns the
    /// sizes of the bursts.
    async fn drive(p: &mut Playout, frames: u32) -> Vec<u32> {
        let mut bursts = Vec::new();
        let mut sent = 0;
        while sent < frames {
            tokio::time::sleep_until(p.next_send(Instant::now())).await;
            let n = send_due(p).min(frames - sent);
            sent += n;
            bursts.push(n);
        }
        bursts
    }

    #[tokio::test(start_paused = true)]
    async fn real_time_sends_one_frame_per_period() {
        let mut p = Playout::new(F, Lead::REAL_TIME);
        let t0 = Instant::now();
        let bursts = drive(&mut p, 50).await;
        assert!(bursts.iter().all(|n| *n == 1), "{bursts:?}");
        assert_eq!(Instant::now() - t0, F * 49);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_sends_bursts_and_stays_between_min_and_max_lead() {
        let mut p = Playout::new(F, Lead::QUEUED);
        let t0 = Instant::now();
        let bursts = drive(&mut p, 50).await;
        // 140 ms at once, then five frames every 100 ms.
        assert_eq!(bursts[0], 7);
        assert!(bursts[1..bursts.len() - 1].iter().all(|n| *n == 5), "{bursts:?}");
        let ahead = p.ahead(Instant::now());
        assert!(ahead >= Lead::QUEUED.min && ahead <= F * 7, "{ahead:?}");
        // The rate holds: 50 frames are all sent by the time ~46 have played.
        let elapsed = Instant::now() - t0;
        assert!(elapsed >= F * 42 && elapsed <= F * 46, "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_hiccup_is_caught_up_and_a_stall_restarts() {
        let mut p = Playout::new(F, Lead::REAL_TIME);
        drive(&mut p, 3).await;
        tokio::time::advance(Duration::from_millis(70)).await; // 3.5 slots late
        assert_eq!(send_due(&mut p), 4, "the missed slots go out back to back");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(send_due(&mut p), 1, "after a stall the schedule restarts from now");
        assert_eq!(p.next_send(Instant::now()), Instant::now() + F);
    }

    #[tokio::test(start_paused = true)]
    async fn clear_forgets_queued_audio() {
        let mut p = Playout::new(F, Lead::QUEUED);
        let now = Instant::now();
        assert_eq!(send_due(&mut p), 7);
        assert_eq!(p.ahead(now), F * 7);
        assert_eq!(p.played_out_at(now), now + F * 7);
        p.clear();
        assert_eq!(p.ahead(now), Duration::ZERO);
        assert_eq!(p.played_out_at(now), now);
        assert_eq!(send_due(&mut p), 7);
    }
}
