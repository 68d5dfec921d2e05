import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ComposeProject, randomPassword, requiredEnv } from './compose';
import { freePort, freePortBlock, root } from './process';

/** The media ports docker/ha/docker-compose.yml gives each node (two workers each). */
const MEDIA_PORTS = { 'node-a': 40000, 'node-b': 40100 } as const;
export type HaNode = keyof typeof MEDIA_PORTS;
export const HA_NODES = Object.keys(MEDIA_PORTS) as HaNode[];

/**
 * docker/ha/docker-compose.yml (two nodes, PostgreSQL, a shared volume,
 * HAProxy) started for real, as an IT admin runs it from docker/ha: the
 * project's directory holds docker/ha (the compose file, haproxy/) and
 * docker/postgres-init as the repository does, so the file's relative paths
 * hold, and .env beside the compose file. For a test machine, the copy
 * publishes HAProxy's port and the nodes' media ports on 127.0.0.1 only,
 * the media ports moved to free ones (the same number inside and out, as the
 * file requires); nothing else of the file is changed.
 */
export class HaComposeProject extends ComposeProject {
  /** Each node's first media port on this machine. */
  readonly mediaPorts = {} as Record<HaNode, number>;

  protected override get projectDir(): string {
    return path.join(this.dir, 'docker', 'ha');
  }

  override useFilesOf(source: string): void {
    const docker = path.join(this.dir, 'docker');
    fs.rmSync(docker, { recursive: true, force: true });
    // A developer's own docker/ha/.env stays out: the project writes its own.
    fs.cpSync(path.join(source, 'docker', 'ha'), this.projectDir, { recursive: true, filter: (file) => path.basename(file) !== '.env' });
    fs.cpSync(path.join(source, 'docker', 'postgres-init'), path.join(docker, 'postgres-init'), { recursive: true });
  }

  /**
   * The compose file with its published ports on loopback: HAProxy's, and
   * each node's media range moved to `ports[node]` (and VCLERK_MEDIA_PORT with it).
   */
  publishOnLoopback(ports: Record<HaNode, number>): void {
    const file = path.join(this.projectDir, 'docker-compose.yml');
    let text = fs.readFileSync(file, 'utf8');
    const replace = (from: RegExp, to: string) => {
      const next = text.replace(from, to);
      if (next === text) throw new Error(`docker/ha/docker-compose.yml no longer has ${from}: update test/support/ha-compose.ts`);
      text = next;
    };
    replace(/^(\s+- )"\$\{HTTP_PORT:-8080\}:8080"$/m, '$1"127.0.0.1:${HTTP_PORT:-8080}:8080"');
    for (const node of HA_NODES) {
      const [old, now] = [MEDIA_PORTS[node], ports[node]];
      const range = (first: number) => `${first}-${first + 1}`;
      for (const protocol of ['udp', 'tcp']) {
        replace(new RegExp(`"${range(old)}:${range(old)}/${protocol}"`), `"127.0.0.1:${range(now)}:${range(now)}/${protocol}"`);
      }
      replace(new RegExp(`VCLERK_MEDIA_PORT: "${old}"`), `VCLERK_MEDIA_PORT: "${now}"`);
      this.mediaPorts[node] = now;
    }
    fs.writeFileSync(file, text);
  }

  /**
   * A project as an admin sets it up from docker/ha/.env.example: random
   * passwords and session secret, HAProxy on a free local port (the public
   * URL), both nodes' media announced on 127.0.0.1; the images built by
   * scripts/test-image.sh (`up --no-build`). Health checks run.
   */
  static async createHa(): Promise<{ project: HaComposeProject; base: string }> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const project = new HaComposeProject({
      POSTGRES_PASSWORD: randomPassword(),
      POSTGRES_APP_PASSWORD: randomPassword(),
      VCLERK_SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      NODE_A_MEDIA_ADDRESS: '127.0.0.1',
      NODE_B_MEDIA_ADDRESS: '127.0.0.1',
      VCLERK_PUBLIC_URL: base,
      HTTP_PORT: String(port),
      APP_IMAGE: requiredEnv('VCLERK_TEST_IMAGE'),
      POSTGRES_IMAGE: requiredEnv('VCLERK_TEST_POSTGRES_IMAGE'),
      HAPROXY_IMAGE: requiredEnv('VCLERK_TEST_HAPROXY_IMAGE'),
    }, root);
    const a = await freePortBlock(2);
    let b = await freePortBlock(2);
    while (Math.abs(b - a) < 2) b = await freePortBlock(2);
    project.publishOnLoopback({ 'node-a': a, 'node-b': b });
    project.startHealthChecks();
    return { project, base };
  }
}
