export { MFA_FAILURE_WINDOW_MS, MFA_MAX_FAILURES } from './attempts.js';
export { findMfaUser, type MfaContext, type MfaFactor, type MfaProof, type MfaUser, type RelyingParty, type SecretSealer } from './context.js';
export { enrolledFactors, MFA_HEADER, parseMfaHeader } from './factors.js';
export {
  authenticationResponseSchema,
  CHALLENGE_TTL_MS,
  listPasskeys,
  MAX_PASSKEYS_PER_USER,
  passkeyAuthenticationOptions,
  passkeyNameSchema,
  passkeyRegistrationOptions,
  registerPasskey,
  registrationResponseSchema,
  removePasskey,
  verifyPasskey,
  type Passkey,
} from './passkeys.js';
export {
  confirmTotp,
  enrollTotp,
  removeTotp,
  TOTP_CODE,
  totpCodeAt,
  totpStatus,
  totpStepOf,
  verifyTotp,
  type TotpEnrollment,
  type TotpStatus,
} from './totp.js';
