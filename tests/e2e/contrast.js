// WCAG 1.4.11 for what axe leaves out: the edges of form controls and of table rules must
// reach 3:1 against the colour behind them. Returns one line per element that does not.
() => {
  function parse(text) {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function over(top, under) {
    const a = top.a;
    return { r: top.r * a + under.r * (1 - a), g: top.g * a + under.g * (1 - a),
             b: top.b * a + under.b * (1 - a), a: 1 };
  }
  function canvas() {
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    return dark ? { r: 18, g: 18, b: 18, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
  }
  // the opaque colour behind `el` (its own background excluded)
  function behind(el) {
    const layers = [];
    for (let node = el.parentElement; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let colour = canvas();
    for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
    return colour;
  }
  function luminance(c) {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function ratio(a, b) {
    const la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function visible(el) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  }
  function name(el) {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    else if (el.name) text += "[name=" + el.name + "]";
    if (el.className && typeof el.className === "string") text += "." + el.className.trim().split(/\s+/).join(".");
    const label = (el.getAttribute("aria-label") || el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 30);
    return label ? text + " “" + label + "”" : text;
  }
  const problems = [];
  function edge(el, side) {
    const style = getComputedStyle(el);
    if (parseFloat(style["border" + side + "Width"]) <= 0 || style["border" + side + "Style"] === "none") return null;
    return parse(style["border" + side + "Color"]);
  }
  const controls = "input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea, button, .button";
  for (const el of document.querySelectorAll(controls)) {
    if (!visible(el)) continue;
    const back = behind(el);
    const fill = parse(getComputedStyle(el).backgroundColor);
    const border = edge(el, "Bottom");
    const fillRatio = fill && fill.a > 0 ? ratio(over(fill, back), back) : 1;
    const borderRatio = border && border.a > 0 ? ratio(over(border, back), back) : 1;
    if (!border && (!fill || fill.a === 0)) continue;  // a text-only button: axe checks its text
    const best = Math.max(fillRatio, borderRatio);
    if (best < 3) problems.push(name(el) + ": edge " + best.toFixed(2) + ":1");
  }
  for (const el of document.querySelectorAll("th, td")) {
    if (!visible(el)) continue;
    const border = edge(el, "Bottom");
    if (!border || border.a === 0) continue;
    const fill = parse(getComputedStyle(el).backgroundColor);
    let back = behind(el);
    if (fill && fill.a > 0) back = over(fill, back);
    const r = ratio(over(border, back), back);
    if (r < 3) problems.push(name(el).slice(0, 60) + ": rule " + r.toFixed(2) + ":1");
  }
  return problems.slice(0, 20);
}
