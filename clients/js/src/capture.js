// Microphone capture for the browser: getUserMedia → AudioWorklet → PCM16 frames.

/**
 * Start the microphone. `onFrame(Int16Array)` gets 20 ms of mono PCM16 at `sampleRate`
 * (16000) per call. `processing: false` turns echo cancellation, noise suppression and gain
 * control off (a line-level source, a recording); keep it on for a speaker and a mic, or the
 * agent's voice barges in on itself.
 * Returns `{context, stream, stop()}`.
 */
/**
 * A context and the microphone in it. At the call's rate the browser's own (filtered)
 * resampler does the work; a browser that refuses a microphone in a context of another rate
 * (Firefox) gets its default rate, and the worklet resamples.
 */
async function sourceAt(stream, sampleRate) {
  try {
    const ctx = new AudioContext({ sampleRate });
    try {
      return [ctx, ctx.createMediaStreamSource(stream)];
    } catch {
      await ctx.close();
    }
  } catch { /* this rate is not supported at all */ }
  const ctx = new AudioContext();
  return [ctx, ctx.createMediaStreamSource(stream)];
}

export async function startMicrophone({ onFrame, sampleRate = 16000, frameMs = 20, processing = true } = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
  });
  let context = null;
  try {
    const [ctx, source] = await sourceAt(stream, sampleRate);
    context = ctx;
    await context.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
    const node = new AudioWorkletNode(context, 'switchboard-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1,
      processorOptions: { targetRate: sampleRate, frameMs },
    });
    node.port.onmessage = (ev) => onFrame(new Int16Array(ev.data));
    source.connect(node);
    // Its output is silence; connecting it makes every browser pull (run) the processor.
    node.connect(context.destination);
    await context.resume();
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    if (context) await context.close();
    throw e;
  }
  return {
    context,
    stream,
    async stop() {
      stream.getTracks().forEach((t) => t.stop());
      if (context.state !== 'closed') await context.close();
    },
  };
}
