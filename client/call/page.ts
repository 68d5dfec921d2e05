import type { SignalAuth } from './signalling';

export type Role = 'clerk' | 'customer';

/** What the call page tells the client: who this is and how to connect. */
export interface PageConfig {
  role: Role;
  auth: SignalAuth;
  /** The call's status when the page was rendered (clerk pages); `ended` means there is nothing to join. */
  callStatus: string;
  recording: RecordingConfig;
  /** The node that served the page (`<meta name="vclerk-node">`, several nodes only): signalling names it. */
  node?: string;
}

/** The organisation's recording policy and the notice shown on this page (its version goes into the consent ledger). */
export interface RecordingConfig {
  mode: 'off' | 'on_demand' | 'always';
  allowUnrecorded: boolean;
  noticeVersion: string;
  noticeLanguage: 'en' | 'de';
}

function readRecording(root: HTMLElement): RecordingConfig {
  const mode = root.dataset.recordingMode;
  return {
    mode: mode === 'on_demand' || mode === 'always' ? mode : 'off',
    allowUnrecorded: root.dataset.allowUnrecorded === 'true',
    noticeVersion: root.dataset.noticeVersion ?? '',
    noticeLanguage: root.dataset.noticeLanguage === 'de' ? 'de' : 'en',
  };
}

export type Translate = (key: string, params?: Record<string, string | number>) => string;

/**
 * Reads the call element's data attributes: `data-role`, `data-call-id`
 * (clerk) or `data-token` (customer), and the recording policy.
 */
export function readPageConfig(root: HTMLElement): PageConfig | null {
  const role: Role = root.dataset.role === 'clerk' ? 'clerk' : 'customer';
  const callStatus = root.dataset.callStatus ?? '';
  const node = root.ownerDocument.querySelector('meta[name="vclerk-node"]')?.getAttribute('content') || undefined;
  const common = { callStatus, recording: readRecording(root), ...(node ? { node } : {}) };
  if (role === 'clerk') {
    const callId = root.dataset.callId;
    return callId ? { role, auth: { callId }, ...common } : null;
  }
  const token = root.dataset.token;
  return token ? { role, auth: { token }, ...common } : null;
}

/**
 * The translated strings, from the page's `<script type="application/json"
 * id="call-i18n">` data block (rendered from the `calls` catalog). A missing
 * key shows as itself, as on the server.
 */
export function readStrings(doc: Document): Translate {
  let strings: Record<string, unknown> = {};
  const block = doc.getElementById('call-i18n');
  try {
    const parsed: unknown = JSON.parse(block?.textContent ?? '{}');
    if (parsed && typeof parsed === 'object') strings = parsed as Record<string, unknown>;
  } catch (error) {
    console.error('vclerk: unreadable call-i18n block', error);
  }
  return (key, params = {}) => {
    const template = strings[key];
    if (typeof template !== 'string') return key;
    return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (match, name: string) => (params[name] !== undefined ? String(params[name]) : match));
  };
}
