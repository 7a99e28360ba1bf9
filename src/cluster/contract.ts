/** The Store/Locker contract PgStore implements (src/store/types.ts; the pipeline sees only these). */
export type {
  CertState,
  IssuedCertificate,
  Lock,
  Locker,
  LockHolderInfo,
  SaveInput,
  Store,
} from '../store/types.js';
