import { createPrivateKey } from 'node:crypto';

/** ACM's names for the key algorithms it can import (ImportCertificate / DescribeCertificate KeyAlgorithm). */
export const ACM_KEY_ALGORITHMS = [
  'RSA_1024',
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'EC_prime256v1',
  'EC_secp384r1',
  'EC_secp521r1',
] as const;
export type AcmKeyAlgorithm = (typeof ACM_KEY_ALGORITHMS)[number];

/**
 * The keys CloudFront serves from an ACM certificate (CloudFront developer guide, "Requirements for using SSL/TLS
 * certificates with CloudFront"): RSA 2048, 3072 and 4096, and ECDSA P-256. ECDSA P-384 and P-521 are refused.
 */
export const CLOUDFRONT_KEY_ALGORITHMS: readonly AcmKeyAlgorithm[] = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'EC_prime256v1',
];

/** certkeeper `keyType` values CloudFront accepts (the same list in configuration terms). */
export const CLOUDFRONT_KEY_TYPES: readonly string[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256'];

/** Plain words for the list, used in hints. */
export const CLOUDFRONT_KEYS_TEXT = 'RSA 2048, 3072 or 4096, or ECDSA P-256';

/** The certkeeper `keyType` that yields each ACM algorithm (for hints). */
export const KEY_TYPE_FOR: Partial<Record<AcmKeyAlgorithm, string>> = {
  RSA_2048: 'rsa-2048',
  RSA_3072: 'rsa-3072',
  RSA_4096: 'rsa-4096',
  EC_prime256v1: 'ecdsa-p256',
  EC_secp384r1: 'ecdsa-p384',
};

export type KeyAlgorithmResult =
  | { ok: true; algorithm: AcmKeyAlgorithm }
  | { ok: false; description: string };

/** Names the key in ACM's terms, or says in plain words what it is when ACM cannot import it. */
export function acmKeyAlgorithmOf(keyPem: string): KeyAlgorithmResult {
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    // Never echo the key or the parser's message (it may quote key bytes).
    return { ok: false, description: 'a private key that is not an unencrypted PEM key' };
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits === 1024 || bits === 2048 || bits === 3072 || bits === 4096) {
      return { ok: true, algorithm: `RSA_${bits}` as AcmKeyAlgorithm };
    }
    return { ok: false, description: `an RSA ${bits}-bit key` };
  }
  if (key.asymmetricKeyType === 'ec') {
    switch (d.namedCurve) {
      case 'prime256v1':
        return { ok: true, algorithm: 'EC_prime256v1' };
      case 'secp384r1':
        return { ok: true, algorithm: 'EC_secp384r1' };
      case 'secp521r1':
        return { ok: true, algorithm: 'EC_secp521r1' };
      default:
        return { ok: false, description: `an ECDSA key on curve ${d.namedCurve ?? 'unknown'}` };
    }
  }
  const names: Record<string, string> = {
    ed25519: 'Ed25519',
    ed448: 'Ed448',
    dsa: 'DSA',
    'rsa-pss': 'RSA-PSS',
  };
  const type = key.asymmetricKeyType ?? 'unknown';
  return { ok: false, description: `a key of type ${names[type] ?? type}` };
}

/** Plain words for an ACM algorithm: "ECDSA P-256". */
export function describeAlgorithm(alg: string): string {
  const m = /^RSA[_-](\d+)$/.exec(alg);
  if (m) return `RSA ${m[1]}`;
  const curves: Record<string, string> = {
    EC_prime256v1: 'ECDSA P-256',
    EC_secp384r1: 'ECDSA P-384',
    EC_secp521r1: 'ECDSA P-521',
  };
  return curves[alg.replace('-', '_')] ?? alg;
}

/** ACM writes RSA-2048 in some responses and RSA_2048 in others; compare in one spelling. */
export function normalizeAlgorithm(alg: string | undefined): string | undefined {
  return alg?.replace('-', '_');
}

/**
 * ACM prints serials as colon-separated lower-case hex bytes ("0a:1b:..."), Node as upper-case hex without
 * separators. Compare both as hex digits without leading zeros.
 */
export function normalizeSerial(serial: string | undefined): string {
  return (serial ?? '')
    .replace(/[^0-9a-fA-F]/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}

/** `arn:aws:acm:us-east-1:123456789012:certificate/...` → `us-east-1`. */
export function regionOfArn(arn: string): string | undefined {
  const m = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/.exec(arn);
  return m?.[1];
}
