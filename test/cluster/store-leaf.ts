import type { ClusterHandle } from '../../src/cluster/open.js';
import { issueLeaf, type TestCA } from '../../src/crypto/selfsigned.js';

/** Stores a leaf for `<name>.example.com` on node `h`, under its cluster lock, as the pipeline would. */
export async function storeLeaf(h: ClusterHandle, ca: TestCA, name: string, days = 90) {
  const leaf = await issueLeaf(ca, { altNames: [`${name}.example.com`], days });
  const lock = await h.locker.lock(name, { waitMs: 5000 });
  try {
    return await h.store.save(name, {
      domains: [`${name}.example.com`],
      keyType: 'ecdsa-p256',
      fullchainPem: leaf.certPem + ca.certPem,
      keyPem: leaf.keyPem,
    });
  } finally {
    await lock.release();
  }
}
