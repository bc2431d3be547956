// fwknop's base64: the standard alphabet with every '=' removed (SPEC.md §2.1). Pure.
// Node's Buffer.from(s, 'base64') skips bad characters and takes '-' and '_', so the alphabet
// is checked here first and a string that no encoder makes (length ≡ 1 mod 4) is refused.

const ALPHABET = /^[A-Za-z0-9+/]*$/;

/** Unpadded base64 of `bytes` (libfko strips the '=' of every field, digest and MAC). */
export function encodeB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

/** Decodes unpadded base64; undefined for a character outside the alphabet or a bad length. */
export function decodeB64(text: string): Uint8Array | undefined {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** A config value (KEY_BASE64 ...): padding allowed at the end, as `fwknop --key-gen` prints it. */
export function decodeB64Padded(text: string): Uint8Array | undefined {
  const m = /^([A-Za-z0-9+/]*)(=*)$/.exec(text);
  if (m === null || (m[2] ?? '').length > 2) return undefined;
  const body = m[1] ?? '';
  if (m[2] !== '' && (body.length + (m[2] ?? '').length) % 4 !== 0) return undefined;
  return decodeB64(body);
}

/** True when every byte is in [A-Za-z0-9+/] (fwknopd also allows '=', which no packet has). */
export function isB64Bytes(payload: Uint8Array): boolean {
  for (let i = 0; i < payload.length; i++) {
    const c = payload[i] as number;
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
    if (!ok) return false;
  }
  return true;
}
