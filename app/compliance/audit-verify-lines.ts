import { isAscii, isUtf8 } from 'node:buffer';

/**
 * How the offline verifier cuts an export file into lines, as readline does
 * with `crlfDelay: Infinity`: at "\n", "\r\n" and a lone "\r", the last line
 * without its newline, an empty last piece dropped; decoded as UTF-8.
 * The file is read in pieces that end at a "\n" (`complete`), and the text
 * after the file's last "\n" (`final`).
 */

/** The lines of a piece of complete lines (its bytes up to, without, its last "\n"). */
export function completeLines(bytes: Buffer, line: (text: string) => void): void {
  splitLines(bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8'), line);
}

/**
 * The lines of a piece of complete lines to `lineBytes` as byte ranges when
 * the piece is valid UTF-8 without "\r" (what the export writes), else as
 * text to `line` (decoded as completeLines does).
 */
export function completeLineRanges(bytes: Buffer, lineBytes: (buf: Buffer, start: number, end: number) => void, line: (text: string) => void): void {
  if (bytes.indexOf(13) >= 0 || !isUtf8(bytes)) {
    completeLines(bytes, line);
    return;
  }
  let start = 0;
  for (;;) {
    const end = bytes.indexOf(10, start);
    lineBytes(bytes, start, end < 0 ? bytes.length : end);
    if (end < 0) return;
    start = end + 1;
  }
}

/** The lines after the file's last "\n". */
export function finalLines(bytes: Buffer, line: (text: string) => void): void {
  const lines = bytes.toString('utf8').split('\r');
  if (lines.at(-1) === '') lines.pop();
  for (const l of lines) line(l);
}

/** Complete lines (the text up to a "\n", without it), each "\r\n" and lone "\r" a line end too. */
function splitLines(text: string, line: (text: string) => void): void {
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n', start);
    const l = end < 0 ? text.slice(start) : text.slice(start, end);
    if (l.indexOf('\r') < 0) line(l);
    else for (const part of (l.endsWith('\r') ? l.slice(0, -1) : l).split('\r')) line(part);
    if (end < 0) return;
    start = end + 1;
  }
}
