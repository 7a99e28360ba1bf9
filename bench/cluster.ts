/**
 * Cluster benchmark: 200 certificates due at once across three nodes (separate processes, one PostgreSQL, one
 * Pebble, an nginx per node — test/cluster/rig.ts).
 *   ordersPerCertificate — Pebble's orders / certificates (must be 1: one issuer per certificate)
 *   maxVersionsPerName   — certificate versions stored for any one name (must be 1)
 *   storedSeconds        — from the nodes' start to every certificate stored in PostgreSQL
 *   allServingSeconds    — from the nodes' start to every nginx of every node serving every certificate
 *   ordersByNode         — how the orders spread over the nodes
 * Everything on 127.0.0.1; bounded waits (10 minutes).
 */

import { startRig } from '../test/cluster/rig.js';
import { pollUntil } from '../test/harness/ports.js';

export interface ClusterBench {
  certificates: number;
  nodes: number;
  ordersPerCertificate: number;
  maxVersionsPerName: number;
  storedSeconds: number;
  allServingSeconds: number;
  ordersByNode: Record<string, number>;
}

export async function benchCluster(opts: { clusterCount?: number } = {}): Promise<ClusterBench> {
  const certs = opts.clusterCount ?? 200;
  const rig = await startRig({ nodes: 3, certs, cycleMs: 500, concurrency: 8 });
  try {
    const t0 = performance.now();
    for (const n of rig.nodes) rig.startNode(n);
    const bound = { attempts: 3000, intervalMs: 200 };
    if (!(await pollUntil(async () => (await rig.heads()).size === certs, bound)))
      throw new Error('not every certificate was stored within 10 minutes');
    const storedSeconds = (performance.now() - t0) / 1000;
    const heads = await rig.heads();
    const deployed = async () =>
      (
        await rig.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM node_deploys d JOIN certificates c ON c.name = d.name AND c.version = d.version
            WHERE d.ok`,
        )
      )[0]?.n ?? 0;
    if (!(await pollUntil(async () => (await deployed()) === certs * rig.nodes.length, bound)))
      throw new Error('not every node deployed every certificate within 10 minutes');
    // What nginx actually serves, every name on every node.
    for (const n of rig.nodes)
      for (const name of rig.names)
        if ((await rig.served(n, name)) !== heads.get(name)?.serial)
          throw new Error(`${n.name} does not serve the stored ${name}`);
    const allServingSeconds = (performance.now() - t0) / 1000;
    const versions = await rig.sql<{ m: number }>(
      'SELECT max(n)::int AS m FROM (SELECT count(*) AS n FROM certificate_versions GROUP BY name) x',
    );
    const ordersByNode: Record<string, number> = {};
    for (const h of heads.values()) ordersByNode[h.storedBy] = (ordersByNode[h.storedBy] ?? 0) + 1;
    return {
      certificates: certs,
      nodes: rig.nodes.length,
      ordersPerCertificate: rig.pebbleCounts().orders / certs,
      maxVersionsPerName: versions[0]?.m ?? 0,
      storedSeconds: Number(storedSeconds.toFixed(2)),
      allServingSeconds: Number(allServingSeconds.toFixed(2)),
      ordersByNode,
    };
  } finally {
    await rig.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 200);
  process.stdout.write(`${JSON.stringify(await benchCluster({ clusterCount: count }), null, 2)}\n`);
}
