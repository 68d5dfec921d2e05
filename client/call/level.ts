/**
 * The microphone level on the device check: an AnalyserNode on the chosen
 * microphone track drives a <meter> (0..1), so the customer sees that the
 * microphone hears them before joining.
 */
export class LevelMeter {
  private context: AudioContext | undefined;
  private source: MediaStreamAudioSourceNode | undefined;
  private frame = 0;

  constructor(private readonly meter: HTMLMeterElement) {}

  attach(track: MediaStreamTrack | null): void {
    this.detach();
    if (!track) {
      this.meter.value = 0;
      return;
    }
    this.context ??= new AudioContext();
    void this.context.resume().catch(() => undefined);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 512;
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      // RMS to a 0..1 scale that moves visibly for normal speech.
      this.meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      this.frame = requestAnimationFrame(tick);
    };
    tick();
  }

  /** Browsers start audio suspended until the user does something; call this on a click. */
  wake(): void {
    void this.context?.resume().catch(() => undefined);
  }

  detach(): void {
    cancelAnimationFrame(this.frame);
    this.source?.disconnect();
    this.source = undefined;
  }
}
