import { applianceKill } from '../test/support/appliance-kill';
import { createTestDatabase } from '../test/support/database';

/** bench/faults.ts, part 2: SIGKILL of the compiled appliance during recorded calls, and the start again. */
export async function runApplianceKill(options: { calls: number; boundMs: number; log: (m: string) => void; load: () => string }): Promise<void> {
  const db = await createTestDatabase();
  try {
    const loadBefore = options.load();
    const r = await applianceKill(db, { calls: options.calls, boundMs: options.boundMs, log: options.log });
    const times = r.mediaAgainMs.filter((t): t is number => t !== null);
    const once = (counts: number[]) => counts.every((n) => n === 1);
    console.log('');
    console.log(`SIGKILL of the appliance (dist/app/server.js) during ${r.calls} recorded calls with chat, then a start again (${loadBefore} before)`);
    console.log(`  left running by the killed process   ${r.orphans.length ? r.orphans.map((o) => `${o.command} (${o.pid})`).join(', ') : 'nothing'} (of ${r.childrenBeforeKill.length} children)`);
    console.log(`  start again until listening          ${r.restartMs} ms`);
    console.log(`  calls resumed (media on both sides)  ${times.length} / ${r.calls}; after listening: ${r.mediaAgainMs.map((t) => (t === null ? 'never' : `${t} ms`)).join(', ')} (bound ${options.boundMs / 1000} s)`);
    console.log(`  call status after                    ${r.callStatuses.join(', ')}; recording indicator gone on both pages: ${r.indicatorsHidden.every(Boolean) ? 'yes' : 'NO'}`);
    console.log(`  recordings                           ${r.recordings.map((x) => `${x.status} (${x.stopReason}), ${x.videoFrames} video frames, ${x.duration.toFixed(1)} s`).join('; ')}`);
    console.log(`  audit chain                          ${r.chainOk ? 'verifies' : 'BROKEN'} (${r.chainCount} events); system chain ${r.systemChainOk ? 'verifies' : 'BROKEN'}`);
    console.log(`  audit events lost or changed         ${r.auditLost}`);
    console.log(`  audit actions once each              ${Object.entries(r.auditCounts).map(([a, c]) => `${a} ${once(c) ? 'yes' : `NO ${JSON.stringify(c)}`}`).join(', ')}`);
    console.log(`  chat messages acknowledged / stored  ${r.chatAcknowledged} / ${r.chatStoredCounts.filter((n) => n === 1).length} exactly once`);
  } finally {
    await db.drop();
  }
}
