import assert from 'node:assert/strict';
import { applianceKill, type ApplianceKillResult } from '../support/appliance-kill';
import { useTestDatabase } from '../support/database';

/**
 * Fault: SIGKILL of the appliance (the compiled server, as IT admins run it)
 * during two recorded calls with chat, then a start again on the same data
 * directory and database. bench/faults.ts runs the same and prints it.
 */
describe('SIGKILL of the appliance during recorded calls, then a start again (real browsers, dist/)', function () {
  this.timeout(600_000);
  const db = useTestDatabase();
  let result: ApplianceKillResult;

  before(async () => {
    result = await applianceKill(db.current, { calls: 2, boundMs: 60_000, log: process.env.VCLERK_TEST_LOG ? (line: string) => console.log(`      ${line}`) : undefined });
  });

  it('the killed process leaves no media worker or ffmpeg running', () => {
    assert.deepEqual(result.orphans, [], `children before the kill: ${JSON.stringify(result.childrenBeforeKill)}`);
  });

  it('each call is resumed: the browsers join again by themselves and decode video on both sides, unrecorded', () => {
    assert.deepEqual(result.mediaAgainMs.map((ms) => ms !== null), [true, true], `ms to media again: ${JSON.stringify(result.mediaAgainMs)}`);
    assert.deepEqual(result.callStatuses, ['active', 'active']);
    assert.deepEqual(result.indicatorsHidden, [true, true], 'neither page still says "recording"');
    assert.deepEqual(result.auditCounts['call.interrupted'], [1, 1], 'the interruption is audited once per call');
  });

  it('each recording is kept as partial (stopped by the restart) and its final file has video frames', () => {
    for (const r of result.recordings) {
      assert.equal(r.status, 'partial', `recording ${r.id}: ${r.status} ${r.error}`);
      assert.equal(r.stopReason, 'partial:restart');
      assert.ok(r.videoFrames > 10 && r.duration > 2, `recording ${r.id}: ${r.videoFrames} frames, ${r.duration} s`);
    }
  });

  it('the audit chain verifies; no event written before the kill is lost or changed, none is doubled', () => {
    assert.ok(result.chainOk && result.systemChainOk, 'both chains verify');
    assert.equal(result.auditLost, 0);
    // Consent is the customer's answer, per recording and role. The scenario's clerk asks again
    // when the recorder did not start on a busy machine (appliance-kill.ts), and each asking gets
    // its own answer, so a recording may carry more than one; each is there (none lost).
    const consents = result.auditCounts['recording.consent']!;
    assert.ok(consents.length >= 2 && consents.every((n) => n >= 1), `recording.consent for every recording and role: ${JSON.stringify(consents)}`);
    for (const action of ['call.started', 'recording.started', 'recording.stopped', 'recording.finalised']) {
      assert.deepEqual(result.auditCounts[action], [1, 1], `${action} once per call or recording`);
    }
  });

  it('every chat message acknowledged before the kill is stored exactly once', () => {
    assert.equal(result.chatStoredCounts.length, 8);
    assert.deepEqual(result.chatStoredCounts, result.chatStoredCounts.map(() => 1));
  });
});
