// Microphone capture for the browser: getUserMedia → AudioWorklet → PCM16 frames.

/**
 * Start the microphone. `onFrame(Int16Array)` gets 20 ms of mono PCM16 at `sampleRate`
 * (16000) per call. `processing: false` turns echo cancellation, noise suppression and gain
 * control off (a line-level source, a recording); keep it on for a speaker and a mic, or the
 * agent's voice barges in on itself.
 * Returns `{context, stream, stop()}`.
 */
export async function startMicrophone({ onFrame, sampleRate = 16000, frameMs = 20, processing = true } = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
  });
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
    const source = context.createMediaStreamSource(stream);
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
    await context.close();
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
