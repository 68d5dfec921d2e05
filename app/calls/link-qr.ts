import QRCode from 'qrcode';

/**
 * A customer link as a QR code, drawn by the appliance (no third-party
 * service sees the link): SVG markup made from the URL alone (only `<svg>`
 * and `<path>` elements with presentation attributes, no `style`), to be put
 * into the page as it is.
 */
export async function qrSvg(url: string): Promise<string> {
  return QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}
