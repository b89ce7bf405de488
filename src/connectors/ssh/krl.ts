/**
 * OpenSSH key revocation lists (KRL), the binary format sshd reads with `RevokedKeys`, written by
 * Lapse itself from PROTOCOL.krl in the OpenSSH sources. Lapse only revokes certificates by
 * serial number under their CA key, so it needs one section type:
 *
 *   header:  "SSHKRL\n\0"  uint32 version=1  uint64 krl_version  uint64 generated_date
 *            uint64 flags  string reserved  string comment
 *   section: byte 1 (KRL_SECTION_CERTIFICATES)  string [ string ca_key  string reserved
 *            byte 0x20 (KRL_SECTION_CERT_SERIAL_LIST)  string [ uint64 serial … ] ]
 *
 * Proven against sshd and `ssh-keygen -Q` in ssh-connector.test.ts.
 */
const MAGIC = Buffer.from('SSHKRL\n\0', 'binary');
const FORMAT_VERSION = 1;
const SECTION_CERTIFICATES = 1;
const SECTION_CERT_SERIAL_LIST = 0x20;

export interface RevokedSerials {
  /** The CA public key in SSH wire form (what `sshpk.Key#toBuffer('rfc4253')` gives). */
  readonly caKey: Buffer;
  /** Serials of revoked certificates (never 0: OpenSSH reserves it for "no serial"). */
  readonly serials: readonly bigint[];
}

export function encodeKrl(revoked: readonly RevokedSerials[], krlVersion: bigint, generatedAt: Date): Buffer {
  const parts: Buffer[] = [
    MAGIC,
    uint32(FORMAT_VERSION),
    uint64(krlVersion),
    uint64(BigInt(Math.floor(generatedAt.getTime() / 1000))),
    uint64(0n),
    string(Buffer.alloc(0)),
    string(Buffer.from('lapse')),
  ];
  for (const { caKey, serials } of revoked) {
    if (serials.length === 0) continue;
    const sorted = [...new Set(serials)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const list = Buffer.concat(sorted.map(uint64));
    const section = Buffer.concat([string(caKey), string(Buffer.alloc(0)), Buffer.from([SECTION_CERT_SERIAL_LIST]), string(list)]);
    parts.push(Buffer.from([SECTION_CERTIFICATES]), string(section));
  }
  return Buffer.concat(parts);
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

function uint64(value: bigint): Buffer {
  if (value < 0n || value >= 1n << 64n) throw new RangeError('KRL integers are unsigned 64-bit');
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(value);
  return out;
}

function string(data: Buffer): Buffer {
  return Buffer.concat([uint32(data.length), data]);
}
