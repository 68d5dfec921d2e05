import fs from 'node:fs';
import type { Page } from 'playwright-core';

/**
 * axe-core in a real page: the tests inject it (the pages' CSP forbids
 * inline scripts, so it is evaluated through the DevTools protocol, which
 * the CSP does not govern) and fail on violations of serious or critical
 * impact (issue 16).
 */
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeFinding {
  /** Where: the page's path and whoever looked at it (role, language, viewport). */
  where: string;
  rule: string;
  impact: string;
  help: string;
  targets: string[];
  /** axe's explanation for the first element (e.g. the contrast it measured). */
  detail: string;
}

interface AxeResult {
  violations: { id: string; impact?: string | null; help: string; nodes: { target: unknown[]; failureSummary?: string }[] }[];
}

/** The rules whose outcome depends on the viewport: enough for a second look at another size. */
export const LAYOUT_RULES = ['target-size', 'scrollable-region-focusable', 'color-contrast'];

/**
 * The serious and critical violations axe finds on the page as it is now:
 * all rules (and target-size, WCAG 2.2 AA, which axe 4 leaves off by
 * default), or only `rules`.
 */
export async function axeFindings(page: Page, where: string, rules?: string[]): Promise<AxeFinding[]> {
  const loaded = await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe !== 'undefined');
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const options = rules
    ? { resultTypes: ['violations'], runOnly: { type: 'rule', values: rules } }
    : { resultTypes: ['violations'], rules: { 'target-size': { enabled: true } } };
  const result = await page.evaluate((opts) => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<unknown> } }).axe;
    return axe.run((globalThis as unknown as { document: unknown }).document, opts);
  }, options) as AxeResult;
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({
      where, rule: v.id, impact: v.impact!, help: v.help,
      targets: v.nodes.map((n) => n.target.map(String).join(' ')),
      detail: (v.nodes[0]?.failureSummary ?? '').replace(/\s+/g, ' ').trim().slice(0, 300),
    }));
}

/** Fails with the list of findings, if any. */
export function assertNoFindings(findings: AxeFinding[]): void {
  if (findings.length > 0) throw new Error(`axe found ${findings.length} serious or critical violation(s):\n${describeFindings(findings)}`);
}

/** One line per finding, for an assertion message a person can act on. */
export function describeFindings(findings: AxeFinding[]): string {
  return findings.map((f) => `- ${f.where}: ${f.rule} (${f.impact}) ${f.help}\n    ${f.detail}\n    ${f.targets.slice(0, 6).join('\n    ')}${f.targets.length > 6 ? `\n    … and ${f.targets.length - 6} more` : ''}`).join('\n');
}
