// The kernel-filter clause for fwknop packets, OR-ed with the v1 clause: UDP to the port with
// a payload of 140..1500 bytes whose first byte is one a fwknop packet can start with ('8',
// '9', '+', '/': the stripped U2FsdGVkX1 prefix leaves 4 fixed bits, SPEC.md §5.3). IPv4
// only, as fwknop clients are. Pure.
import { FWKNOP_PAYLOAD } from '../src/fwknop/verify.js';

const UDP_HEADER_BYTES = 8;
const FIRST_BYTES = ['0x38', '0x39', '0x2b', '0x2f'];

export function fwknopFilterClause(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`fwknop port: expected 1-65535, got ${String(port)}`);
  const min = FWKNOP_PAYLOAD.min + UDP_HEADER_BYTES;
  const max = FWKNOP_PAYLOAD.max + UDP_HEADER_BYTES;
  return `(udp dst port ${port} and udp[4:2] >= ${min} and udp[4:2] <= ${max} and (${FIRST_BYTES.map((b) => `udp[8] = ${b}`).join(' or ')}))`;
}
