/**
 * Load benchmark without browsers: simulated 1:1 calls (VP8 about 1 Mbit/s
 * at 30 fps and Opus, from a clip encoded once by ffmpeg and replayed as
 * RTP) into VClerk's rooms and, in the same run, into Janus's videoroom;
 * calls are added in steps until the media worker saturates or loss passes
 * 1 %, then the figures are printed side by side.
 *
 *   npm run bench:load
 *   npm run bench:load -- --targets vclerk --max-calls 20 --step 5 --hold 5
 *
 * Options (bench/README.md): --targets vclerk,janus  --workers 1  --record
 * --step 10  --max-calls 150  --hold 8  --settle 3  --max-seconds 300
 * --generators 1  --tick 4  --loss 1  --cpu 95  --gen-cpu 95  --gen-late 10
 * Everything runs on 127.0.0.1 and stops by itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveFfmpeg } from '../../media';
import { DEFAULT_CLIP, loadClip } from './clip';
import { ramp, type RampOptions, type RampResult } from './ramp';
import { summarise } from './report';
import type { LoadTarget } from './target';

function parseArgs(argv: string[]): { targets: string[]; options: Omit<RampOptions, 'clipFile' | 'nominalPpsPerCall'> } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'record') flags.add(name);
    else if (inline !== undefined) values.set(name, inline);
    else if (argv[i + 1] !== undefined) values.set(name, argv[++i]!);
    else throw new Error(`--${name} needs a value`);
  }
  const known = ['targets', 'workers', 'step', 'max-calls', 'hold', 'settle', 'max-seconds', 'generators', 'tick', 'loss', 'cpu', 'gen-cpu', 'gen-late'];
  for (const name of values.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name} (known: ${known.map((k) => `--${k}`).join(' ')} --record)`);
  const num = (name: string, fallback: number, min: number, max: number) => {
    const v = values.has(name) ? Number(values.get(name)) : fallback;
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number from ${min} to ${max}`);
    return v;
  };
  return {
    targets: (values.get('targets') ?? 'vclerk,janus').split(',').map((t) => t.trim()).filter(Boolean),
    options: {
      workers: num('workers', 1, 1, 16),
      record: flags.has('record'),
      step: num('step', 10, 1, 100),
      maxCalls: num('max-calls', 150, 1, 1000),
      holdSeconds: num('hold', 8, 1, 120),
      settleSeconds: num('settle', 3, 0, 30),
      maxSeconds: num('max-seconds', 300, 10, 3600),
      generators: num('generators', 1, 1, 8),
      tickMs: num('tick', 4, 1, 50),
      lossLimit: num('loss', 1, 0, 100),
      cpuLimit: num('cpu', 95, 1, 1000),
      generatorCpuLimit: num('gen-cpu', 95, 1, 1000),
      generatorLateLimitMs: num('gen-late', 10, 1, 10000),
    },
  };
}

function openFilesLimit(): string {
  const m = /Max open files\s+(\S+)\s+(\S+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m ? m[1]! : 'unknown';
}

/** The target module `<name>-target.ts` next to this file, loaded by name so that a missing one is only reported. */
async function loadTarget(name: string): Promise<LoadTarget> {
  const base = path.join(__dirname, `${name}-target`);
  const file = ['.ts', '.js'].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`no target named ${name} (${base}.ts is missing)`);
  const mod = (await import(file)) as { createTarget?: () => LoadTarget };
  if (typeof mod.createTarget !== 'function') throw new Error(`${file} does not export createTarget()`);
  return mod.createTarget();
}

async function main(): Promise<void> {
  const { targets, options } = parseArgs(process.argv.slice(2));
  const ffmpeg = resolveFfmpeg(process.env.FFMPEG_PATH);
  const { clip, file, cached } = await loadClip(DEFAULT_CLIP, ffmpeg);
  const kbps = (s: typeof clip.video) => ((s.bytes * 8) / (s.period / s.clockRate) / 1000).toFixed(0);
  const limit = openFilesLimit();
  console.log(`VClerk load benchmark: Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), loopback, open files limit ${limit}`);
  console.log(`clip (${cached ? 'cached' : 'encoded now'}: ${file}): ${DEFAULT_CLIP.seconds} s, VP8 ${DEFAULT_CLIP.width}x${DEFAULT_CLIP.height} ${DEFAULT_CLIP.fps} fps ${kbps(clip.video)} kbit/s (${(clip.video.packets.length / DEFAULT_CLIP.seconds).toFixed(0)} pkt/s, key frame every ${DEFAULT_CLIP.keySeconds} s), Opus ${kbps(clip.audio)} kbit/s (${(clip.audio.packets.length / DEFAULT_CLIP.seconds).toFixed(0)} pkt/s), RTP headers included`);
  console.log(`ramp: +${options.step} calls per step, settle ${options.settleSeconds} s, hold ${options.holdSeconds} s; stop at worker CPU ${options.cpuLimit} %, loss ${options.lossLimit} %, generator CPU ${options.generatorCpuLimit} % or ${options.generatorLateLimitMs} ms late, ${options.maxCalls} calls or ${options.maxSeconds} s per target; ${options.workers} worker(s), ${options.generators} generator process(es), tick ${options.tickMs} ms${options.record ? ', every call recorded' : ''}`);
  if (limit !== 'unlimited' && Number(limit) < (options.maxCalls * 12) / options.generators + 200) console.log(`warning: each call needs 12 sockets in a generator process and about as many in the SFU; raise ulimit -n (now ${limit})`);
  const results: RampResult[] = [];
  for (const name of targets) {
    console.log('');
    let target: LoadTarget;
    try {
      target = await loadTarget(name);
    } catch (err) {
      console.log(`${name}: skipped: ${(err as Error).message}`);
      continue;
    }
    try {
      const nominalPpsPerCall = 2 * ((clip.video.packets.length * clip.video.clockRate) / clip.video.period + (clip.audio.packets.length * clip.audio.clockRate) / clip.audio.period);
      results.push(await ramp(target, { ...options, clipFile: file, nominalPpsPerCall }, (l) => console.log(l)));
    } catch (err) {
      console.log(`${name}: failed: ${(err as Error).stack ?? String(err)}`);
      if (name === 'vclerk') process.exitCode = 1;
    }
  }
  if (results.length === 0) throw new Error('no target ran');
  console.log('');
  console.log('summary (per target at its last step under the loss limit and below saturation; CPU per stream net of the idle worker)');
  for (const l of summarise(results)) console.log(l);
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
