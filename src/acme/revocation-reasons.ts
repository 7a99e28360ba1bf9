/** RFC 5280 CRLReason codes the CA accepts for revocation. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  superseded: 4,
  cessationOfOperation: 5,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;
