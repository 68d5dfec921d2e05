import crypto from 'node:crypto';
import { canonicalJson } from '../audit/chain';
import { parsePublicKey, publicKeyInfo, type ApplianceKey, type PublicKeyInfo } from '../audit/signing';

/**
 * The manifest of an audit export: what was exported, by whom, how many
 * rows, the first and last chain link, the SHA-256 of the file, and the
 * appliance's public key, signed with Ed25519 over the canonical JSON
 * (chain.ts `canonicalJson`) of the manifest without `signature`.
 * No database code here: the offline verifier uses this file.
 */
export const MANIFEST_FORMAT = 'vclerk.audit-export';
export const MANIFEST_VERSION = 1;

export type ExportFormat = 'ndjson' | 'csv';

export interface ChainLink {
  seq: number;
  hash: string;
}

export interface ExportManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  export_id: string;
  organisation_id: string;
  created_at: string;
  created_by: { id: string; label: string };
  file: { name: string; format: ExportFormat; bytes: number; sha256: string };
  /** The chosen UTC days (both inclusive, null when open) and the instants they stand for (`to` exclusive). */
  period: { from: string | null; to: string | null; from_time: string | null; to_time: string | null };
  filters: { actor: string | null; action: string | null };
  /**
   * True when the file holds every event of the chain between its first
   * and last row (no actor or action filter, no gap): the verifier then
   * checks the links between rows too; otherwise each row's own hash only.
   */
  complete_chain: boolean;
  row_count: number;
  first: (ChainLink & { prev_hash: string }) | null;
  last: ChainLink | null;
  /** The newest event of the chain when the export began: later events are not in the file. */
  chain_head: ChainLink | null;
  public_key: PublicKeyInfo;
  signature?: { algorithm: 'ed25519'; key_id: string; value: string };
}

function signedBytes(manifest: ExportManifest): Buffer {
  const { signature: _signature, ...rest } = manifest;
  return Buffer.from(canonicalJson(rest), 'utf8');
}

/** The manifest with its public key and signature set. */
export function signManifest(manifest: Omit<ExportManifest, 'public_key' | 'signature'>, key: ApplianceKey): ExportManifest {
  const unsigned: ExportManifest = { ...manifest, public_key: key.info };
  const value = crypto.sign(null, signedBytes(unsigned), key.privateKey).toString('base64');
  return { ...unsigned, signature: { algorithm: 'ed25519', key_id: key.info.key_id, value } };
}

/**
 * Checks the signature with the public key the manifest carries, and that
 * the carried key's fingerprint is what it claims. Whether that key is the
 * appliance's is a separate question (compare with a key obtained
 * independently).
 */
export function manifestSignatureValid(manifest: ExportManifest): boolean {
  try {
    const key = parsePublicKey(manifest.public_key.pem);
    const info = publicKeyInfo(key);
    if (info.fingerprint !== manifest.public_key.fingerprint || !manifest.signature || manifest.signature.algorithm !== 'ed25519') return false;
    return crypto.verify(null, signedBytes(manifest), key, Buffer.from(manifest.signature.value, 'base64'));
  } catch {
    return false;
  }
}

/** The manifest as served and stored: pretty JSON with a final newline. */
export function manifestText(manifest: ExportManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
