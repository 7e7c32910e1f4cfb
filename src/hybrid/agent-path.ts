import { createHash } from 'node:crypto';
import { assertAgentId } from '../agent/agent-id.js';

/**
 * How an agent id becomes one directory name inside a base directory.
 *
 * Agent ids are opaque strings (`/`, `..`, unicode, 1024 characters), so they
 * are never used as paths directly. Each id maps to exactly one path segment
 * that:
 * - cannot leave the base directory: it never contains `/`, `\`, NUL, and is
 *   never `.` or `..`;
 * - is the same on every file system: only `[a-z0-9_-]` and `%` occur, so
 *   case-insensitive file systems (macOS, Windows) cannot merge two ids, and
 *   Unicode-normalising ones (APFS, HFS+) cannot rewrite a name;
 * - is never a Windows device name (`CON`, `NUL`, `COM1`, ...) nor ends in a dot
 *   or space, because every name starts with a fixed prefix and `.` is escaped;
 * - stays well under the 255-byte limit of common file systems.
 *
 * Short ids are percent-encoded (UTF-8 bytes outside `[a-z0-9_-]` become `%xx`
 * with lower-case hex; upper-case letters are escaped too), behind the prefix
 * `id-`; the encoding is reversible, so the id can be read back from the name.
 * Ids whose encoding would be longer than {@link MAX_DIRECT_DIR_NAME_LENGTH}
 * get `h-<sha256 of the id>` instead, and the real id is kept in a sidecar file
 * ({@link AGENT_ID_SIDECAR}) inside the directory.
 */

/** Prefix of a directory named by the reversible encoding of its agent id. */
export const ENCODED_DIR_PREFIX = 'id-';

/** Prefix of a directory named by the hash of its agent id (long ids). */
export const HASHED_DIR_PREFIX = 'h-';

/**
 * Longest directory name produced by the reversible encoding. Far below the
 * usual 255-byte NAME_MAX so that encrypted file systems (eCryptfs allows about
 * 143 bytes) and Windows' 260-character paths still have room; real SDK ids
 * (`agt-<ulid>` and their `/fork-<ms>` children) stay well below it.
 */
export const MAX_DIRECT_DIR_NAME_LENGTH = 128;

/** File inside a hashed agent directory that holds the agent id (UTF-8, nothing else). */
export const AGENT_ID_SIDECAR = 'agent-id';

/** The directory name of one agent. */
export interface AgentDirName {
  /** A single safe path segment. */
  name: string;
  /** True when the name is a hash and the id lives in the {@link AGENT_ID_SIDECAR} file. */
  hashed: boolean;
}

const HEX = '0123456789abcdef';
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isLiteral(byte: number): boolean {
  return (
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d || // -
    byte === 0x5f // _
  );
}

function percentEncode(agentId: string): string {
  let out = '';
  for (const byte of utf8.encode(agentId)) {
    out += isLiteral(byte) ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/**
 * The directory name for an agent id. The id must be valid (see
 * `assertAgentId`): callers validate it first, so NUL and lone surrogates
 * never get here.
 */
export function agentDirName(agentId: string): AgentDirName {
  const encoded = ENCODED_DIR_PREFIX + percentEncode(agentId);
  if (encoded.length <= MAX_DIRECT_DIR_NAME_LENGTH) return { name: encoded, hashed: false };
  const digest = createHash('sha256').update(agentId, 'utf8').digest('hex');
  return { name: HASHED_DIR_PREFIX + digest, hashed: true };
}

/** True for a name {@link agentDirName} gives to a long id (the id is in the sidecar file). */
export function isHashedDirName(name: string): boolean {
  return name.startsWith(HASHED_DIR_PREFIX) && /^[0-9a-f]{64}$/.test(name.slice(HASHED_DIR_PREFIX.length));
}

/**
 * The agent id a directory name stands for, or `undefined` when the name is
 * not one {@link agentDirName} produces for a short id (a hashed name, or a
 * directory that is not ours). Only the canonical encoding is accepted, so
 * each id has exactly one directory.
 */
export function agentIdFromDirName(name: string): string | undefined {
  if (!name.startsWith(ENCODED_DIR_PREFIX)) return undefined;
  const bytes: number[] = [];
  for (let i = ENCODED_DIR_PREFIX.length; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code === 0x25 /* % */) {
      // indexOf('') is 0, so the length is checked before the digits.
      if (i + 2 >= name.length) return undefined;
      const hi = HEX.indexOf(name.charAt(i + 1));
      const lo = HEX.indexOf(name.charAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      bytes.push(hi * 16 + lo);
      i += 2;
    } else if (isLiteral(code)) {
      bytes.push(code);
    } else {
      return undefined;
    }
  }
  let agentId: string;
  try {
    agentId = strictUtf8.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
  if (!isValidAgentId(agentId)) return undefined;
  const canonical = agentDirName(agentId);
  return !canonical.hashed && canonical.name === name ? agentId : undefined;
}

/** The agent id stored in a sidecar file's text, or `undefined` if the text is not a valid id. */
export function agentIdFromSidecar(text: string, dirName: string): string | undefined {
  if (!isValidAgentId(text)) return undefined;
  return agentDirName(text).name === dirName ? text : undefined;
}

function isValidAgentId(agentId: string): boolean {
  try {
    assertAgentId(agentId, 'agentIdFromDirName');
    return true;
  } catch {
    return false;
  }
}
