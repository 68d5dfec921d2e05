import fs from 'node:fs/promises';
import { MediaError } from '../errors';
import type { MediaLogger } from '../log';
import { FfmpegProcess } from './ffmpeg';
import { probeTrack, withinSpan, type Island, type TrackContents } from './probe';
import type { RecordingTrack } from './segment';

export interface ComposeOptions {
  ffmpegPath: string;
  /** From 0 to 1, as ffmpeg gets through the call (called often: throttle what it triggers). */
  onProgress?: (fraction: number) => void;
  log?: MediaLogger;
}

/** Each participant's tile; the picture is two tiles side by side. */
const TILE = { width: 640, height: 480 };
const FPS = 25;
/** Where each role's tile goes. */
const X = { clerk: 0, customer: TILE.width } as const;

interface Placed {
  track: RecordingTrack;
  /** The file's time 0 on the call's timeline, in seconds. */
  offset: number;
  contents: TrackContents;
}

const seconds = (n: number) => n.toFixed(3);

/**
 * The filter graph: a black canvas as long as the call; each stretch of
 * a participant's video scaled into their tile (clerk left, customer
 * right) and laid over the canvas from the moment it was recorded (black
 * where there is none); every stretch of audio delayed to its moment and
 * all of it mixed at full level (no normalisation, so nobody gets quieter
 * when someone else speaks or a segment ends).
 */
export function buildComposeGraph(placed: Placed[], duration: number): { graph: string; hasAudio: boolean } {
  const chains: string[] = [`color=c=black:s=${TILE.width * 2}x${TILE.height}:r=${FPS}:d=${seconds(duration)},format=yuv420p[base]`];
  let video = 'base';
  const audio: string[] = [];
  placed.forEach(({ track, offset, contents }, input) => {
    const split = (islands: Island[], filter: 'split' | 'asplit', stream: 'v' | 'a') => {
      if (islands.length <= 1) return [`${input}:${stream}`];
      const labels = islands.map((_, j) => `${stream}${input}s${j}`);
      chains.push(`[${input}:${stream}]${filter}=${islands.length}${labels.map((l) => `[${l}]`).join('')}`);
      return labels;
    };
    const videoIn = split(contents.video, 'split', 'v');
    contents.video.forEach((island, j) => {
      const label = `v${input}i${j}`;
      const at = offset + island.start;
      chains.push(
        `[${videoIn[j]}]trim=start=${seconds(island.start)}:end=${seconds(island.end + 0.001)},setpts=PTS-STARTPTS+${seconds(at)}/TB,` +
          `scale=${TILE.width}:${TILE.height}:force_original_aspect_ratio=decrease,pad=${TILE.width}:${TILE.height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p[${label}]`,
      );
      const out = `o${input}i${j}`;
      chains.push(`[${video}][${label}]overlay=x=${X[track.role]}:y=0:eof_action=pass:repeatlast=0[${out}]`);
      video = out;
    });
    const audioIn = split(contents.audio, 'asplit', 'a');
    contents.audio.forEach((island, j) => {
      const label = `a${input}i${j}`;
      const delayMs = Math.max(0, Math.round((offset + island.start) * 1000));
      // Short gaps inside a stretch (DTX, loss) become silence; the stretch's start is reached by adelay, which pads in small chunks.
      chains.push(
        `[${audioIn[j]}]atrim=start=${seconds(island.start)}:end=${seconds(island.end + 0.001)},asetpts=PTS-STARTPTS,` +
          `aresample=48000:async=1:min_hard_comp=0.1:first_pts=0,aformat=sample_fmts=fltp:channel_layouts=stereo,adelay=delays=${delayMs}:all=1[${label}]`,
      );
      audio.push(label);
    });
  });
  chains.push(`[${video}]null[vout]`);
  if (audio.length > 0) {
    const mix = audio.length === 1 ? `[${audio[0]}]anull` : `${audio.map((l) => `[${l}]`).join('')}amix=inputs=${audio.length}:duration=longest:dropout_transition=0:normalize=0`;
    chains.push(`${mix},apad=whole_dur=${seconds(duration)},atrim=end=${seconds(duration)}[aout]`);
  }
  return { graph: chains.join(';\n'), hasAudio: audio.length > 0 };
}

/**
 * The final file of a recording: one MP4 (H.264 yuv420p, AAC, moov at the
 * front) that browsers and common players play, both participants side
 * by side (clerk left, customer right) and all audio mixed, each track
 * placed on the timeline by its `startedAt`. Tracks whose file is missing,
 * empty or unreadable are left out; partial tracks are used up to where
 * they stop. Throws MediaError('nothing_to_compose') when no track holds
 * media, MediaError('ffmpeg_failed') when ffmpeg fails.
 */
export async function composeRecording(tracks: RecordingTrack[], outFile: string, options: ComposeOptions): Promise<{ durationMs: number }> {
  const { ffmpegPath, log } = options;
  const usable: { track: RecordingTrack; contents: TrackContents }[] = [];
  for (const track of [...tracks].sort((a, b) => a.startedAt - b.startedAt)) {
    const size = await fs.stat(track.file).then((s) => s.size, () => 0);
    if (size === 0) {
      log?.warn({ file: track.file }, 'recording track missing or empty: left out');
      continue;
    }
    try {
      const probed = await probeTrack(ffmpegPath, track.file);
      // At most as long as the segment ran (2 s of slack for the recorder's start and stop).
      const contents = track.endedAt !== null && track.endedAt >= track.startedAt ? withinSpan(probed, (track.endedAt - track.startedAt) / 1000 + 2) : probed;
      if (contents !== probed) log?.warn({ file: track.file, probedSeconds: probed.duration, spanSeconds: contents.duration }, 'recording track holds media beyond the time it ran (bad timestamps): cut to its span');
      if (contents.audio.length + contents.video.length === 0) {
        log?.warn({ file: track.file }, 'recording track holds no media: left out');
        continue;
      }
      usable.push({ track, contents });
    } catch (err) {
      log?.warn({ err, file: track.file }, 'recording track unreadable: left out');
    }
  }
  if (usable.length === 0) throw new MediaError('nothing_to_compose');

  const t0 = Math.min(...usable.map((u) => u.track.startedAt));
  const placed: Placed[] = usable.map((u) => ({ ...u, offset: (u.track.startedAt - t0) / 1000 }));
  const duration = Math.max(...placed.map((p) => p.offset + p.contents.duration));
  const { graph, hasAudio } = buildComposeGraph(placed, duration);
  const args = [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-progress', 'pipe:1', '-y',
    // Many segments are all open at once: one decoding thread each keeps the thread count bounded.
    ...placed.flatMap((p) => [...(placed.length > 4 ? ['-threads', '1'] : []), '-i', p.track.file]),
    '-filter_complex', graph,
    '-map', '[vout]', ...(hasAudio ? ['-map', '[aout]'] : []),
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p', '-r', String(FPS),
    ...(hasAudio ? ['-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', '2'] : []),
    '-t', seconds(duration), '-movflags', '+faststart', '-f', 'mp4', outFile,
  ];
  log?.info({ tracks: placed.length, durationMs: Math.round(duration * 1000), outFile }, 'composing the recording');
  // Plaintext until it is encrypted: 0600 from the start, whatever the umask (ffmpeg's -y keeps the mode).
  await fs.writeFile(outFile, '', { mode: 0o600 });
  await fs.chmod(outFile, 0o600);
  const ffmpeg = new FfmpegProcess(ffmpegPath, args, {
    onProgress: (report) => {
      const us = Number(report.out_time_us ?? report.out_time_ms);
      if (report.progress === 'end') options.onProgress?.(1);
      else if (Number.isFinite(us) && us >= 0) options.onProgress?.(Math.min(1, us / 1e6 / duration));
    },
  });
  const exit = await ffmpeg.exited;
  if (exit.code !== 0) {
    log?.error({ exit, stderr: ffmpeg.logTail(20) }, 'composing the recording failed');
    throw new MediaError('ffmpeg_failed', { cause: new Error(`ffmpeg ${exit.error?.message ?? `exit ${exit.code ?? exit.signal}`}: ${ffmpeg.logTail()}`) });
  }
  return { durationMs: Math.round(duration * 1000) };
}
