// Binary strings (one char per wire byte, see ./commands.ts) for humans: log lines show UTF-8
// addresses as text, not as latin1 mojibake. Display only; the protocol keeps the bytes.

export function displayText(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  return Buffer.from(s, 'latin1').toString('utf8');
}
