// Test helper process: takes one certificate lock through the file store's locker, says "locked" on stdout, and
// holds it until killed. Usage: node --import tsx hold-lock.ts <storage> <name>
import { CertStore } from '../../src/store/store.js';

const [storage, name] = process.argv.slice(2);
const lock = await new CertStore(storage!).locker.tryLock(name!);
if (!lock) {
  process.stdout.write('busy\n');
  process.exit(3);
}
process.stdout.write('locked\n');
setInterval(() => {}, 60_000);
