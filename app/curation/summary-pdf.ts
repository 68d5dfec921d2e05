import PDFDocument from 'pdfkit';
import type { Translate } from '../i18n';
import type { CustomerCard } from './summary';

/**
 * The customer's summary as a PDF, drawn with pdfkit's built-in standard
 * fonts only (nothing is loaded from disk or network). Those fonts use
 * WinAnsi encoding: German umlauts, ß and € are in it; any other character
 * is written as "?" rather than as a wrong glyph.
 */

export interface SummaryPdfInput {
  t: Translate;
  organisationName: string;
  date: string;
  availableUntil: string;
  cards: CustomerCard[];
  /** Image bytes by image id (PNG or JPEG); cards without one are drawn without a picture. */
  images: Map<string, Buffer>;
  /** pdfkit compresses its streams by default; tests may turn that off. */
  compress?: boolean;
}

/** The characters WinAnsi (Windows-1252) has at 0x80-0x9F. */
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');

/** Text the standard fonts can show: NFC (so "u" + combining diaeresis becomes "ü"), unknown characters as "?". */
export function winAnsi(text: string): string {
  let out = '';
  for (const ch of text.normalize('NFC')) {
    const code = ch.codePointAt(0)!;
    if (ch === '\n') out += ch;
    else if (ch === '\t' || /[\u2000-\u200a\u202f\u205f\u3000]/.test(ch)) out += ' ';
    else if ((code >= 0x20 && code < 0x7f) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(ch)) out += ch;
    else if (code >= 0x20) out += '?';
  }
  return out;
}

/**
 * Whether pdfkit can embed the image by copying its data. JPEG always; PNG
 * only without alpha channel, transparency or interlacing, because pdfkit
 * decodes those asynchronously and throws from a callback on a corrupt file
 * (which would take the process down). Others are left out of the PDF.
 */
export function embeddableImage(data: Buffer): boolean {
  if (data.length > 4 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return true;
  if (data.length < 33 || data.toString('latin1', 1, 4) !== 'PNG' || data.toString('latin1', 12, 16) !== 'IHDR') return false;
  const colourType = data[25];
  const interlace = data[28];
  if (colourType === 4 || colourType === 6 || interlace !== 0) return false;
  for (let pos = 8; pos + 8 <= data.length;) {
    const length = data.readUInt32BE(pos);
    const type = data.toString('latin1', pos + 4, pos + 8);
    if (type === 'tRNS') return false;
    if (type === 'IDAT' || type === 'IEND') return true;
    pos += 12 + length;
  }
  return false;
}

const IMAGE_SIZE = 80;
const GAP = 14;

export function summaryPdf(input: SummaryPdfInput): Promise<Buffer> {
  const { t } = input;
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    compress: input.compress ?? true,
    info: { Title: winAnsi(t('curation.pdf_title', { organisation: input.organisationName })), Producer: 'VClerk', Creator: 'VClerk' },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const left = doc.page.margins.left;
  const width = doc.page.width - doc.page.margins.left - doc.page.margins.right;
  doc.font('Helvetica-Bold').fontSize(18).text(winAnsi(t('curation.customer_heading', { organisation: input.organisationName })), { width });
  doc.moveDown(0.3);
  doc.font('Helvetica').fontSize(11).fillColor('#444444').text(winAnsi(t('curation.call_date', { date: input.date })), { width });
  doc.fillColor('#000000').moveDown(1);

  if (input.cards.length === 0) doc.font('Helvetica').fontSize(11).text(winAnsi(t('curation.no_cards_customer')), { width });

  for (const card of input.cards) {
    const bottom = doc.page.height - doc.page.margins.bottom;
    if (doc.y + IMAGE_SIZE > bottom) doc.addPage();
    const top = doc.y;
    const page = doc.page;
    const data = card.imageId ? input.images.get(card.imageId) : undefined;
    let textLeft = left;
    if (data) {
      try {
        doc.image(data, left, top, { fit: [IMAGE_SIZE, IMAGE_SIZE] });
        textLeft = left + IMAGE_SIZE + GAP;
      } catch {
        // A picture pdfkit cannot read is left out; the card's text still follows.
      }
    }
    const textWidth = width - (textLeft - left);
    doc.font('Helvetica-Bold').fontSize(13).text(winAnsi(card.name), textLeft, top, { width: textWidth });
    const facts = [card.price, ...(card.favourite ? [t('curation.favourite')] : [])].join('  ·  ');
    doc.font('Helvetica').fontSize(11).text(winAnsi(facts), textLeft, doc.y, { width: textWidth });
    if (card.note) doc.moveDown(0.3).font('Helvetica-Oblique').fontSize(11).text(winAnsi(card.note), textLeft, doc.y, { width: textWidth });
    if (card.url) {
      doc.moveDown(0.3).font('Helvetica').fontSize(10).fillColor('#1a5fb4')
        .text(winAnsi(card.url), textLeft, doc.y, { width: textWidth, link: card.url, underline: true });
      doc.fillColor('#000000');
    }
    // Below the picture, unless the text already ran on to a new page.
    if (textLeft !== left && doc.page === page) doc.y = Math.max(doc.y, top + IMAGE_SIZE);
    doc.x = left;
    doc.moveDown(1.2);
  }

  doc.moveDown(1).font('Helvetica').fontSize(9).fillColor('#666666').text(winAnsi(t('curation.available_until', { date: input.availableUntil })), left, doc.y, { width });
  doc.end();
  return done;
}
