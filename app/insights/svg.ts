/**
 * Charts drawn on the server as SVG (issue 20): grouped columns, horizontal
 * bar lists and a heat map. Accessible: each SVG is an image named by its
 * <title> and described by its <desc>; the page puts the same figures in a
 * table under it. No script, no style attribute (the CSP forbids them):
 * colours come from classes in public/css/insights.css, which also has the
 * print styles. Every text is escaped here, since the page inserts the SVG
 * as it is.
 */

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** One value of a chart: null draws nothing; `withheld` draws the hatch ("too few"); `text` is how it reads. */
export interface Mark {
  value: number | null;
  withheld: boolean;
  text: string;
}

interface Frame {
  /** Unique on the page: the SVG's element ids start with it. */
  id: string;
  title: string;
  desc: string;
}

const WIDTH = 720;
const FONT = 12;

function frame(f: Frame, height: number, body: string): string {
  return `<svg class="insights-svg" viewBox="0 0 ${WIDTH} ${round(height)}" role="img" aria-labelledby="${f.id}-title ${f.id}-desc" focusable="false">`
    + `<title id="${f.id}-title">${esc(f.title)}</title><desc id="${f.id}-desc">${esc(f.desc)}</desc>`
    + `<defs><pattern id="${f.id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-ground"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>`
    + body
    + '</svg>';
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function text(x: number, y: number, content: string, cls: string, anchor: 'start' | 'middle' | 'end' = 'start'): string {
  return `<text x="${round(x)}" y="${round(y)}" class="${cls}" text-anchor="${anchor}">${esc(content)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, attrs: string, tip?: string): string {
  const shape = `<rect x="${round(x)}" y="${round(y)}" width="${round(Math.max(0, w))}" height="${round(Math.max(0, h))}" ${attrs}`;
  return tip ? `${shape}><title>${esc(tip)}</title></rect>` : `${shape}/>`;
}

function hatch(id: string): string {
  return `fill="url(#${id}-hatch)" class="withheld"`;
}

/** A short enough label for the chart (the table has the full text). */
function clip(label: string, max: number): string {
  const chars = [...label];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : label;
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least `min`. */
export function niceMax(max: number, min = 1): number {
  const m = Math.max(max, min);
  const power = 10 ** Math.floor(Math.log10(m));
  for (const step of [1, 2, 5, 10]) if (step * power >= m) return step * power;
  return 10 * power;
}

/** The legend along the top: a swatch and a label per entry. */
function legend(f: Frame, entries: { label: string; cls: string | null }[], y: number): string {
  let x = 0;
  let out = '';
  for (const e of entries) {
    out += rect(x, y - 10, 12, 12, e.cls ? `class="${e.cls}"` : hatch(f.id));
    out += text(x + 16, y, e.label, 'legend-label');
    x += 16 + [...e.label].length * FONT * 0.6 + 20;
  }
  return out;
}

export interface ColumnChart extends Frame {
  /** The series drawn side by side in each point (class: their colour). */
  series: { label: string; cls: string }[];
  points: { label: string; marks: Mark[] }[];
  /** An axis tick's text. */
  tick(n: number): string;
  withheldLabel: string;
}

/** Grouped columns over a series of points (calls started and completed per day, week or month). */
export function columnChart(c: ColumnChart): string {
  const height = 280;
  const left = 48;
  const top = 36;
  const bottom = 28;
  const plotW = WIDTH - left - 8;
  const plotH = height - top - bottom;
  const values = c.points.flatMap((p) => p.marks.map((m) => m.value ?? 0));
  const max = niceMax(Math.max(0, ...values), 4);
  const withheld = c.points.some((p) => p.marks.some((m) => m.withheld));
  let body = legend(c, [...c.series.map((s) => ({ label: s.label, cls: s.cls })), ...(withheld ? [{ label: c.withheldLabel, cls: null }] : [])], 14);
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    body += `<line x1="${left}" y1="${round(y)}" x2="${WIDTH - 8}" y2="${round(y)}" class="${i === 0 ? 'axis' : 'grid'}"/>`;
    body += text(left - 6, y + 4, c.tick((max * i) / 4), 'tick-label', 'end');
  }
  const n = Math.max(1, c.points.length);
  const group = plotW / n;
  const bar = Math.min(28, (group * 0.8) / c.series.length);
  const every = Math.ceil(n / 12);
  c.points.forEach((p, i) => {
    const x0 = left + i * group + (group - bar * c.series.length) / 2;
    p.marks.forEach((m, j) => {
      const x = x0 + j * bar;
      const tip = `${p.label}: ${c.series[j]!.label} ${m.text}`;
      // A withheld value: a low hatched block (a full-height one would read as a peak).
      if (m.withheld) body += rect(x, top + plotH - Math.min(plotH, 16), bar - 1, Math.min(plotH, 16), hatch(c.id), tip);
      else if (m.value !== null) {
        const h = (plotH * m.value) / max;
        body += rect(x, top + plotH - h, bar - 1, h, `class="${c.series[j]!.cls}"`, tip);
      }
    });
    if (i % every === 0) {
      // Kept inside the image: a label at the right edge would be cut off.
      const half = ([...p.label].length * FONT * 0.55) / 2;
      body += text(Math.min(left + i * group + group / 2, WIDTH - half), height - bottom + 16, p.label, 'axis-label', 'middle');
    }
  });
  return frame(c, height, body);
}

export interface BarGroup {
  /** A heading over the group's bars, if it has one. */
  label?: string;
  /** The value of a full bar; default a round number at or above the group's largest value. */
  max?: number;
  rows: { label: string; mark: Mark; cls?: string }[];
}

export interface BarList extends Frame {
  groups: BarGroup[];
  withheldLabel: string;
}

/** Horizontal bars, in groups that each have their own scale (counts, seconds, shares). */
export function barList(c: BarList): string {
  const labelW = 270;
  const valueW = 110;
  const barArea = WIDTH - labelW - valueW;
  const rowH = 26;
  const withheld = c.groups.some((g) => g.rows.some((r) => r.mark.withheld));
  let y = 0;
  let body = '';
  if (withheld) {
    body += legend(c, [{ label: c.withheldLabel, cls: null }], 14);
    y = 26;
  }
  for (const g of c.groups) {
    if (g.label) {
      y += rowH;
      body += text(0, y - 8, g.label, 'group-label');
    }
    const max = g.max ?? niceMax(Math.max(0, ...g.rows.map((r) => r.mark.value ?? 0)), 0.1);
    for (const r of g.rows) {
      body += text(labelW - 8, y + rowH / 2 + 4, clip(r.label, 40), 'bar-label', 'end');
      const tip = `${r.label}: ${r.mark.text}`;
      let end = labelW;
      if (r.mark.withheld) {
        body += rect(labelW, y + 5, barArea * 0.25, rowH - 10, hatch(c.id), tip);
        end += barArea * 0.25;
      } else if (r.mark.value !== null && max > 0) {
        const w = (barArea * Math.min(r.mark.value, max)) / max;
        body += rect(labelW, y + 5, w, rowH - 10, `class="${r.cls ?? 'bar'}"`, tip);
        end += w;
      }
      body += text(end + 6, y + rowH / 2 + 4, r.mark.text, 'value-label');
      y += rowH;
    }
    y += 6;
  }
  body += `<line x1="${labelW}" y1="${withheld ? 26 : 0}" x2="${labelW}" y2="${round(y - 6)}" class="axis"/>`;
  return frame(c, Math.max(y, rowH), body);
}

export interface HeatMap extends Frame {
  rows: string[];
  columns: string[];
  /** cells[row][column] */
  cells: Mark[][];
  /** Tips name a cell by its row and column (long labels), e.g. "Monday 09:00". */
  cellName(row: number, column: number): string;
  legend: { fewer: string; more: string };
  withheldLabel: string;
}

/** A grid whose cells are shaded by their value (calls per weekday and hour), in six steps. */
export function heatMap(c: HeatMap): string {
  const left = 44;
  const top = 22;
  const cell = (WIDTH - left) / c.columns.length;
  const cellH = 24;
  const max = Math.max(0, ...c.cells.flat().map((m) => m.value ?? 0));
  let body = '';
  c.columns.forEach((label, j) => {
    if (j % 2 === 0) body += text(left + j * cell + cell / 2, top - 8, label, 'axis-label', 'middle');
  });
  c.cells.forEach((row, i) => {
    const y = top + i * cellH;
    body += text(left - 6, y + cellH / 2 + 4, c.rows[i] ?? '', 'axis-label', 'end');
    row.forEach((m, j) => {
      const x = left + j * cell;
      const tip = `${c.cellName(i, j)}: ${m.text}`;
      if (m.withheld) body += rect(x + 1, y + 1, cell - 2, cellH - 2, hatch(c.id), tip);
      else body += rect(x + 1, y + 1, cell - 2, cellH - 2, `class="heat-${heatLevel(m.value, max)}"`, tip);
    });
  });
  const y = top + c.rows.length * cellH + 22;
  let x = left;
  body += text(x, y, c.legend.fewer, 'legend-label');
  x += [...c.legend.fewer].length * FONT * 0.6 + 8;
  for (let level = 0; level <= 5; level++, x += 16) body += rect(x, y - 11, 14, 14, `class="heat-${level}"`);
  body += text(x + 4, y, c.legend.more, 'legend-label');
  x += 4 + [...c.legend.more].length * FONT * 0.6 + 24;
  if (c.cells.flat().some((m) => m.withheld)) {
    body += rect(x, y - 11, 14, 14, hatch(c.id));
    body += text(x + 20, y, c.withheldLabel, 'legend-label');
  }
  return frame(c, y + 8, body);
}

/** 0 for nothing, else 1..5 by the share of the largest value. */
export function heatLevel(value: number | null, max: number): number {
  if (!value || max <= 0) return 0;
  return Math.min(5, Math.max(1, Math.ceil((5 * value) / max)));
}
