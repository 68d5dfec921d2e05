import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { AuditService } from '../../app/audit/service';
import { recordingDir } from '../../app/recordings/storage';
import { seedOrganisation } from './accounts';
import type { TestDatabase } from './database';
import { framesNow, launchFaultBrowser, measureRecovery, smallFakeVideo, startCalls, waitAllFlowing, type FaultCall } from './fault-calls';
import { assertBuilt, cleanEnv, compiledServer, freePort, freePortBlock, mediaEnv, run, type Running } from './process';

/**
 * Fault: SIGKILL of the appliance process during recorded calls, then a
 * start again on the same data directory and database. Runs the compiled
 * appliance (dist/app/server.js) as a child process, as an IT admin runs
 * it, with real browsers; gathers what the test and bench/faults.ts judge.
 */

export interface ApplianceKillResult {
  calls: number;
  /** Child processes of the killed appliance (mediasoup workers, ffmpegs) still running 2 s after the kill. */
  orphans: { pid: number; command: string }[];
  childrenBeforeKill: { pid: number; command: string }[];
  restartMs: number;
  /** Per call: ms after the new process listened until both sides decode video again (null: not within the bound). */
  mediaAgainMs: (number | null)[];
  callStatuses: string[];
  /** Per call: the recording indicator is hidden on both pages after the restart (the recording ended with the crash). */
  indicatorsHidden: boolean[];
  recordings: { id: string; status: string; stopReason: string | null; videoFrames: number; duration: number; error: string | null }[];
  chainOk: boolean;
  chainCount: number;
  systemChainOk: boolean;
  /** Audit events written before the kill that are missing afterwards, or changed. */
  auditLost: number;
  /** Actions that must be there exactly once per recording or call, with how often they are. */
  auditCounts: Record<string, number[]>;
  chatAcknowledged: number;
  /** Acknowledged messages found in call_messages: each must be there exactly once. */
  chatStoredCounts: number[];
}

function children(pid: number): { pid: number; command: string }[] {
  const out: { pid: number; command: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(entry), command: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0]! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie is dead for our purposes.
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A recording's final file as ffprobe reads it: its duration and the video frames it decodes. */
export function probe(file: string): { duration: number; videoFrames: number } {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=codec_type,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' })) as {
    format: { duration: string };
    streams: { codec_type: string; nb_read_frames?: string }[];
  };
  return { duration: Number(out.format.duration), videoFrames: Number(out.streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0) };
}

async function until<T>(what: string, timeoutMs: number, probeFn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probeFn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function sendChat(page: Page, text: string): Promise<void> {
  if (!(await page.isVisible('#chat-input'))) await page.click('#toggle-chat');
  await page.fill('#chat-input', text);
  await page.click('#chat-send');
  // Acknowledged: the client shows a message of its own once the server answered with it stored.
  await page.locator('#chat-log .chat-message.from-me .chat-body', { hasText: text }).waitFor({ timeout: 30_000 });
}

/**
 * The clerk starts recording, the customer consents, both see the indicator.
 * On a heavily loaded machine ffmpeg may not bind its ports within the
 * recorder's 5 s (the recording then fails and the clerk is told): the clerk
 * tries again, as a clerk would, up to 3 times.
 */
export async function startRecording(knex: TestDatabase['knex'], call: FaultCall, log: (m: string) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await call.clerk.click('#record-toggle');
    // The customer is asked (not again when they consented earlier in this call).
    const outcome = await until('the recording to start or fail', 120_000, async () => {
      if (await call.customer.isVisible('#consent-grant')) await call.customer.click('#consent-grant', { timeout: 2000 }).catch(() => undefined);
      const running = await knex('recordings').where({ call_id: call.callId, status: 'recording' }).first('id');
      if (running && (await call.clerk.isVisible('#recording-indicator')) && (await call.customer.isVisible('#recording-indicator'))) return 'started';
      const failed = await knex('recordings').where({ call_id: call.callId }).whereIn('status', ['failed', 'partial', 'processing']).count({ n: '*' });
      return Number(failed[0]!.n) >= attempt ? 'failed' : undefined;
    });
    if (outcome === 'started') return;
    log(`call ${call.index}: the recording did not start (attempt ${attempt}); the clerk tries again`);
    if (attempt === 3) throw new Error(`call ${call.index}: the recording did not start in 3 attempts`);
    await call.clerk.locator('#recording-indicator').waitFor({ state: 'hidden', timeout: 30_000 });
    await until('the record button to be ready again', 30_000, async () => ((await call.clerk.getAttribute('#record-toggle', 'aria-pressed')) === 'false' ? true : undefined));
  }
}

export async function applianceKill(db: TestDatabase, options: { calls: number; boundMs: number; log?: (m: string) => void }): Promise<ApplianceKillResult> {
  assertBuilt();
  const log = options.log ?? (() => undefined);
  const knex = db.knex;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-fault-appliance-'));
  const dataDir = path.join(home, 'data');
  const port = await freePort();
  // Its own recorder and worker port ranges, away from the defaults other runs on this machine use.
  const recordingPorts = await freePortBlock(80);
  const rtcPorts = recordingPorts + 40;
  const env = cleanEnv({
    ...(await mediaEnv()),
    NODE_ENV: 'production',
    DATABASE_URL: db.url,
    VCLERK_PORT: String(port),
    VCLERK_HOST: '127.0.0.1',
    VCLERK_DATA_DIR: dataDir,
    VCLERK_RECORDING_MIN_FREE_MB: '1',
    VCLERK_RECORDING_PORT_MIN: String(recordingPorts),
    VCLERK_RECORDING_PORT_MAX: String(recordingPorts + 39),
    VCLERK_MEDIA_RTC_PORT_MIN: String(rtcPorts),
    VCLERK_MEDIA_RTC_PORT_MAX: String(rtcPorts + 39),
    VCLERK_LOG_LEVEL: 'info',
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  let server: Running | undefined;
  let browsers: Browser[] = [];
  let orphans: { pid: number; command: string }[] = [];
  const started: Running[] = [];
  try {
    server = run(compiledServer, [], env);
    started.push(server);
    await server.waitFor(/VClerk is listening/, 90_000);
    const org = await seedOrganisation(knex, 'Crash Bank');
    await knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } } });
    const video = smallFakeVideo(home);
    browsers = await Promise.all([launchFaultBrowser(video), launchFaultBrowser(video)]);
    const calls = await startCalls({ baseUrl, knex, org, clerkBrowser: browsers[0]!, customerBrowser: browsers[1]!, count: options.calls });
    await waitAllFlowing(calls, 90_000);
    log(`${calls.length} calls flowing`);

    // Recording with the customer's consent, in every call.
    for (const call of calls) await startRecording(knex, call, log);
    const recordingIds: string[] = [];
    for (const call of calls) {
      const row = await until('the recording row', 10_000, () => knex('recordings').where({ call_id: call.callId, status: 'recording' }).first('id') as Promise<{ id: string } | undefined>);
      recordingIds.push(row.id as string);
    }
    // Chat both ways, each message acknowledged to its sender.
    const chat: string[] = [];
    for (const call of calls) {
      for (const [side, page] of [['clerk', call.clerk], ['customer', call.customer]] as const) {
        for (let i = 0; i < 2; i++) {
          const text = `fault-${call.index}-${side}-${i}-${Date.now()}`;
          await sendChat(page, text);
          chat.push(text);
        }
      }
    }
    // Let the recorders write a few seconds of media (clusters of 1 s are flushed as written).
    await new Promise((r) => setTimeout(r, 5000));
    const auditBefore = await knex('audit_events').select('id', 'chain', 'seq', 'hash');
    const framesAtKill = await framesNow(calls);
    const childrenBeforeKill = children(server.child.pid!);
    log(`SIGKILL of the appliance (pid ${server.child.pid}) with ${childrenBeforeKill.length} children: ${childrenBeforeKill.map((c) => path.basename(c.command)).join(', ')}`);

    server.child.kill('SIGKILL');
    await server.exited;
    // The workers end when their channel closes, each recorder's ffmpeg is killed by its parent-death
    // signal: both at once, but on a busy machine allow up to 5 s before whatever still runs is an orphan.
    const graceUntil = Date.now() + 5_000;
    do {
      await new Promise((r) => setTimeout(r, 250));
      orphans = childrenBeforeKill.filter((c) => alive(c.pid));
    } while (orphans.length && Date.now() < graceUntil);
    log(`orphans after the kill (up to 5 s): ${orphans.map((c) => `${path.basename(c.command)} (${c.pid})`).join(', ') || 'none'}`);

    const restartAt = Date.now();
    server = run(compiledServer, [], env);
    started.push(server);
    await server.waitFor(/VClerk is listening/, 90_000);
    const listeningAt = Date.now();
    log(`started again in ${listeningAt - restartAt} ms`);

    // The browsers reconnect by themselves and join again; the calls go on, unrecorded.
    const recovery = await measureRecovery(calls, framesAtKill, listeningAt, options.boundMs);
    log(`media again per call (ms after listening): ${JSON.stringify(recovery.perCall)}`);
    const indicatorsHidden = await Promise.all(calls.map(async (c) => !(await c.clerk.isVisible('#recording-indicator')) && !(await c.customer.isVisible('#recording-indicator'))));
    const callStatuses = await Promise.all(calls.map(async (c) => (await knex('calls').where({ id: c.callId }).first('status'))!.status as string));

    const recordings: ApplianceKillResult['recordings'] = [];
    for (const id of recordingIds) {
      // Finishing (composing the MP4) runs in the background at low priority: on a busy machine it may take minutes.
      const row = await until(`recording ${id} finished`, Math.max(options.boundMs, 240_000), async () => {
        const r = await knex('recordings').where({ id }).first();
        return r && ['ready', 'partial', 'failed'].includes(r.status) ? r : undefined;
      });
      const file = row.file_name ? path.join(recordingDir(dataDir, org.id, id), row.file_name as string) : '';
      const info = file && fs.existsSync(file) ? probe(file) : { duration: 0, videoFrames: 0 };
      recordings.push({ id, status: row.status, stopReason: row.stop_reason, videoFrames: info.videoFrames, duration: info.duration, error: row.error });
    }

    const audit = new AuditService(knex);
    const chain = await audit.verify(org.id);
    const systemChain = await audit.verify(null);
    const after = new Map((await knex('audit_events').select('id', 'chain', 'seq', 'hash')).map((r) => [String(r.id), r]));
    const auditLost = auditBefore.filter((r) => after.get(String(r.id))?.hash !== r.hash).length;
    const count = async (action: string, targets: string[]) => Promise.all(targets.map(async (t) => Number((await knex('audit_events').where({ action, target_id: t }).count({ n: '*' }))[0]!.n)));
    const callIds = calls.map((c) => c.callId);
    const auditCounts: Record<string, number[]> = {
      'call.started': await count('call.started', callIds),
      'call.interrupted': await count('call.interrupted', callIds),
      // One answer per participant (the clerk's start and the customer's consent): counted per recording and role.
      'recording.consent': (await Promise.all(recordingIds.map(async (t) => (await knex('audit_events').where({ action: 'recording.consent', target_id: t }).select(knex.raw("details->>'role' AS role")).count({ n: '*' }).groupByRaw("details->>'role'")).map((r) => Number(r.n))))).flat(),
      'recording.started': await count('recording.started', recordingIds),
      'recording.stopped': await count('recording.stopped', recordingIds),
      'recording.finalised': await count('recording.finalised', recordingIds),
    };
    const chatStoredCounts = await Promise.all(chat.map(async (text) => Number((await knex('call_messages').where({ body: text }).count({ n: '*' }))[0]!.n)));

    return {
      calls: calls.length,
      orphans,
      childrenBeforeKill,
      restartMs: listeningAt - restartAt,
      mediaAgainMs: recovery.perCall,
      callStatuses,
      indicatorsHidden,
      recordings,
      chainOk: chain.ok,
      chainCount: chain.count,
      systemChainOk: systemChain.ok,
      auditLost,
      auditCounts,
      chatAcknowledged: chat.length,
      chatStoredCounts,
    };
  } catch (err) {
    // The appliance's own log says why, e.g. a recorder that would not start.
    const tail = started.map((s, i) => `--- appliance run ${i + 1} ---\n${s.output().split('\n').filter((l) => !/"msg":"request completed"/.test(l)).slice(-40).join('\n')}`).join('\n');
    log(tail);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail}`, { cause: err });
  } finally {
    await Promise.allSettled(browsers.map((b) => b.close()));
    for (const s of started) await s.stop(15_000);
    // Whatever the killed process left running (processes this run started) ends with the run.
    for (const orphan of orphans) if (alive(orphan.pid)) process.kill(orphan.pid, 'SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export type { FaultCall };
