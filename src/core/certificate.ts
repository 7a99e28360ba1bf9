import type { KeyType } from './keys.js';

/** What identifies a certificate: its name (the folder under live/) and what it is for. */
export interface CertificateIdentity {
  name: string;
  domains: string[];
  keyType: KeyType;
}

/** What the plan and health need of the live certificate, without its PEMs. */
export interface LiveSummary {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  domains: string[];
  keyType: KeyType;
  /** A bootstrap placeholder (ours, or certbot's init-letsencrypt dummy): never "valid". */
  placeholder?: boolean;
}

/** What the store hands to deployers: the files as written and what they contain. */
export interface IssuedCertificate extends CertificateIdentity, LiveSummary {
  /** Leaf only. */
  certPem: string;
  /** Intermediates only (may be empty). */
  chainPem: string;
  /** Leaf + intermediates. */
  fullchainPem: string;
  /** Unencrypted PKCS#8 PEM. Never log it. */
  keyPem: string;
  /** Upper-case hex without separators, as Node's X509Certificate prints it. */
  serial: string;
  /** Archive version now live. */
  version: number;
  /** Absolute live paths. */
  paths: { cert: string; chain: string; fullchain: string; privkey: string };
}

/** The live summary of an issued certificate (drops the PEMs). */
export function summarize(c: IssuedCertificate): LiveSummary {
  return {
    serial: c.serial,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    domains: c.domains,
    keyType: c.keyType,
    ...(c.placeholder && { placeholder: true }),
  };
}
