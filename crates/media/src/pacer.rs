//! Real-time release of outbound audio frames.
//!
//! TTS produces audio faster than real time; a gateway wants it at the pace it plays out, so
//! that barge-in can stop playback within a frame instead of after seconds of buffered audio.

use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Lateness (in frames) past which the schedule restarts instead of catching up in a burst.
const MAX_CATCH_UP_FRAMES: u32 = 5;

/// A fixed-period schedule of frame slots on tokio's clock (so paused-time tests work).
#[derive(Debug, Clone)]
pub struct Pacer {
    frame: Duration,
    /// Slot the next frame is due in; `None` until the first frame of a schedule.
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(frame: Duration) -> Self {
        Self { frame, next: None }
    }

    pub fn frame(&self) -> Duration {
        self.frame
    }

    /// Wait for the next frame slot. The first call after `new`/`reset` returns at once.
    /// Cancel-safe: dropping the future before it completes does not use up the slot.
    ///
    /// A caller that is a little late (a scheduling hiccup) gets the missed slots back to back
    /// so the long-run rate holds; one that is `MAX_CATCH_UP_FRAMES` or more slots late (a
    /// stall) starts a fresh schedule from now, so at most that many frames ever go out at once.
    pub async fn wait_next(&mut self) {
        let now = Instant::now();
        let due = match self.next {
            Some(due) if now.saturating_duration_since(due) < self.frame * MAX_CATCH_UP_FRAMES => due,
            _ => {
                self.next = Some(now + self.frame);
                return;
            }
        };
        // Advance only after the sleep: a wait dropped by `select!` keeps its slot.
        sleep_until(due).await;
        self.next = Some(due + self.frame);
    }

    /// Forget the schedule (after idle, or on barge-in): the next frame goes out at once.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_millis(20);

    /// Frames released without any virtual time passing.
    async fn burst(p: &mut Pacer) -> u32 {
        let t0 = Instant::now();
        let mut n = 0;
        loop {
            p.wait_next().await;
            if Instant::now() > t0 {
                return n;
            }
            n += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_frames_take_forty_nine_periods() {
        let mut p = Pacer::new(F);
        let t0 = Instant::now();
        for _ in 0..50 {
            p.wait_next().await;
        }
        assert_eq!(Instant::now() - t0, F * 49);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_stall_rebases_instead_of_bursting() {
        let mut p = Pacer::new(F);
        for _ in 0..10 {
            p.wait_next().await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let n = burst(&mut p).await;
        assert!((1..=5).contains(&n), "burst of {n}");
        // Steady pacing again afterwards.
        let t0 = Instant::now();
        for _ in 0..10 {
            p.wait_next().await;
        }
        assert_eq!(Instant::now() - t0, F * 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_hiccup_is_caught_up_to_keep_the_rate() {
        let mut p = Pacer::new(F);
        let t0 = Instant::now();
        p.wait_next().await;
        tokio::time::advance(Duration::from_millis(70)).await; // 3.5 slots late
        for _ in 0..19 {
            p.wait_next().await;
        }
        // 20 frames still span 19 periods: the late ones went out back to back.
        assert_eq!(Instant::now() - t0, F * 19);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_releases_the_next_frame_at_once() {
        let mut p = Pacer::new(F);
        p.wait_next().await;
        p.wait_next().await;
        p.reset();
        let t0 = Instant::now();
        p.wait_next().await;
        assert_eq!(Instant::now(), t0);
        p.wait_next().await;
        assert_eq!(Instant::now() - t0, F);
    }
}

#[cfg(test)]
mod cancel_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_keeps_its_slot() {
        let mut p = Pacer::new(Duration::from_millis(20));
        p.wait_next().await;
        let t0 = Instant::now();
        let _ = tokio::time::timeout(Duration::from_millis(5), p.wait_next()).await;
        p.wait_next().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(20));
    }
}
