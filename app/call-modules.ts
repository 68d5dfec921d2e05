import type { Knex } from 'knex';
import type { CallModule } from './calls/module';
import { chatModule } from './chat/module';
import { curationModule } from './curation/module';
import { notesModule } from './notes/module';
import { recordingModule } from './recordings/module';
import type { RecordingLive } from './recordings/live';

/**
 * The in-call features the signalling hub serves besides media, in one
 * list: the entry point and the tests build the hub with it. A new
 * feature is one more line here (see docs/development.md, "Add an in-call feature").
 */
export function callModules(deps: { knex: Knex; recordings?: RecordingLive }): CallModule[] {
  return [curationModule(deps.knex), chatModule(deps.knex), notesModule(deps.knex), recordingModule(deps.recordings)];
}
