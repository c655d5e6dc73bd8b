// Playback of the agent's PCM16 frames in the browser, with the one property a voice agent
// needs: `clear()` drops every frame queued but not yet played, at once (barge-in).

/** Seconds of audio held ahead of the clock, to ride out network jitter. */
const LEAD_S = 0.1;

export class Playback {
  /** `sampleRate`: the rate of the frames pushed (the call's, 16000 by default). */
  constructor({ sampleRate = 16000, context } = {}) {
    this.sampleRate = sampleRate;
    this.context = context || new AudioContext();
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.connect(this.context.destination);
    this.sources = new Set();
    this.nextTime = 0;
    /** Frames pushed, frames that finished playing, frames dropped by `clear()`, clears. */
    this.stats = { pushed: 0, played: 0, dropped: 0, clears: 0 };
    this.samples = new Float32Array(this.analyser.fftSize);
  }

  /** Queue one frame (Int16Array) right after the previous one. */
  push(pcm) {
    const ctx = this.context;
    if (ctx.state === 'closed' || pcm.length === 0) return;
    const buf = ctx.createBuffer(1, pcm.length, this.sampleRate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 0x8000;
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.analyser);
    const at = Math.max(this.nextTime, ctx.currentTime + LEAD_S * (this.sources.size === 0 ? 1 : 0));
    src.onended = () => {
      if (this.sources.delete(src)) this.stats.played++;
    };
    src.start(at);
    this.nextTime = at + buf.duration;
    this.sources.add(src);
    this.stats.pushed++;
  }

  /** Frames scheduled and not yet played. */
  get queued() { return this.sources.size; }

  /** Drop everything queued now; returns how many frames were dropped. */
  clear() {
    const n = this.sources.size;
    for (const src of this.sources) {
      src.onended = null;
      try { src.stop(); } catch { /* not started yet */ }
    }
    this.sources.clear();
    this.nextTime = 0;
    this.stats.dropped += n;
    this.stats.clears++;
    return n;
  }

  /** RMS (0–1) of what is playing right now. */
  level() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const s of this.samples) sum += s * s;
    return Math.sqrt(sum / this.samples.length);
  }

  async close() {
    this.clear();
    if (this.context.state !== 'closed') await this.context.close();
  }
}
