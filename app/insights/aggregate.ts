import type { Knex } from 'knex';
import { markCallsCounted, uncountedEndedCalls, type UncountedCall } from '../calls/store';
import { localDate, localMidnight } from '../i18n/dates';
import { organisationIds } from '../organisation/store';
import { organisationTimeZone } from '../organisation/time-zone';
import { markEntriesCounted, uncountedSettledEntries } from '../queue/store';
import { takeAvailabilitySpans } from '../staff/store';
import { addDays } from './period';
import { addDayFigures, addProductFigures, cardsOfCalls, dayKey, emptyDay, lockFigures, rebuildMonths, type DayFigures } from './store';

/** Calls (and queue entries) counted per transaction. */
const BATCH = 2000;

export interface AggregateOptions {
  /** Only this organisation; else every one. */
  organisationId?: string;
  /** The clock for the available time of clerks available now. */
  now?: Date;
}

export interface AggregateResult {
  calls: number;
  queueEntries: number;
  availabilitySpans: number;
}

/**
 * The insights job: adds every ended call and every settled queue entry
 * not yet counted to the daily figures, once (each is marked counted in the
 * same transaction as its figures are written), and the clerks' available
 * time up to `now`. A call counts on the local day (the organisation's time
 * zone) it started, or was made if it never started; a queue entry on the
 * day it was entered. Runs in the quarter-hourly housekeeping and before
 * every retention run, so that nothing is deleted before it was counted.
 * One organisation at a time holds its insights lock: several nodes may run
 * it at once.
 */
export async function aggregateInsights(knex: Knex, options: AggregateOptions = {}): Promise<AggregateResult> {
  const total: AggregateResult = { calls: 0, queueEntries: 0, availabilitySpans: 0 };
  const organisations = options.organisationId ? [options.organisationId] : await organisationIds(knex);
  for (const organisationId of organisations) {
    const timeZone = await organisationTimeZone(knex, organisationId);
    // The clerks' available time with the organisation's first batch.
    for (let first = true; ; first = false) {
      const withAvailability = first;
      const done = await knex.transaction(async (trx) => {
        await lockFigures(trx, organisationId);
        return countBatch(trx, organisationId, timeZone, options.now ?? new Date(), withAvailability);
      });
      total.calls += done.calls;
      total.queueEntries += done.queueEntries;
      total.availabilitySpans += done.availabilitySpans;
      if (done.calls < BATCH && done.queueEntries < BATCH) break;
    }
  }
  return total;
}

async function countBatch(trx: Knex.Transaction, organisationId: string, timeZone: string, now: Date, withAvailability: boolean): Promise<AggregateResult> {
  const additions = new Map<string, { day: string; clerkId: string | null; figures: DayFigures }>();
  const figuresOf = (day: string, clerkId: string | null): DayFigures => {
    const key = dayKey(day, clerkId);
    let entry = additions.get(key);
    if (!entry) additions.set(key, (entry = { day, clerkId, figures: emptyDay() }));
    return entry.figures;
  };

  const calls = await uncountedEndedCalls(trx, organisationId, timeZone, BATCH);
  for (const call of calls) addCall(figuresOf(call.day, call.clerk_id), call);

  const entries = await uncountedSettledEntries(trx, organisationId, timeZone, BATCH);
  for (const entry of entries) {
    const f = figuresOf(entry.day, entry.answered ? entry.accepted_by : null);
    if (entry.answered && entry.wait_seconds !== null) {
      f.queue_answered += 1;
      const k = String(Math.max(0, entry.wait_seconds));
      f.waits[k] = (f.waits[k] ?? 0) + 1;
    } else {
      f.queue_abandoned += 1;
    }
  }

  const spans = withAvailability ? await takeAvailabilitySpans(trx, organisationId, now) : [];
  for (const span of spans) {
    for (const [day, seconds] of splitByLocalDay(span.started_at, span.ended_at, timeZone)) figuresOf(day, span.user_id).available_seconds += seconds;
  }

  await addDayFigures(trx, organisationId, additions);
  const started = calls.filter((c) => c.started);
  await addProductFigures(trx, organisationId, await cardsOfCalls(trx, started.map((c) => ({ id: c.id, day: c.day }))));
  await rebuildMonths(trx, organisationId, [...additions.values()].map((a) => a.day));
  await markCallsCounted(trx, calls.map((c) => c.id));
  await markEntriesCounted(trx, entries.map((e) => e.id));
  return { calls: calls.length, queueEntries: entries.length, availabilitySpans: spans.length };
}

function addCall(f: DayFigures, call: UncountedCall): void {
  if (!call.started) {
    f.calls_unanswered += 1;
    return;
  }
  f.calls_started += 1;
  f[`via_${call.channel}`] += 1;
  f.hours[call.hour] = (f.hours[call.hour] ?? 0) + 1;
  if (call.completed) {
    f.calls_completed += 1;
    const k = String(Math.max(0, call.seconds ?? 0));
    f.durations[k] = (f.durations[k] ?? 0) + 1;
  }
  f.cards_shown += call.cards;
  if (call.cards > 0) f.calls_with_cards += 1;
  if (call.favourite) f.calls_with_favourite += 1;
  f.recordings += call.recordings;
  if (call.consent === 'granted') f.consents_granted += 1;
  else if (call.consent) f.consents_refused += 1;
}

/** Seconds of [from, to) on each local day of `timeZone`. */
export function splitByLocalDay(from: Date, to: Date, timeZone: string): Map<string, number> {
  const out = new Map<string, number>();
  let start = from.getTime();
  const end = to.getTime();
  while (start < end) {
    const day = localDate(start, timeZone);
    const next = Math.min(end, Math.max(start + 1000, localMidnight(addDays(day, 1), timeZone)));
    out.set(day, (out.get(day) ?? 0) + Math.round((next - start) / 1000));
    start = next;
  }
  return out;
}
