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

/** x^(2^k) mod p: k squarings. */
function pow2k(x: bigint, k: number): bigint {
  for (let i = 0; i < k; i++) x = (x * x) % P;
  return x;
}

/**
 * Euler's criterion, x^((p-1)/2) mod p: 1 for a nonzero square, p - 1 for a non-square. The
 * exponent is 2^254 - 10 = (2^250 - 1)·2^4 + 6, reached with ref10's addition chain for
 * x^(2^250 - 1): 254 squarings and 13 multiplications, where square-and-multiply spends 500.
 */
function legendre(x: bigint): bigint {
  const x3 = (((x * x) % P) * x) % P;
  const b4 = (pow2k(x3, 2) * x3) % P; // x^(2^4 - 1)
  const b5 = (pow2k(b4, 1) * x) % P;
  const b10 = (pow2k(b5, 5) * b5) % P;
  const b20 = (pow2k(b10, 10) * b10) % P;
  const b40 = (pow2k(b20, 20) * b20) % P;
  const b50 = (pow2k(b40, 10) * b10) % P;
  const b100 = (pow2k(b50, 50) * b50) % P;
  const b200 = (pow2k(b100, 100) * b100) % P;
  const b250 = (pow2k(b200, 50) * b50) % P; // x^(2^250 - 1)
  return (pow2k(b250, 4) * pow2k(x3, 1)) % P; // · x^6
}

/**
 * Whether some x has x^2 = u / v with u = y^2 - 1, v = d y^2 + 1 (RFC 8032 §5.1.3, step 2).
 * v is never 0 (d is not a square), and u / v is a square exactly when u·v is, so one
 * exponentiation decides it, with no inverse.
 */
function hasX(y: bigint): boolean {
  const y2 = (y * y) % P;
  const uv = (((y2 - 1n + P) % P) * ((D * y2 + 1n) % P)) % P;
  return uv === 0n || legendre(uv) === 1n;
}

/**
 * Why an Ed25519 public key is refused, or undefined if it is valid: not canonical, not on
 * the curve, or of small order. Costs one modular exponentiation: for keys as they are read.
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
