/**
 * The layers of the code, lowest first (docs/architecture.md, "Layers").
 * A file may import from its own layer and the ones below, never from one
 * above. Folders not listed under app/ are features; the files directly
 * under app/ put the appliance together and sit on top.
 */
export interface Layer {
  rank: number;
  name: string;
  folders: string[];
}

export const LAYERS: Layer[] = [
  { rank: 0, name: 'core', folders: ['config', 'app/core', 'app/i18n', 'app/lifecycle', 'app/security'] },
  { rank: 1, name: 'data and media', folders: ['app/db', 'app/jobs', 'media'] },
  { rank: 2, name: 'audit trail', folders: ['app/audit'] },
  { rank: 3, name: 'access and network', folders: ['app/access', 'app/net'] },
  { rank: 4, name: 'http', folders: ['app/http'] },
];

const FEATURE: Layer = { rank: 5, name: 'feature', folders: [] };
const APPLIANCE: Layer = { rank: 6, name: 'appliance', folders: ['app/start'] };

/** The layer of a repository path (a file, or a folder's index). */
export function layerOf(file: string): Layer | undefined {
  for (const layer of [...LAYERS, APPLIANCE]) {
    if (layer.folders.some((folder) => file === folder || file.startsWith(`${folder}/`))) return layer;
  }
  if (!file.startsWith('app/')) return undefined;
  return file.split('/').length === 2 ? APPLIANCE : FEATURE;
}
