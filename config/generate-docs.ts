import fs from 'node:fs';
import path from 'node:path';
import { renderConfigReference } from './docs';

/** Writes docs/configuration.md from the schema (`npm run config:docs`). */
const target = path.join(__dirname, '..', 'docs', 'configuration.md');
fs.writeFileSync(target, renderConfigReference());
console.log(`wrote ${path.relative(process.cwd(), target)}`);
