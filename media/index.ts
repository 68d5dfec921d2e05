export { WorkerPool, type WorkerPoolOptions } from './worker-pool';
export { Room, type PeerRole, type ProducerSummary, type Source } from './room';
export { RoomRegistry } from './rooms';
export { MediaError } from './errors';
export { resolveWorkerBinary, loadMediasoup } from './load';
export type { MediaLogger } from './log';
