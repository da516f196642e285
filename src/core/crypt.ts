import { createHash } from 'node:crypto';

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The byte order of the final hash in the SHA-512 crypt encoding (spec step 22 "e"): triples that rotate by one each time. */
const ORDER: readonly (readonly [number, number, number])[] = Array.from({ length: 21 }, (_, i) => {
  const t = [i, i + 21, i + 42] as const;
  return i % 3 === 0 ? t : i % 3 === 1 ? ([t[1], t[2], t[0]] as const) : ([t[2], t[0], t[1]] as const);
});

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `n` bytes taken from `block` repeated (spec steps 11 and 16/20: "for each block of 64 bytes"). */
function repeat(block: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) block.copy(out, i, 0, Math.min(block.length, n - i));
  return out;
}

function b64(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ALPHABET[w & 0x3f];
    w >>= 6;
  }
  return out;
}

/**
 * SHA-512 crypt (`$6$salt$hash`, 5000 rounds), the hash glibc's crypt(3), `openssl passwd -6` and
 * /etc/shadow use. Source: Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512"
 * (https://www.akkadia.org/drepper/SHA-crypt.txt). `salt`: at most 16 characters of [./0-9A-Za-z].
 * Throws on another salt.
 */
export function sha512Crypt(password: string, salt: string): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error('sha512Crypt: the salt is 1-16 characters of [./0-9A-Za-z]');
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt, 'ascii');
  const b = sha512(p, s, p);
  const aParts: Buffer[] = [p, s, repeat(b, p.length)];
  for (let n = p.length; n > 0; n >>= 1) aParts.push(n & 1 ? b : p);
  let c = sha512(...aParts);
  const dp = sha512(...Array.from({ length: p.length }, () => p));
  const pBytes = repeat(dp, p.length);
  const ds = sha512(...Array.from({ length: 16 + c[0]! }, () => s));
  const sBytes = repeat(ds, s.length);
  for (let i = 0; i < 5000; i++) {
    const parts: Buffer[] = [i & 1 ? pBytes : c];
    if (i % 3) parts.push(sBytes);
    if (i % 7) parts.push(pBytes);
    parts.push(i & 1 ? c : pBytes);
    c = sha512(...parts);
  }
  let out = '';
  for (const [x, y, z] of ORDER) out += b64(c[x]!, c[y]!, c[z]!, 4);
  out += b64(0, 0, c[63]!, 2);
  return `$6$${salt}$${out}`;
}
