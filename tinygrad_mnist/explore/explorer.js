"use strict";
// The backprop explorer page: reads the embedded JSON, draws heatmaps on canvas and bar
// charts in SVG, and steps through the backward pass. No network, no libraries.
(function () {
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const U = DATA.units;
  const LAYERS = DATA.layers;
  const K = LAYERS.length;
  const S = K + 1;                      // backward steps: the loss, then layers K … 1
  const state = { ex: 0, step: 0 };
  const $ = (id) => document.getElementById(id);
  const tooltip = $("tooltip");

  // ---- arrays and numbers -------------------------------------------------------------
  const decoded = new Map();
  function arr(o) {
    if (!decoded.has(o)) {
      const values = o.dtype === "f8" ? new Float64Array(bytesOf(o.b64)) : new Float32Array(bytesOf(o.b64));
      if (o.nz === undefined) decoded.set(o, values);
      else {  // sparse: the nonzero values and their flat indices
        const full = new Float64Array(prod(o.shape)), idx = new Uint32Array(bytesOf(o.nz));
        for (let i = 0; i < idx.length; i++) full[idx[i]] = values[i];
        decoded.set(o, full);
      }
    }
    return decoded.get(o);
  }
  function bytesOf(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }
  function expo(v, d) {
    if (v === 0) return "0";
    if (!isFinite(v)) return String(v);
    return v.toExponential(d === undefined ? 2 : d).replace("e+", "e");
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(4)));
    return expo(v, 3);
  }
  function short(v) {
    const a = Math.abs(v);
    return a === 0 ? "0" : a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(3))) : expo(v, 1);
  }
  function ms(v) { return v < 0.1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1); }
  const shapeStr = (s) => (s.length ? s.join("×") : "scalar");
  const count = (n) => n.toLocaleString("en-US");
  const prod = (s) => s.reduce((a, b) => a * b, 1);
  function sub(k) { return `<sub>${k}</sub>`; }
  function el(tag, cls, html) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (html !== undefined) e.innerHTML = html;
    return e;
  }
  function maxAbs(a) { let m = 0; for (let i = 0; i < a.length; i++) { const v = Math.abs(a[i]); if (v > m) m = v; } return m; }
  function minOf(a) { let m = Infinity; for (let i = 0; i < a.length; i++) if (a[i] < m) m = a[i]; return m; }
  function unravel(i, shape, names) {
    if (!shape.length) return "";
    const idx = [];
    for (let d = shape.length - 1; d >= 0; d--) { idx.unshift(i % shape[d]); i = Math.floor(i / shape[d]); }
    const nm = names || defaultNames(shape.length);
    return idx.map((v, d) => `${nm[d]}=${v}`).join(", ");
  }
  function defaultNames(n) { return { 1: ["i"], 2: ["y", "x"], 3: ["c", "y", "x"], 4: ["o", "c", "y", "x"] }[n] || [...Array(n).keys()].map((d) => "d" + d); }

  // ---- colours ------------------------------------------------------------------------
  const NEG = [33, 102, 172], POS = [178, 24, 43], INK = [16, 28, 56];
  function mix(c, t) { return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t]; }
  function colour(v, vmax, signed) {
    if (!(vmax > 0)) return [255, 255, 255];
    const t = Math.max(-1, Math.min(1, v / vmax));
    if (signed) return mix(t < 0 ? NEG : POS, Math.abs(t));
    return mix(INK, Math.max(0, t));
  }
  function colourbar(vmax, signed, unit) {
    const d = el("div", "cbar");
    const g = signed ? "linear-gradient(90deg, rgb(33,102,172), #fff, rgb(178,24,43))"
                     : "linear-gradient(90deg, #fff, rgb(16,28,56))";
    d.innerHTML = `<span>${signed ? short(-vmax) : "0"}</span><span class="bar" style="background:${g}"></span>` +
                  `<span>${short(vmax)}</span><span>${unit}</span>`;
    return d;
  }

  // ---- tooltip ------------------------------------------------------------------------
  function showTip(ev, text) {
    tooltip.textContent = text;
    tooltip.style.display = "block";
    const x = Math.min(ev.clientX + 14, window.innerWidth - tooltip.offsetWidth - 6);
    tooltip.style.left = x + "px";
    tooltip.style.top = (ev.clientY + 14) + "px";
  }
  function hideTip() { tooltip.style.display = "none"; }

  // ---- heatmaps -----------------------------------------------------------------------
  // A tensor is drawn as a grid of 2-D tiles: (n) wraps into a square, (H, W) is one tile,
  // (C, H, W) is C tiles, (O, C, h, w) is O rows of C tiles. One canvas cell per value.
  function grid(view, maxW, maxH, maxScale, matrix) {
    let tileH, tileW, nTiles, tpr, gap = 1;
    if (view.length === 0) { tileH = tileW = nTiles = tpr = 1; }
    else if (view.length === 1) { tileW = Math.ceil(Math.sqrt(view[0])); tileH = Math.ceil(view[0] / tileW); nTiles = tpr = 1; }
    else if (view.length === 2) { [tileH, tileW] = view; nTiles = tpr = 1; }
    else if (view.length === 3) { [nTiles, tileH, tileW] = view; tpr = null; }
    else { tileH = view[view.length - 2]; tileW = view[view.length - 1]; nTiles = prod(view.slice(0, -2)); tpr = view[view.length - 3]; }
    const dims = (t) => {
      const rows = Math.ceil(nTiles / t);
      return [t * tileW + (t - 1) * gap, rows * tileH + (rows - 1) * gap];
    };
    if (tpr === null) {
      let best = -1;
      for (let t = 1; t <= nTiles; t++) {
        const [w, h] = dims(t);
        const s = Math.min(maxW / w, maxH / h);
        if (s > best + 1e-9) { best = s; tpr = t; }
      }
    }
    const [W, H] = dims(tpr);
    let sx, sy;
    if (matrix) {
      sx = Math.min(maxW / W, maxScale); sy = Math.min(maxH / H, maxScale);
      if (sx >= 1) sx = Math.floor(sx);
      if (sy >= 1) sy = Math.floor(sy);
    } else {
      let s = Math.min(maxW / W, maxH / H, maxScale);
      if (s >= 1) s = Math.floor(s);
      sx = sy = s;
    }
    return { tileH, tileW, nTiles, tpr, gap, W, H, sx, sy };
  }
  function heatmap(view, values, opts) {
    const o = Object.assign({ maxW: 300, maxH: 240, maxScale: view.length <= 1 ? 18 : 8, matrix: false, unit: "", signed: null }, opts);
    const g = grid(view, o.maxW, o.maxH, o.maxScale, o.matrix);
    const n = values.length;
    const signed = o.signed === null ? minOf(values) < 0 : o.signed;
    const vmax = o.vmax !== undefined ? o.vmax : maxAbs(values);
    const canvas = document.createElement("canvas");
    canvas.className = "hm";
    canvas.width = g.W; canvas.height = g.H;
    canvas.style.width = Math.max(1, Math.round(g.W * g.sx)) + "px";
    canvas.style.height = Math.max(1, Math.round(g.H * g.sy)) + "px";
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(g.W, g.H);
    const px = img.data;
    for (let i = 0; i < px.length; i += 4) { px[i] = 233; px[i + 1] = 236; px[i + 2] = 241; px[i + 3] = 255; }
    const per = g.tileH * g.tileW;
    for (let i = 0; i < n; i++) {
      const t = Math.floor(i / per), r = i % per;
      const x = (t % g.tpr) * (g.tileW + g.gap) + (r % g.tileW);
      const y = Math.floor(t / g.tpr) * (g.tileH + g.gap) + Math.floor(r / g.tileW);
      const c = colour(values[i], vmax, signed);
      const p = 4 * (y * g.W + x);
      px[p] = c[0]; px[p + 1] = c[1]; px[p + 2] = c[2];
    }
    ctx.putImageData(img, 0, 0);
    canvas.addEventListener("mousemove", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const cx = Math.floor((ev.clientX - rect.left) / rect.width * g.W);
      const cy = Math.floor((ev.clientY - rect.top) / rect.height * g.H);
      const tx = Math.floor(cx / (g.tileW + g.gap)), ty = Math.floor(cy / (g.tileH + g.gap));
      const xin = cx - tx * (g.tileW + g.gap), yin = cy - ty * (g.tileH + g.gap);
      const t = ty * g.tpr + tx;
      if (xin >= g.tileW || yin >= g.tileH || tx >= g.tpr || t >= g.nTiles) return hideTip();
      const i = t * per + yin * g.tileW + xin;
      if (i >= n) return hideTip();
      const where = o.label ? o.label(i) : unravel(i, view, o.names);
      showTip(ev, `${o.name || "value"}[${where}] = ${fmt(values[i])} ${o.unit}`);
    });
    canvas.addEventListener("mouseleave", hideTip);
    const fig = el("div", "fig");
    if (o.title) fig.appendChild(el("div", "t", o.title));
    fig.appendChild(canvas);
    fig.appendChild(colourbar(vmax, signed, o.unit));
    if (view.length === 1) {
      fig.appendChild(el("div", "s", `${count(view[0])} values in rows of ${g.tileW}: index = row·${g.tileW} + column`));
    }
    if (o.sub) fig.appendChild(el("div", "s", o.sub));
    return fig;
  }

  // ---- bar charts: one bar per entry of a vector (red > 0, blue < 0) ------------------
  const MAX_BARS = 256;
  function bars(values, opts) {
    const o = Object.assign({ width: 240, height: 120, unit: "", mark: -1, labels: null, signed: null }, opts);
    const n = values.length, pad = 18;
    const width = Math.max(o.width, Math.min(2 * n + 8, 520));
    const bw = (width - 8) / n, gap = bw >= 6 ? 2 : bw >= 3 ? 0.5 : 0;
    const m = (o.vmax !== undefined ? o.vmax : maxAbs(values)) || 1;
    const signed = o.signed === null ? minOf(values) < 0 : o.signed;
    const base = signed ? (o.height - pad) / 2 : o.height - pad;
    const scale = signed ? (o.height - pad) / 2 - 4 : o.height - pad - 6;
    const raw = n * 22 / (width - 8);                              // labels at least ~22 px apart, at round indices
    const every = [1, 2, 5, 10, 20, 50, 100].find((e) => e >= raw) || 200;
    let svg = `<svg width="${width}" height="${o.height}" role="img" data-n="${n}">`;
    svg += `<line x1="2" x2="${width - 2}" y1="${base}" y2="${base}" stroke="#b8bfcc"/>`;
    for (let i = 0; i < n; i++) {
      const h = Math.max(-1, Math.min(1, values[i] / m)) * scale;
      const y = h >= 0 ? base - h : base;
      const fill = i === o.mark ? "#2457c5" : values[i] < 0 ? "rgb(33,102,172)" : signed ? "rgb(178,24,43)" : "#7d8799";
      const name = o.labels ? o.labels[i] : i;
      svg += `<rect class="bar" x="${4 + i * bw + gap}" y="${y}" width="${Math.max(0.8, bw - 2 * gap)}" height="${Math.max(0.5, Math.abs(h))}" fill="${fill}">` +
             `<title>${o.name ? o.name + "[" + name + "]" : name} = ${fmt(values[i])} ${o.unit}</title></rect>`;
      if (i % every === 0) svg += `<text x="${4 + i * bw + bw / 2}" y="${o.height - 4}" text-anchor="middle">${name}</text>`;
    }
    svg += "</svg>";
    const fig = el("div", "fig bars");
    fig.style.width = width + "px";
    if (o.title) fig.appendChild(el("div", "t", o.title));
    fig.appendChild(el("div", "", svg));
    fig.appendChild(el("div", "cbar", o.caption || `${n} values, bar height ±${short(m)} ${o.unit} at full scale`));
    if (o.sub) fig.appendChild(el("div", "s", o.sub));
    return fig;
  }

  // A tensor as a figure: bars for vectors, a heatmap for images and long vectors.
  function tensorFig(view, values, opts) {
    if (view.length <= 1 && values.length <= MAX_BARS && !opts.matrix) return bars(values, opts);
    return heatmap(view, values, opts);
  }

  // ---- the model ----------------------------------------------------------------------
  const ex = () => DATA.examples[state.ex];
  const step = () => ex().steps[state.step];
  const layerOfStep = (s) => (s === 0 ? 0 : K + 1 - s);
  const stepOfLayer = (k) => (k === 0 ? 0 : K + 1 - k);
  const viewOf = (k) => (k === 0 ? DATA.model.input_view : LAYERS[k - 1].out_view);
  function hName(k) { return k === 0 ? "x" : `h${sub(k)}`; }
  function unitOfH(k) { return k === 0 ? U.pixel : U.activation; }
  function hValues(k) { return k === 0 ? arr(ex().input) : arr(ex().activations[k - 1]); }
  function layerTitle(L) {
    return `${L.type}` + (L.num_parameters ? ` <span class="muted small">${count(L.num_parameters)} params</span>` : "");
  }

  function buildLayerList() {
    const list = $("layer-list");
    list.innerHTML = "";
    const io = el("li", "io", `<span class="num">x</span><span class="type">input</span>` +
      `<span class="info">${shapeStr(DATA.model.input_view)} · pixel ${U.pixel}</span>`);
    list.appendChild(io);
    for (const L of LAYERS) {
      const li = el("li", "layer", `<span class="num">${L.index}</span><span class="type">${L.type}</span>` +
        `<span class="info">→ ${shapeStr(L.out_view)} · ${count(L.num_parameters)} params</span>`);
      li.dataset.layer = L.index; li.dataset.type = L.type; li.title = L.repr; li.tabIndex = 0;
      li.addEventListener("click", () => go(stepOfLayer(L.index)));
      list.appendChild(li);
    }
    const loss = el("li", "layer", `<span class="num">L</span><span class="type">loss</span>` +
      `<span class="info">${DATA.model.loss}</span>`);
    loss.dataset.layer = 0; loss.dataset.type = "loss"; loss.tabIndex = 0;
    loss.addEventListener("click", () => go(0));
    list.appendChild(loss);
    $("legend-note").innerHTML =
      `Colours: <span style="color:var(--pos)">red &gt; 0</span>, <span style="color:var(--neg)">blue &lt; 0</span>, ` +
      `white = 0 (activations ≥ 0 in dark ink), each panel scaled to its largest |value|. Hover a cell for its value.<br>` +
      `${count(DATA.model.num_parameters)} parameters, ${DATA.model.dtype}, ${DATA.model.mode} mode; weights: ${DATA.model.source}.<br>` +
      `Dataset: ${DATA.dataset.name} (${count(DATA.dataset.size)} test images).`;
  }

  function buildExamples() {
    const box = $("examples");
    box.innerHTML = "";
    box.appendChild(el("span", "label", "Examples"));
    DATA.examples.forEach((E, i) => {
      const b = el("button", "example-btn");
      b.type = "button"; b.dataset.example = i;
      b.title = `test image #${E.index}: label ${E.label}, predicted ${E.prediction} (key ${i + 1})`;
      const c = document.createElement("canvas");
      const [h, w] = DATA.dataset.image_shape;
      c.width = w; c.height = h;
      const ctx = c.getContext("2d"), img = ctx.createImageData(w, h), v = arr(E.input);
      for (let p = 0; p < w * h; p++) {
        const g = 255 - Math.round(255 * v[p]);
        img.data.set([g, g, g, 255], 4 * p);
      }
      ctx.putImageData(img, 0, 0);
      b.appendChild(c);
      b.appendChild(el("span", E.prediction === E.label ? "" : "wrong", `#${E.index}: ${E.label}→${E.prediction}`));
      b.addEventListener("click", () => { state.ex = i; render(); });
      box.appendChild(b);
    });
  }

  function renderSummary() {
    const E = ex();
    const p = E.probabilities;
    const box = $("summary");
    box.innerHTML = "";
    const ok = E.prediction === E.label;
    box.appendChild(el("div", "big",
      `label <b>${E.label}</b> · predicted <b style="color:${ok ? "var(--good)" : "var(--pos)"}">${E.prediction}</b> ` +
      `(${(100 * p[E.prediction]).toFixed(1)} ${U.probability})` +
      (DATA.model.trained ? "" : ` <span class="untrained-tag" title="fresh random weights: the prediction is chance">untrained: chance</span>`) +
      `<br><span class="small muted">loss L = ` +
      `<span id="loss-value" data-value="${E.loss}">${fmt(E.loss)}</span> ${U.loss} (torch ${fmt(E.loss_torch)} ${U.loss})</span>`));
    box.appendChild(bars(p.map((v) => 100 * v), { width: 170, height: 60, unit: U.probability, mark: E.prediction,
                                                  caption: "probability of each class (%)" }));
  }

  // ---- one step -----------------------------------------------------------------------
  function renderStep() {
    const E = ex(), st = step(), k = st.layer;
    const L = k ? LAYERS[k - 1] : null;
    const kin = st.in;
    document.querySelectorAll("#layer-list li.layer").forEach((li) => {
      const lk = Number(li.dataset.layer);
      li.classList.toggle("current", lk === k);
      li.classList.toggle("done", stepOfLayer(lk) < state.step);
    });
    document.querySelectorAll("#layer-table tbody tr").forEach((tr) => tr.classList.toggle("current", Number(tr.dataset.layer) === k));
    const title = $("step-title");
    title.dataset.step = state.step + 1; title.dataset.layer = k; title.dataset.type = L ? L.type : "loss";
    const formula = k
      ? `∂L/∂${hName(kin)} = J${sub(k)}ᵀ g, &nbsp; J${sub(k)} = ∂${hName(k)}/∂${hName(kin)}, &nbsp; g = ∂L/∂${hName(k)}`
      : `the start of back-propagation: ∂L/∂${hName(K)} = J${sub("L")}ᵀ · 1`;
    title.innerHTML = `Step ${state.step + 1} of ${S}: ` + (k ? `layer ${k}, <code>${escapeHtml(L.repr)}</code>` : `the loss, ${DATA.model.loss}`) +
      `<br><span class="formula">${formula}</span>`;
    const below = kin === 0 ? "the input x (where it stops)" : `layer ${kin} (${LAYERS[kin - 1].type})`;
    const what = k
      ? `<b>g</b> = ∂L/∂${hName(k)} arrives from the layer above (${k === K ? "the loss" : `layer ${k + 1}, ${LAYERS[k].type}`}); ` +
        `<b>J</b> = ∂${hName(k)}/∂${hName(kin)} is this layer's local derivative; ` +
        `<b>Jᵀg</b> = ∂L/∂${hName(kin)} is what it passes down to ${below}.`
      : `Back-propagation starts here: <b>g</b> = ∂L/∂L = 1; <b>J</b> = ∂L/∂${hName(K)} is the loss's local derivative; ` +
        `<b>Jᵀg</b> = ∂L/∂${hName(K)} is what it passes down to ${below}.`;
    const explain = $("step-explain");
    explain.dataset.type = L ? L.type : "loss";
    explain.innerHTML = `<span class="what">${what}</span> <span class="kind">${escapeHtml(k ? L.explain : DATA.model.loss_explain)}</span>`;
    $("prev").disabled = state.step === 0;
    $("next").disabled = state.step === S - 1;
    const want = `#step=${state.step + 1}&example=${state.ex + 1}`;
    if (location.hash !== want) history.replaceState(null, "", want);

    // forward
    const fw = $("forward-row");
    fw.innerHTML = "";
    const inView = viewOf(kin);
    const fcol = Math.floor((Math.max(600, fw.clientWidth || 900) - 100) / 2);
    fw.appendChild(tensorFig(inView, hValues(kin), {
      width: Math.min(fcol, 360), title: `${k ? "input" : "network output"} ${hName(kin)} <span class="f">${shapeStr(inView)}</span>`,
      unit: unitOfH(kin), name: k ? hName(kin).replace(/<\/?sub>/g, "") : "h", maxW: fcol, maxH: 230,
      sub: kin === 0 ? "the test image, pixels scaled to [0, 1]" : `output of layer ${kin} (${LAYERS[kin - 1].type})`,
    }));
    fw.appendChild(el("div", "op", `→<div class="small">${k ? L.type : "loss"}</div>`));
    if (k) {
      const fd = E.forward_diffs[k - 1];
      fw.appendChild(tensorFig(L.out_view, hValues(k), {
        title: `output ${hName(k)} <span class="f">${shapeStr(L.out_view)}</span>`, unit: U.activation,
        name: "h" + k, maxW: fcol, maxH: 230, width: Math.min(fcol, 360),
        sub: `vs torch's forward: max|Δ| = ${expo(fd.max_abs)} ${U.activation}, relative ${expo(fd.max_rel)}`,
      }));
    } else {
      fw.appendChild(el("div", "fig", `<div class="t">loss</div><div class="stat"><div class="k">L(${hName(K)}, y = ${E.label})</div>` +
        `<div class="v">${fmt(E.loss)} <span class="u">${U.loss}</span></div></div>` +
        `<div class="s">torch: ${fmt(E.loss_torch)} ${U.loss}; |Δ| = ${expo(Math.abs(E.loss - E.loss_torch))} ${U.loss}</div>`));
    }

    // backward, laid out as the formula reads: Jᵀ [J] · g = Jᵀg, then the check against torch
    const bw = $("backward-row");
    bw.innerHTML = "";
    const width = Math.max(600, bw.clientWidth || 900);
    const col = Math.max(200, Math.min(300, Math.floor((width - 160) / 4)));
    const eq = el("div", "eq"), check = el("div", "trio");
    eq.id = "formula-row"; check.id = "check-row";
    const outView = k ? L.out_view : [];
    const gVals = k ? arr(E.grads[k]) : new Float64Array([1]);
    const jtg = arr(E.grads[kin]), tg = arr(E.torch_grads[kin]);
    const gmax = Math.max(maxAbs(jtg), maxAbs(tg));
    const gFig = k
      ? tensorFig(outView, gVals, {
        title: `g = ∂L/∂${hName(k)} <span class="f">${shapeStr(outView)}</span>`, unit: U.gradient, name: "g",
        maxW: col, maxH: 250, width: col, signed: true, sub: k === K ? "from the loss (step 1)" : `handed down by layer ${k + 1}`,
      })
      : el("div", "fig", `<div class="t">g = ∂L/∂L</div><div class="stat"><div class="v">1 <span class="u">unitless</span></div></div>` +
        `<div class="s">back-propagation starts from the loss itself</div>`);
    if (!k) gFig.style.width = "150px";
    gFig.id = "g-fig";
    const jtgFig = tensorFig(inView, jtg, {
      title: `Jᵀg = ∂L/∂${hName(kin)} <span class="f">${shapeStr(inView)}</span>`, unit: U.gradient, name: "Jᵀg",
      maxW: col, width: col, maxH: 250, signed: true, vmax: gmax,
      sub: k ? `<code>layer${k}.backward(g)</code>, handed down to ${kin ? "layer " + kin : "the input"}` : "<code>loss.backward()</code>",
    });
    jtgFig.id = "jtg-fig";
    const jFig = jacobianFig(st, k, kin, outView, inView, Math.max(300, width - 2 * col - 150));
    eq.appendChild(el("div", "op", "J<sup>T</sup>"));
    eq.appendChild(jFig);
    eq.appendChild(el("div", "op", "·"));
    eq.appendChild(gFig);
    eq.appendChild(el("div", "op", "="));
    eq.appendChild(jtgFig);
    check.appendChild(el("div", "op check-label", `check:<div class="small">the same ∂L/∂${hName(kin)}<br>from PyTorch</div>`));
    check.appendChild(tensorFig(inView, tg, {
      title: `∂L/∂${hName(kin)} <span class="f">torch autograd</span>`, unit: U.gradient, name: "torch",
      maxW: col, width: col, maxH: 230, signed: true, vmax: gmax,
      sub: `<code>.grad</code> of the same tensor in the torch twin (same weights, float64)`,
    }));
    const delta = new Float64Array(jtg.length);
    for (let i = 0; i < jtg.length; i++) delta[i] = jtg[i] - tg[i];
    check.appendChild(el("div", "op", "Δ"));
    check.appendChild(tensorFig(inView, delta, {
      title: `difference numpy − torch`, unit: U.gradient, name: "Δ", maxW: col, width: col, maxH: 230, signed: true,
      sub: "rounding only; scaled to its own largest |Δ|",
    }));
    // captions wrap under a picture, not beside it
    for (const f of [gFig, jtgFig, ...check.querySelectorAll(".fig")]) {
      const c = f.querySelector("canvas.hm");
      if (c) f.style.maxWidth = Math.max(col, parseFloat(c.style.width)) + "px";
    }
    bw.appendChild(eq);
    bw.appendChild(check);

    // numbers
    const stats = $("stats");
    stats.innerHTML = "";
    const tol = 1e-12;
    stats.appendChild(stat("diff-abs", `max |Jᵀg − torch| (∂L/∂${hName(kin)})`, st.diff.max_abs, U.gradient, st.diff.max_rel < tol));
    stats.appendChild(stat("diff-rel", "relative: max|Δ| / max|torch|", st.diff.max_rel, "unitless", st.diff.max_rel < tol));
    if (st.explicit_diff) {
      stats.appendChild(stat("explicit-rel", "explicit J.T @ g vs backward(g), relative", st.explicit_diff.max_rel, "unitless",
        st.explicit_diff.max_rel < tol));
    } else {
      const s = el("div", "stat", `<div class="k">explicit J.T @ g</div><div class="v small" id="explicit-rel">not formed <span class="u">` +
        `(J has ${count(st.jac.shape[0] * st.jac.shape[1])} entries)</span></div>`);
      stats.appendChild(s);
    }
    stats.appendChild(stat("grad-max", `largest |∂L/∂${hName(kin)}|`, maxAbs(jtg), U.gradient, null));

    // parameters
    const pr = $("param-row");
    pr.innerHTML = "";
    if (!st.params.length) {
      pr.appendChild(el("div", "muted", k ? `${L.type} has no parameters: it only passes the gradient on.` : "The loss has no parameters."));
    }
    st.params.forEach((P, j) => {
      const v = arr(P.grad);
      const view = P.view;
      const names = view.length === 4 && L.type === "Linear" ? ["unit", "c", "y", "x"]
                  : view.length === 3 && L.type === "Linear" ? ["unit", "y", "x"]
                  : view.length === 4 ? ["out", "in", "y", "x"] : view.length === 2 ? ["out", "in"] : ["i"];
      const desc = view.length === 4 && L.type === "Linear" ? `one row per output unit, its ${view[1]} input channels as ${view[2]}×${view[3]} tiles`
                 : view.length === 3 && L.type === "Linear" ? `one ${view[1]}×${view[2]} tile per output unit`
                 : view.length === 4 ? `one row per output channel, one ${view[2]}×${view[3]} kernel per input channel`
                 : view.length === 2 ? "rows: outputs, columns: inputs" : "";
      const fig = tensorFig(view, v, {
        title: `∂L/∂${P.name} <span class="f">${shapeStr(P.shape)}</span>`, unit: "nats per unit θ", name: "∂L/∂" + P.name,
        names, signed: true, maxW: view.length >= 3 ? 520 : 320, maxH: view.length === 4 ? 420 : 260, maxScale: 10,
        sub: `${desc}${desc ? "; " : ""}vs torch <code>${P.torch_name}.grad</code>: max|Δ| = ` +
             `<span class="pdiff" data-param="${j}" data-value="${P.diff.max_abs}">${expo(P.diff.max_abs)}</span> nats per unit θ, ` +
             `relative <span data-value="${P.diff.max_rel}">${expo(P.diff.max_rel)}</span>`,
      });
      pr.appendChild(fig);
    });
  }

  function jacobianFig(st, k, kin, outView, inView, maxW) {
    const J = st.jac;
    const [r0, r1] = J.rows, [c0, c1] = J.cols;
    const [N, M] = J.shape;
    const mb = N * M * 8 / 1e6;
    const where = J.full ? `the whole matrix, ${count(N)} × ${count(M)}`
      : `block: rows ${count(r0)}–${count(r1 - 1)} of ${count(N)}, columns ${count(c0)}–${count(c1 - 1)} of ${count(M)} ` +
        `(${count(r1 - r0)} × ${count(c1 - c0)} shown); the whole J is ${count(N)} × ${count(M)} = ${count(N * M)} entries ` +
        `(${mb >= 1 ? mb.toFixed(0) : mb.toFixed(2)} MB in float64)`;
    const how = J.method === "jacobian()" ? `from <code>layer.jacobian(${hName(kin).replace(/<\/?sub>/g, "")})</code>`
      : `each shown row i computed as <code>backward(e<sub>i</sub>)</code> = Jᵀe<sub>i</sub> (the whole J is never formed)`;
    const rule = J.full ? "" : " Rows centred on the largest |g|; columns on the inputs those rows touch (or the largest |Jᵀg|).";
    const label = (i) => {
      const r = Math.floor(i / (c1 - c0)), c = i % (c1 - c0);
      const ri = r0 + r, ci = c0 + c;
      const rs = outView.length ? ` (${unravel(ri, outView)})` : "";
      return `${ri}${rs}; ${ci} (${unravel(ci, inView)})`;
    };
    const opts = {
      title: k ? `J = ∂${hName(k)}/∂${hName(kin)} <span class="f">${J.full ? "whole" : "block"}</span>`
               : `J = ∂L/∂${hName(K)} <span class="f">one row</span>`,
      unit: "unitless", name: "J", matrix: true, maxW: Math.max(300, maxW), maxH: 260, maxScale: 14, signed: true, label,
      width: Math.min(maxW, 320), labels: null,
      sub: `${where}; ${how}.${rule} Rows: outputs${outView.length ? " (" + shapeStr(outView) + " flattened)" : ""}, columns: inputs (${shapeStr(inView)} flattened).`,
    };
    const fig = (r1 - r0 === 1 && c1 - c0 <= 16) ? bars(arr(J.data), opts) : heatmap([r1 - r0, c1 - c0], arr(J.data), opts);
    fig.id = "jacobian-fig";
    fig.dataset.rows = `${r0},${r1}`; fig.dataset.cols = `${c0},${c1}`; fig.dataset.shape = `${N},${M}`;
    return fig;
  }

  function stat(id, key, value, unit, ok) {
    const s = el("div", "stat" + (ok === true ? " ok" : ok === false ? " bad" : ""));
    s.innerHTML = `<div class="k">${key}</div><div class="v"><span id="${id}" data-value="${value}">${expo(value)}</span> <span class="u">${unit}</span></div>`;
    return s;
  }
  function escapeHtml(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }

  // ---- the per-layer table ------------------------------------------------------------
  function renderTable() {
    const E = ex(), T = DATA.timing;
    const t = $("layer-table");
    let h = `<thead><tr><th>#</th><th>layer</th><th>output shape</th><th>parameters</th>` +
      `<th>numpy fwd<br>(ms)</th><th>numpy bwd<br>(ms)</th><th>torch fwd<br>(ms)</th><th>torch bwd<br>(ms)</th>` +
      `<th>∂L/∂input max|Δ|<br>(${U.gradient})</th><th>∂L/∂input<br>rel. Δ</th><th>∂L/∂θ max<br>rel. Δ</th></tr></thead><tbody>`;
    const tot = [0, 0, 0, 0];
    for (const L of LAYERS) {
      const st = E.steps[stepOfLayer(L.index)];
      const row = T ? T.rows[L.index - 1] : null;
      const cells = row ? [row.numpy_forward_ms, row.numpy_backward_ms, row.torch_forward_ms, row.torch_backward_ms] : null;
      if (cells) cells.forEach((v, i) => { tot[i] += v; });
      const prel = st.params.length ? Math.max(...st.params.map((P) => P.diff.max_rel)) : null;
      h += `<tr data-layer="${L.index}"><td>${L.index}</td><td>${L.type}</td><td>${shapeStr(L.out_view)}</td><td>${count(L.num_parameters)}</td>` +
        (cells ? cells.map((v) => `<td>${ms(v)}</td>`).join("") : `<td colspan="4" class="muted">not timed</td>`) +
        `<td data-value="${st.diff.max_abs}">${expo(st.diff.max_abs)}</td><td data-value="${st.diff.max_rel}">${expo(st.diff.max_rel)}</td>` +
        `<td>${prel === null ? "–" : expo(prel)}</td></tr>`;
    }
    const ls = E.steps[0];
    h += `<tr data-layer="0"><td>L</td><td>loss</td><td>scalar</td><td>0</td><td colspan="4" class="muted">—</td>` +
      `<td data-value="${ls.diff.max_abs}">${expo(ls.diff.max_abs)}</td><td data-value="${ls.diff.max_rel}">${expo(ls.diff.max_rel)}</td><td>–</td></tr>`;
    h += "</tbody>";
    if (T) {
      const th = T.threads || {};
      h += `<tfoot><tr><td></td><td>total</td><td></td><td>${count(DATA.model.num_parameters)}</td>${tot.map((v) => `<td style="text-align:right">${ms(v)}</td>`).join("")}<td colspan="3"></td></tr>` +
        `<tr><td colspan="11">Times: median of ${T.repeats} repeats after one warm-up, milliseconds per call for a batch of ${T.batch} test images, ` +
        `${T.dtype}, the same weights on both sides; numpy BLAS threads ${th.numpy_blas ?? "?"}, torch threads ${th.torch_intra_op ?? "?"}. ` +
        `Differences: this example (test image #${E.index}), float64; relative Δ = max|numpy − torch| / max|torch|. Click a row to go to its step.</td></tr></tfoot>`;
    }
    t.innerHTML = h;
    t.querySelectorAll("tbody tr").forEach((tr) => tr.addEventListener("click", () => go(stepOfLayer(Number(tr.dataset.layer)))));
  }

  // ---- navigation ---------------------------------------------------------------------
  function go(s) {
    state.step = Math.max(0, Math.min(S - 1, s));
    renderStep();
  }
  function render() {
    document.querySelectorAll(".example-btn").forEach((b) => b.classList.toggle("active", Number(b.dataset.example) === state.ex));
    renderSummary();
    renderTable();
    renderStep();
  }
  $("prev").addEventListener("click", () => go(state.step - 1));
  $("next").addEventListener("click", () => go(state.step + 1));
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowRight") { go(state.step + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { go(state.step - 1); ev.preventDefault(); }
    else if (ev.key === "Home") { go(0); ev.preventDefault(); }
    else if (ev.key === "End") { go(S - 1); ev.preventDefault(); }
    else if (/^[1-9]$/.test(ev.key) && Number(ev.key) <= DATA.examples.length) { state.ex = Number(ev.key) - 1; render(); }
    else if (ev.key === "Enter" && document.activeElement && document.activeElement.dataset.layer !== undefined) {
      go(stepOfLayer(Number(document.activeElement.dataset.layer)));
    }
  });

  $("title").textContent = DATA.title;
  $("model-line").textContent = `${LAYERS.length} layers · ${DATA.model.num_parameters.toLocaleString("en-US")} parameters · ` +
    `${DATA.model.dtype} · ${DATA.dataset.name} ${DATA.dataset.image_shape.join("×")}`;
  buildLayerList();
  buildExamples();
  const nEx = DATA.examples.length;
  $("keys").innerHTML = `<kbd>←</kbd> <kbd>→</kbd> step · <kbd>Home</kbd> <kbd>End</kbd>` +
    (nEx > 1 ? ` · <kbd>1</kbd>–<kbd>${Math.min(nEx, 9)}</kbd> ${nEx <= 9 ? `one of ${nEx} examples` : "the first 9 examples"}` : "");
  if (!DATA.model.trained) {
    const b = $("untrained-banner");
    b.hidden = false;
    b.innerHTML = "<b>Untrained weights: the prediction is chance.</b> These are the fresh random initial weights " +
      "(<code>--train-images 0</code>), so the probabilities and “predicted” digit mean nothing yet; the gradients are " +
      "still exact. Run without <code>--train-images 0</code> (the default trains one epoch on 3,000 images, well under a second for the MLP) to see a network that has learned.";
  }
  // The URL says where the page is, counted as the page counts: #step=1 is "Step 1 of S" (the loss), example=1 the first.
  function fromHash() {
    const m = /#step=(\d+)(?:&example=(\d+))?/.exec(location.hash);
    if (!m) return false;
    state.step = Math.max(0, Math.min(S - 1, Number(m[1]) - 1));
    if (m[2]) state.ex = Math.max(0, Math.min(nEx - 1, Number(m[2]) - 1));
    return true;
  }
  fromHash();
  window.addEventListener("hashchange", () => { if (fromHash()) render(); });
  render();
  document.body.dataset.ready = "1";
})();
