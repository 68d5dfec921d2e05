import { FfmpegProcess } from './ffmpeg';

/** A stretch of one stream without a gap longer than the threshold, in seconds of the file's own timeline. */
export interface Island {
  start: number;
  end: number;
}

export interface TrackContents {
  audio: Island[];
  video: Island[];
  /** Where the last packet of any stream ends, in seconds. */
  duration: number;
}

/**
 * What a recorded track really holds, from one pass that copies its
 * packets to ffmpeg's `framecrc` muxer (no decoding): which streams,
 * and where each has media, split where nothing arrived for longer than
 * `gapSeconds` (a paused microphone or camera). Timestamps are those
 * ffmpeg's compose pass will see (the file's start moved to 0). A
 * partial file (killed ffmpeg) reads up to where it stops. Rejects when
 * ffmpeg cannot read the file at all.
 */
export async function probeTrack(ffmpegPath: string, file: string, gapSeconds = 2): Promise<TrackContents> {
  const kinds = new Map<number, 'audio' | 'video'>();
  const timeBases = new Map<number, number>();
  const open = new Map<number, Island>();
  const islands = { audio: [] as Island[], video: [] as Island[] };
  let duration = 0;
  const parse = (line: string) => {
    if (line.startsWith('#')) {
      const tb = /^#tb (\d+): (\d+)\/(\d+)/.exec(line);
      if (tb) timeBases.set(Number(tb[1]), Number(tb[2]) / Number(tb[3]));
      const media = /^#media_type (\d+): (audio|video)/.exec(line);
      if (media) kinds.set(Number(media[1]), media[2] as 'audio' | 'video');
      return;
    }
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 5) return;
    const index = Number(fields[0]);
    const kind = kinds.get(index);
    const tb = timeBases.get(index);
    if (!kind || !tb) return;
    const pts = Number(fields[2]) * tb;
    const end = pts + Math.max(0, Number(fields[3])) * tb;
    if (!Number.isFinite(pts)) return;
    duration = Math.max(duration, end);
    const island = open.get(index);
    if (island && pts - island.end <= gapSeconds && pts >= island.start) {
      island.end = Math.max(island.end, end);
    } else {
      if (island) islands[kind].push(island);
      open.set(index, { start: pts, end });
    }
  };
  const ffmpeg = new FfmpegProcess(ffmpegPath, ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-i', file, '-map', '0:a?', '-map', '0:v?', '-c', 'copy', '-f', 'framecrc', '-'], { onLine: parse });
  const exit = await ffmpeg.exited;
  for (const [index, island] of open) islands[kinds.get(index)!].push(island);
  if (kinds.size === 0) throw new Error(`ffmpeg cannot read ${file} (exit ${exit.code ?? exit.signal ?? exit.error?.message}): ${ffmpeg.logTail()}`);
  for (const list of Object.values(islands)) list.sort((a, b) => a.start - b.start);
  return { ...islands, duration };
}

/**
 * A track's contents cut to what its wall-clock span allows: a file cannot
 * hold more media time than the segment ran (`spanSeconds`, from its start
 * to its end on the call's clock, plus slack). A packet far beyond that
 * (spoofed or corrupt RTP timestamps reaching the recorder's port) would
 * otherwise stretch the composed call to its timestamp: hours of black.
 * Returns the contents unchanged when nothing lies beyond.
 */
export function withinSpan(contents: TrackContents, spanSeconds: number): TrackContents {
  if (contents.duration <= spanSeconds) return contents;
  const cut = (islands: Island[]) => islands.filter((i) => i.start < spanSeconds).map((i) => ({ start: i.start, end: Math.min(i.end, spanSeconds) }));
  return { audio: cut(contents.audio), video: cut(contents.video), duration: spanSeconds };
}
