// Hand-made SVG charts, no library: bars (one value per label) and lines (series over labels).
// Each chart is an <svg role="img"> with a title and a description that says its numbers, and
// the figures stay in the page as text too, so nothing depends on seeing the picture.

const SVG = "http://www.w3.org/2000/svg";
let chartCount = 0;

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function frame(title, description, width, height) {
  const id = `chart-${++chartCount}`;
  return svg(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      class: "chart",
      preserveAspectRatio: "xMidYMid meet",
    },
    svg("title", { id: `${id}-title` }, title),
    svg("desc", { id: `${id}-desc` }, description),
  );
}

/**
 * Horizontal bars: items [{label, value}], value ≥ 0; format(value) → text shown at the bar's end.
 */
export function barChart(items, { title, format = String, width = 520 } = {}) {
  const row = 28;
  const labelWidth = 150;
  const height = Math.max(row * items.length + 8, 40);
  const top = Math.max(...items.map((item) => item.value), 0) || 1;
  const description = items.map((item) => `${item.label}: ${format(item.value)}`).join("; ");
  const chart = frame(title, description || "No figures yet.", width, height);
  items.forEach((item, index) => {
    const y = 4 + index * row;
    const length = Math.max(((width - labelWidth - 90) * item.value) / top, item.value > 0 ? 2 : 0);
    chart.append(
      svg("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "chart-label" }, item.label),
      svg("rect", { x: labelWidth, y: y + 4, width: length, height: row - 10, rx: 3, class: "chart-bar" }),
      svg("text", { x: labelWidth + length + 6, y: y + 17, class: "chart-value" }, format(item.value)),
    );
  });
  return chart;
}

/**
 * Lines over shared labels (e.g. months): series [{name, values: [number|null]}], labels [text].
 * A null is a gap. Each series gets its own class (chart-line-0, -1, ...) and a legend entry.
 * format(value): a value in words (the description); tick(value): an axis label (short).
 */
export function lineChart(series, labels, { title, format = String, tick = format, width = 560, height = 220 } = {}) {
  const left = 72;
  const right = 28;
  const top = 12;
  const bottom = 40;
  const values = series.flatMap((line) => line.values).filter((value) => value !== null && value !== undefined);
  const low = Math.min(0, ...values);
  const high = Math.max(...values, 0) || 1;
  const x = (index) => left + ((width - left - right) * index) / Math.max(labels.length - 1, 1);
  const y = (value) => top + ((height - top - bottom) * (high - value)) / (high - low || 1);
  const description = series
    .map((line) => `${line.name}: ${line.values.map((v, i) => `${labels[i]} ${v === null ? "no data" : format(v)}`).join(", ")}`)
    .join(". ");
  const chart = frame(title, description || "No figures yet.", width, height);
  for (const value of [low, (low + high) / 2, high]) {
    chart.append(
      svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "chart-grid" }),
      svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "chart-label" }, tick(value)),
    );
  }
  // At most six labels along the axis, evenly spaced, the last one at the end (in place of the
  // evenly spaced one nearest it, which would overlap it).
  const every = Math.ceil(labels.length / 6);
  const last = labels.length - 1;
  const shown = labels.map((_, index) => index).filter((index) => index % every === 0 && last - index >= every);
  shown.push(last);
  for (const index of shown) {
    const anchor = index === last && index > 0 ? "end" : "middle";
    chart.append(svg("text", { x: x(index), y: height - 22, "text-anchor": anchor, class: "chart-label" }, labels[index]));
  }
  series.forEach((line, number) => {
    let path = "";
    let pen = false;
    line.values.forEach((value, index) => {
      if (value === null || value === undefined) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x(index).toFixed(1)},${y(value).toFixed(1)} `;
      pen = true;
    });
    chart.append(svg("path", { d: path.trim(), class: `chart-line chart-line-${number}`, fill: "none" }));
    // A dot on each value, so a lone value between gaps (which draws no line) is seen too.
    line.values.forEach((value, index) => {
      if (value === null || value === undefined) return;
      chart.append(svg("circle", { cx: x(index).toFixed(1), cy: y(value).toFixed(1), r: 3, class: `chart-line-${number}` }));
    });
    const legendX = left + number * 150;
    chart.append(
      svg("rect", { x: legendX, y: height - 12, width: 12, height: 4, class: `chart-key chart-line-${number}` }),
      svg("text", { x: legendX + 16, y: height - 6, class: "chart-label" }, line.name),
    );
  });
  return chart;
}
