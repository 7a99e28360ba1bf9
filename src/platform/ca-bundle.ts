import { readFile } from 'node:fs/promises';
import { CertkeeperError } from '../errors.js';

/**
 * The one place that reads acme.caBundle. A missing or unreadable file, or one without a PEM certificate, is a
 * config error naming the field — the same everywhere (renew, the daemon's ARI checks, preflight).
 */
export async function readCaBundle(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CertkeeperError('config', `acme.caBundle: cannot read ${path}: ${(err as Error).message}`, {
      field: 'acme.caBundle',
      hint: 'point acme.caBundle at a PEM file with the CA’s root certificate, or remove it',
      cause: err,
    });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CertkeeperError('config', `acme.caBundle: ${path} holds no PEM certificate`, {
      field: 'acme.caBundle',
      hint: 'point acme.caBundle at a PEM file with the CA’s root certificate (-----BEGIN CERTIFICATE-----), or remove it',
    });
  }
  return text;
}
