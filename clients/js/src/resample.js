// Float samples at one rate in, PCM16 frames at another out: what the capture worklet runs.
// Pure (no audio API), so Node tests it.

export class FrameResampler {
  /** `onFrame(Int16Array)` gets `frameMs` of audio at `targetRate` each time one fills. */
  constructor({ inputRate, targetRate = 16000, frameMs = 20, onFrame }) {
    this.step = inputRate / targetRate; // input samples per output sample
    this.pos = 0; // fractional read position into the current block; -1 = the previous block's last
    this.last = 0;
    this.frame = new Int16Array(Math.round((targetRate * frameMs) / 1000));
    this.fill = 0;
    this.onFrame = onFrame;
  }

  /** One block of input (a Float32Array in [-1, 1]). Linear interpolation between samples. */
  push(input) {
    if (input.length === 0) return;
    while (this.pos < input.length - 1) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.last : input[i];
      const b = input[i + 1];
      const s = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.fill === this.frame.length) {
        this.onFrame(this.frame.slice());
        this.fill = 0;
      }
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1];
  }
}
