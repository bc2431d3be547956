// Which public keys and signatures v1 accepts (PROTOCOL.md §1.1, §4.5): canonical
// encodings only, no small-order points, S < L. The rules are libsodium's (the checks of
// crypto_sign_verify_detached and crypto_scalarmult), stated on the numbers so that they do
// not depend on what OpenSSL happens to check. Pure.

/** The field prime of Curve25519 and edwards25519, 2^255 - 19. */
const P = (1n << 255n) - 19n;
/** The order of the prime subgroup, 2^252 + 27742317777372353535851937790883648493. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** y of one pair of order-8 points of edwards25519 (the other pair has p - Y8). */
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
/**
 * The y-coordinates of edwards25519's eight small-order points: 1 (the identity), p - 1
 * (order 2), 0 (the two of order 4) and ±Y8 (the four of order 8). A point's encoding is y
 * with the sign of x in bit 255, so each y here stands for both of its encodings.
 */
const SMALL_ORDER_Y: ReadonlySet<bigint> = new Set([0n, 1n, P - 1n, Y8, P - Y8]);
/**
 * The u-coordinates of the low-order points of Curve25519 and its twist: 0, 1, p - 1 and
 * the two of order 8. X25519 with any (clamped) scalar gives the all-zero output on each.
 */
const LOW_ORDER_U: ReadonlySet<bigint> = new Set([
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** A 32-byte little-endian integer. */
function le(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] ?? 0);
  return n;
}

const SIGN_BIT = 1n << 255n;

/** The curve constant d = -121665/121666 mod p. */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

function powMod(b: bigint, e: bigint): bigint {
  let r = 1n;
  for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}

/** Whether some x has x^2 = (y^2 - 1) / (d y^2 + 1) mod p (RFC 8032 §5.1.3, step 2: Euler's criterion). */
function hasX(y: bigint): boolean {
  const y2 = (y * y) % P;
  const x2 = ((y2 - 1n + P) % P) * powMod((D * y2 + 1n) % P, P - 2n) % P;
  return x2 === 0n || powMod(x2, (P - 1n) / 2n) === 1n;
}

/**
 * Why an Ed25519 public key is refused, or undefined if it is valid: not canonical, not on
 * the curve, or of small order. Costs two modular exponentiations: for keys as they are read.
 */
export function ed25519PointProblem(encoded: Uint8Array): 'not canonical' | 'not on the curve' | 'small order' | undefined {
  if (encoded.length !== 32) return 'not canonical';
  const y = le(encoded) & (SIGN_BIT - 1n);
  return yProblem(y) ?? (hasX(y) ? undefined : 'not on the curve');
}

/** The cheap checks of a point's y: canonical, not of small order (for R too: OpenSSL refuses R off the curve). */
function yProblem(y: bigint): 'not canonical' | 'small order' | undefined {
  if (y >= P) return 'not canonical';
  if (SMALL_ORDER_Y.has(y)) return 'small order';
  return undefined;
}

/** Why an X25519 public key is refused, or undefined if it is valid. */
export function x25519PointProblem(encoded: Uint8Array): 'not canonical' | 'low order' | undefined {
  if (encoded.length !== 32) return 'not canonical';
  const u = le(encoded);
  // RFC 7748 lets a receiver mask bit 255 and reduce mod p; v1 refuses both, so that every
  // key has one encoding and a duplicate is a byte-equal duplicate (§1.1).
  if (u >= P) return 'not canonical';
  if (LOW_ORDER_U.has(u)) return 'low order';
  return undefined;
}

/**
 * The shape checks of a signature R ‖ S before the curve equation (§4.5): S < L (no
 * malleated S), R canonical and not of small order. The equation itself is RFC 8032's,
 * checked by OpenSSL.
 */
export function signatureShapeOk(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  if (le(signature.subarray(32, 64)) >= L) return false;
  return yProblem(le(signature.subarray(0, 32)) & (SIGN_BIT - 1n)) === undefined;
}
