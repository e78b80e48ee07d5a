// The bingeo web app: login, then the views of the user's role on a Leaflet map.
// Every text comes from i18n.js; every request goes to bingeo itself (same origin).
"use strict";

(function () {
  const state = {
    token: sessionStorage.getItem("bingeo.token"),
    me: null,
    config: null,
    lang: localStorage.getItem("bingeo.lang") || (navigator.language || "nl").slice(0, 2),
    view: null,
    coverageLevel: null, // chosen in the coverage view; null: the API's default
    map: null,
    cleanup: [],
    sheet: "half",
  };
  if (!window.I18N[state.lang]) state.lang = "nl";

  // Views per role; the first is shown after login.
  const VIEWS = {
    admin: ["coverage", "alert", "planning"],
    police_analyst: ["coverage"],
    police_officer: ["alert", "coverage"],
    municipality_planner: ["planning", "coverage"],
    coordinator: ["network"],
  };
  const COLOURS = { BIN: "#2b6cb0", "BIN-Z": "#b7791f" };

  // Exposed for the browser tests (read-only facts of the page, no secrets).
  const exposed = { map: null, lastTarget: null, lastPreview: null, lastReport: null, vertices: 0 };
  window.bingeo = exposed;

  // helpers ---------------------------------------------------------------------------------

  function t(key, vars) {
    const text = (window.I18N[state.lang] || {})[key] ?? window.I18N.nl[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (vars && name in vars ? vars[name] : ""));
  }

  function has(key) {
    return key in (window.I18N[state.lang] || {}) || key in window.I18N.nl;
  }

  // The translation of an API value (a status, channel, language), the value itself otherwise.
  function label(prefix, value) {
    return value !== null && value !== undefined && has(prefix + value) ? t(prefix + value) : value;
  }

  function statusLabel(status) {
    return label("st_", status);
  }

  // An API error in the user's language: the translation of its code when there is one, the
  // API's own text otherwise.
  function errorText(error) {
    if (error.code && has("err_" + error.code)) return t("err_" + error.code, { s: error.retryAfter ?? "" });
    return error.message;
  }

  // English texts of the API (report findings, message warnings) recognised by their pattern and
  // shown translated; the named groups fill the translation. Unrecognised texts stay as they are.
  const FINDINGS = {
    empty: /^the proposed area is empty$/,
    no_address: /^no located address lies inside the area$/,
    municipality_unknown: /against municipality (?<nis>\S+)$/,
    outside_municipality: /^(?<m2>\d+) m² \((?<share>[\d.]+)%\) lies outside municipality (?<nis>\S+)$/,
    crosses_municipality_border: /^the area crosses municipalities (?<codes>.+)$/,
    crosses_police_zone_border: /^the area crosses police zones (?<codes>.+)$/,
    overlap: /^overlaps (?<name>.*) \((?<code>[^,()]*), (?<status>\w+)\): (?<m2>\d+) m², (?<n>\d+) addresses in both$/,
    addresses_covered: /^(?<n>\d+) addresses inside are already covered by another network$/,
    members_inside: /^(?<n>\d+|< 5) members of existing networks live inside the area$/,
    outside_scope: /^(?<m2>\d+) m² lie outside your scope (?<scope>\S+): nothing is reported there$/,
    repaired: /^(?<label>\w+): invalid polygon repaired/,
  };
  const API_TEXTS = [
    [/^no (?<lang>\w+) text: \w+ recipients get the (?<used>\w+) text$/, "api_fallback_text"],
    [/^(?<lang>\w+) SMS needs (?<n>\d+) segments \(more than (?<max>\d+)\); shorten the message$/, "api_sms_segments"],
    [/^(?<label>\w+): invalid polygon repaired/, "finding_repaired"],
    [/^(?<label>\w+): ring was not closed; closed it$/, "api_ring_closed"],
  ];
  // What an active network still lacks in roles (bingeo.planning.role_problems).
  const NEEDS = {
    "a coordinator": "need_coordinator",
    "a coordinator who is an adult and screened": "need_coordinator_screened",
    "a mandated police officer": "need_police_officer",
    "a local authority contact (BIN-Z)": "need_local_authority",
    "at least one self-employed member (BIN-Z)": "need_self_employed",
  };

  function fromPattern(text, pattern, key) {
    const match = pattern && String(text).match(pattern);
    if (!match || !has(key)) return null;
    const vars = {};
    for (const [name, value] of Object.entries(match.groups || {})) {
      if (name === "status") vars[name] = statusLabel(value);
      else if (name === "lang" || name === "used") vars[name] = label("lang_", value);
      else if (name === "share") vars[name] = pct(Number(value) / 100);
      else if (name === "scope") vars[name] = scopeText(value);
      else vars[name] = /^\d+$/.test(value) ? fmt(Number(value)) : value;
    }
    return t(key, vars);
  }

  function apiText(text) {
    for (const [pattern, key] of API_TEXTS) {
      const translated = fromPattern(text, pattern, key);
      if (translated !== null) return translated;
    }
    return text;
  }

  function findingText(finding) {
    return fromPattern(finding.message, FINDINGS[finding.code], "finding_" + finding.code) ?? finding.message;
  }

  function factText(fact) {
    return has("fact_" + fact) ? t("fact_" + fact) : NEEDS[fact] ? t(NEEDS[fact]) : fact;
  }

  function stepText(from, step) {
    for (const key of [`step_${from}_${step.to}`, `step_${step.to}`]) if (has(key)) return t(key);
    return step.description;
  }

  // A scope as the API words it ("police_zone:5388", "police zone 5388", "Belgium").
  function scopeText(scope) {
    return String(scope ?? "")
      .split(",")
      .map((part) => {
        const match = part.trim().match(/^(police[ _]zone|municipality|network)[: ](.+)$/);
        if (match) return t("scope_" + match[1].replace(" ", "_"), { code: match[2] });
        return part.trim() === "Belgium" ? t("scope_belgium") : part;
      })
      .join(", ");
  }

  // An element with attributes and children (strings become text nodes: no HTML injection).
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // replaceChildren with the same flattening and skipping of empty parts as h().
  function setChildren(node, ...children) {
    node.replaceChildren(h("div", {}, children));
    node.replaceChildren(...node.firstChild.childNodes);
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    const locale = state.lang === "fr" ? "fr-BE" : "nl-BE";
    return value.toLocaleString(locale, { maximumFractionDigits: digits ?? 0 });
  }

  function short(text, length) {
    const value = String(text ?? "");
    return value.length > length ? value.slice(0, length - 1) + "…" : value;
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : fmt(100 * value, 1) + " %";
  }

  async function api(method, path, body, options) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload });
    } catch (failure) {
      const error = new Error(failure.message);
      error.code = "network_error";
      throw error;
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) {
      if (response.status === 401 && !(options && options.login)) logout(false);
      const error = new Error(data.detail || response.statusText);
      error.status = response.status;
      error.code = data.code;
      error.retryAfter = response.headers.get("Retry-After");
      throw error;
    }
    return data;
  }

  // An error paragraph: the translated text, the API's own words as its title.
  function errorLine(error) {
    return h(
      "p",
      { class: "error", role: "alert", "data-code": error.code, title: error.message },
      t("error", { detail: errorText(error) })
    );
  }

  function showError(where, error) {
    setChildren(where, errorLine(error));
  }

  function table(rows, columns) {
    return h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, t(c.label))))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row)))))
      )
    );
  }

  function figures(pairs) {
    return h(
      "dl",
      { class: "figures" },
      pairs.map(([key, value, id]) => [h("dt", {}, t(key)), h("dd", { id }, value)])
    );
  }

  // page frame ------------------------------------------------------------------------------

  const main = document.getElementById("main");
  const tabs = document.getElementById("tabs");
  const langSelect = document.getElementById("lang");
  const logoutButton = document.getElementById("logout");

  function translateStatic() {
    document.documentElement.lang = state.lang;
    langSelect.value = state.lang;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    setDrawTexts();
  }

  langSelect.addEventListener("change", () => {
    state.lang = langSelect.value;
    localStorage.setItem("bingeo.lang", state.lang);
    translateStatic();
    render();
  });
  logoutButton.addEventListener("click", () => logout(true));

  async function logout(revoke) {
    if (revoke && state.token) {
      try {
        await api("POST", "/auth/logout");
      } catch (error) {
        // An expired token is logged out already.
      }
    }
    state.token = null;
    state.me = null;
    sessionStorage.removeItem("bingeo.token");
    render();
  }

  function teardown() {
    for (const fn of state.cleanup.splice(0)) fn();
    if (state.map) {
      state.map.remove();
      state.map = null;
      exposed.map = null;
    }
  }

  function render() {
    teardown();
    translateStatic();
    const who = document.getElementById("whoami");
    if (!state.token || !state.me) {
      setChildren(tabs);
      who.textContent = "";
      logoutButton.hidden = true;
      renderLogin();
      return;
    }
    logoutButton.hidden = false;
    who.textContent = `${state.me.name} · ${t("role_" + state.me.role)}${
      state.me.scope ? " · " + scopeText(state.me.scope) : ""
    }`;
    const views = VIEWS[state.me.role] || [];
    if (!views.includes(state.view)) state.view = views[0];
    setChildren(tabs,
      ...views.map((view) =>
        h(
          "button",
          {
            type: "button",
            "data-view": view,
            class: view === state.view ? "active" : null,
            onclick: () => {
              state.view = view;
              render();
            },
          },
          t("view_" + view)
        )
      )
    );
    ({ coverage: renderCoverage, alert: renderAlert, planning: renderPlanning, network: renderNetwork })[
      state.view
    ]();
  }

  // login -----------------------------------------------------------------------------------

  function renderLogin() {
    const error = h("p", { id: "login-error", class: "error", role: "alert" });
    const name = h("input", { id: "login-name", name: "name", autocomplete: "username", required: true });
    const password = h("input", {
      id: "login-password",
      name: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
    });
    const form = h(
      "form",
      { id: "login", class: "card" },
      h("h1", {}, t("login_title")),
      h("p", {}, t("login_intro")),
      h("label", {}, t("name"), name),
      h("label", {}, t("password"), password),
      h("button", { id: "login-submit", type: "submit" }, t("login")),
      error
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const answer = await api(
          "POST",
          "/auth/login",
          { name: name.value, password: password.value },
          { login: true }
        );
        state.token = answer.token;
        state.me = answer.user;
        sessionStorage.setItem("bingeo.token", answer.token);
        state.view = null;
        render();
      } catch (failure) {
        const detail = failure.code === "not_authenticated" ? t("err_bad_login") : errorText(failure);
        error.textContent = t("login_failed", { detail });
        error.dataset.code = failure.code || "";
      }
    });
    setChildren(main, h("div", { class: "center" }, form));
    name.focus();
  }

  // map -------------------------------------------------------------------------------------

  function makeMap(container) {
    const map = L.map(container, { zoomControl: false, preferCanvas: false }).setView([51.05, 3.72], 12);
    L.control.zoom({ zoomInTitle: t("zoom_in"), zoomOutTitle: t("zoom_out") }).addTo(map);
    const tiles = state.config && state.config.tiles;
    if (tiles) {
      L.tileLayer(tiles.url, { attribution: tiles.attribution, maxZoom: 19 }).addTo(map);
    } else {
      container.classList.add("no-tiles");
      map.attributionControl.addAttribution(t("no_tiles"));
    }
    L.control.scale({ imperial: false }).addTo(map);
    state.map = map;
    exposed.map = map;
    return map;
  }

  // On a phone the panel is a sheet over the map (app.css): collapsed, half or full. Its handle
  // cycles through them; arrow up and down on the handle make it taller or smaller.
  const SHEET = ["collapsed", "half", "full"];

  function sheetHandle(panel) {
    const handle = h("button", { type: "button", id: "sheet-handle", class: "sheet-handle", "aria-controls": "panel" });
    const show = (sheet) => {
      state.sheet = sheet;
      panel.dataset.sheet = sheet;
      handle.setAttribute("aria-expanded", String(sheet !== "collapsed"));
      handle.setAttribute("aria-label", t("sheet_" + sheet));
      handle.title = t("sheet_" + sheet);
      if (state.map) state.map.invalidateSize();
    };
    const step = (by) => show(SHEET[Math.max(0, Math.min(SHEET.length - 1, SHEET.indexOf(state.sheet) + by))]);
    handle.addEventListener("click", () => show(SHEET[(SHEET.indexOf(state.sheet) + 1) % SHEET.length]));
    handle.addEventListener("keydown", (event) => {
      const by = { ArrowUp: 1, ArrowDown: -1 }[event.key];
      if (by) {
        event.preventDefault();
        step(by);
      }
    });
    show(state.sheet);
    return handle;
  }

  function layout(panelChildren) {
    // The panel scrolls: focusable, so that a keyboard can scroll it too.
    const panel = h("aside", { id: "panel", tabindex: "0", "aria-label": t("panel") });
    // The views fill (and refill) the body; the handle and the page's heading stay.
    const body = h("div", { class: "panel-body" }, panelChildren);
    panel.append(sheetHandle(panel), h("h1", { class: "visually-hidden" }, t("view_" + state.view)), body);
    const mapNode = h("div", { id: "map" });
    setChildren(main, h("div", { class: "workspace" }, panel, mapNode));
    return { panel: body, map: makeMap(mapNode) };
  }

  function networkStyle(feature) {
    const p = feature.properties || {};
    const active = p.status === "active";
    return {
      color: COLOURS[p.kind] || "#444",
      weight: 2,
      fillOpacity: active ? 0.12 : 0.04,
      dashArray: active ? null : "4 4",
    };
  }

  // Leaflet shows a string tooltip as HTML: user text goes in as a text node, never as a string.
  function textTooltip(layer, text) {
    layer.bindTooltip(h("span", {}, text));
  }

  function networkLayer(collection) {
    return L.geoJSON(collection, {
      style: networkStyle,
      onEachFeature: (feature, layer) => {
        const p = feature.properties || {};
        textTooltip(layer, `${p.name || p.code} (${label("kind_", p.kind)}, ${statusLabel(p.status)})`);
      },
    });
  }

  function fit(map, layer) {
    const bounds = layer.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
  }

  function scopeQuery() {
    const me = state.me;
    if (me.police_zone_code) return { zone: me.police_zone_code, networks: `police_zone=${encodeURIComponent(me.police_zone_code)}` };
    if (me.nis_code) return { municipality: me.nis_code, networks: `municipality=${encodeURIComponent(me.nis_code)}` };
    return { networks: "" };
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
    const text = search.toString();
    return text ? "?" + text : "";
  }

  // coverage (analysts; officers and planners of their scope) ------------------------------

  function renderCoverage() {
    const status = h("p", { class: "muted" }, t("loading"));
    const { panel, map } = layout([h("h2", {}, t("figures")), status]);
    const scope = scopeQuery();
    const params = query({ zone: scope.zone, municipality: scope.municipality });
    // No level chosen: the API answers at the finest level with areas in the scope.
    const levelParams = query({ zone: scope.zone, municipality: scope.municipality, level: state.coverageLevel });
    Promise.all([
      api("GET", "/coverage" + levelParams),
      api("GET", "/overlaps" + params),
      api("GET", "/gaps" + levelParams),
      api("GET", `/networks?limit=1000&${scope.networks}`),
    ])
      .then(([coverage, overlaps, gaps, networks]) => {
        const coverageLayer = L.geoJSON(coverage, {
          style: (f) => {
            const share = f.properties.share_covered;
            return {
              color: "#718096",
              weight: 0.5,
              fillColor: share === null ? "#e2e8f0" : `hsl(${Math.round(120 * share)}, 55%, 50%)`,
              fillOpacity: 0.45,
            };
          },
          onEachFeature: (f, layer) => {
            const p = f.properties;
            textTooltip(
              layer,
              `${p.name || p.code || ""}: ${fmt(p.covered)}/${fmt(p.addresses)} (${pct(p.share_covered)})`
            );
          },
        });
        const networksLayer = networkLayer(networks);
        const overlapLayer = L.geoJSON(overlaps, {
          style: { color: "#c53030", weight: 1, fillColor: "#c53030", fillOpacity: 0.5 },
        });
        const gapLayer = L.geoJSON(gaps, {
          style: { color: "#dd6b20", weight: 2, dashArray: "6 3", fillOpacity: 0.1 },
        });
        coverageLayer.addTo(map);
        networksLayer.addTo(map);
        overlapLayer.addTo(map);
        gapLayer.addTo(map);
        L.control
          .layers(null, {
            [t("layer_coverage", { level: label("level_", coverage.level) })]: coverageLayer,
            [t("layer_networks")]: networksLayer,
            [t("layer_overlaps")]: overlapLayer,
            [t("layer_gaps")]: gapLayer,
          }, { collapsed: false })
          .addTo(map);
        fit(map, coverageLayer.getLayers().length ? coverageLayer : networksLayer);
        const totals = coverage.totals || {};
        const names = {};
        for (const f of networks.features) names[f.id ?? f.properties.id] = f.properties.name;
        for (const f of networks.features) names[f.properties.code] = f.properties.name;

        const levelSelect = h(
          "select",
          { id: "coverage-level" },
          (coverage.levels || [coverage.level]).map((level) =>
            h("option", { value: level, selected: level === coverage.level }, label("level_", level))
          )
        );
        levelSelect.addEventListener("change", () => {
          state.coverageLevel = levelSelect.value;
          render();
        });
        const gapReport = h("p", { id: "gap-report", class: "muted" });
        async function validateGap(id) {
          setChildren(gapReport, t("loading"));
          try {
            const r = await api("POST", `/gaps/${encodeURIComponent(id)}/validate`);
            exposed.lastReport = r;
            setChildren(gapReport, t("gap_report", {
              status: r.valid ? t("valid") : t("not_valid"),
              n: fmt(r.addresses_inside),
              findings: fmt(r.findings.length),
            }));
          } catch (error) {
            showError(gapReport, error);
          }
        }

        setChildren(panel,
          h("h2", {}, t("figures")),
          h("p", { class: "muted", id: "coverage-scope" }, `${t("scope")}: ${scopeText(coverage.scope)}`),
          h("label", {}, t("level"), levelSelect),
          figures([
            ["addresses", fmt(totals.addresses), "fig-addresses"],
            ["covered", fmt(totals.covered), "fig-covered"],
            ["covered_bin", fmt(totals.covered_bin), "fig-covered-bin"],
            ["covered_bin_z", fmt(totals.covered_bin_z), "fig-covered-bin-z"],
            ["uncovered", fmt(totals.uncovered), "fig-uncovered"],
            ["share_covered", pct(totals.share_covered), "fig-share"],
            ["networks", fmt(totals.networks), "fig-networks"],
            ["members", fmt(totals.members), "fig-members"],
            ["members_per_1000", fmt(totals.members_per_1000, 1), "fig-members-per-1000"],
          ]),
          h("h3", {}, `${t("overlaps")} (${overlaps.features.length})`),
          overlaps.features.length
            ? table(overlaps.features.slice(0, 20), [
                {
                  label: "networks",
                  value: (f) => `${names[f.properties.network_a] ?? f.properties.network_a} × ${
                    names[f.properties.network_b] ?? f.properties.network_b
                  }`,
                },
                { label: "overlap_m2", value: (f) => fmt(f.properties.overlap_m2) },
                { label: "shared_addresses", value: (f) => fmt(f.properties.shared_addresses) },
              ])
            : h("p", {}, t("none")),
          h("h3", {}, `${t("gaps")} (${gaps.features.length})`),
          gaps.features.length
            ? table(gaps.features.slice(0, 20), [
                { label: "gap_zone", value: (f) => h("span", { title: f.properties.codes }, short(f.properties.name, 48)) },
                { label: "addresses", value: (f) => fmt(f.properties.addresses) },
                { label: "uncovered", value: (f) => fmt(f.properties.uncovered) },
                {
                  label: "validate_gap",
                  value: (f) => h("button", { type: "button", class: "validate-gap", onclick: () => validateGap(f.properties.id) }, t("validate_gap")),
                },
              ])
            : h("p", {}, t("none")),
          gapReport
        );
        panel.querySelector("table:last-of-type")?.setAttribute("id", "gaps-table");
      })
      .catch((error) => showError(status, error));
  }

  // drawing ---------------------------------------------------------------------------------

  function setDrawTexts() {
    if (!window.L || !L.drawLocal) return;
    const d = window.DRAW_TEXTS[state.lang] || window.DRAW_TEXTS.nl;
    const local = L.drawLocal.draw;
    local.toolbar.buttons.polygon = d.polygon;
    local.toolbar.buttons.circle = d.circle;
    local.toolbar.actions.title = d.cancel;
    local.toolbar.actions.text = d.cancel;
    local.toolbar.finish.title = d.finish;
    local.toolbar.finish.text = d.finish;
    local.toolbar.undo.title = d.undo;
    local.toolbar.undo.text = d.undo;
    local.handlers.polygon.tooltip = { start: d.start, cont: d.cont, end: d.end };
    local.handlers.circle.tooltip.start = d.circleStart;
    local.handlers.circle.radius = d.radius;
    local.handlers.simpleshape.tooltip.end = "";
  }

  // Adds polygon and circle tools; ``onShape`` gets the drawn layer (one at a time).
  function drawTools(map, onShape, options) {
    const drawn = new L.FeatureGroup().addTo(map);
    const control = new L.Control.Draw({
      position: "topleft",
      draw: {
        polygon: { allowIntersection: false, showArea: false },
        circle: options && options.circle === false ? false : { showRadius: true, metric: true },
        rectangle: false,
        polyline: false,
        marker: false,
        circlemarker: false,
      },
      edit: false,
    });
    map.addControl(control);
    // Vertices placed so far (for the browser tests, which click as a person does).
    map.on(L.Draw.Event.DRAWSTART, () => (exposed.vertices = 0));
    map.on(L.Draw.Event.DRAWVERTEX, (event) => (exposed.vertices = event.layers.getLayers().length));
    map.on(L.Draw.Event.CREATED, (event) => {
      drawn.clearLayers();
      drawn.addLayer(event.layer);
      onShape(event.layer);
    });
    return drawn;
  }

  function targetOf(layer) {
    if (layer instanceof L.Circle) {
      const centre = layer.getLatLng();
      return { circle: { lon: centre.lng, lat: centre.lat, radius_m: layer.getRadius() } };
    }
    return { area: layer.toGeoJSON().geometry };
  }

  // alert (officers) ------------------------------------------------------------------------

  function renderAlert() {
    const languages = ["nl", "fr", "de"];
    const templateSelect = h(
      "select",
      { id: "alert-template" },
      ["burglary", "vehicle", "scam", "free"].map((key) => h("option", { value: key }, t("tpl_" + key)))
    );
    const boxes = {};
    for (const lang of languages) {
      boxes[lang] = h("textarea", { id: "msg-" + lang, rows: 3, lang, maxlength: 1000 });
    }
    const fill = () => {
      const template = window.ALERT_TEMPLATES[templateSelect.value];
      for (const lang of languages) boxes[lang].value = template[lang];
    };
    templateSelect.addEventListener("change", () => {
      fill();
      refresh();
    });
    fill();
    const modeInputs = ["relay", "direct"].map((mode) =>
      h(
        "label",
        { class: "radio" },
        h("input", { type: "radio", name: "mode", value: mode, checked: mode === "relay", onchange: () => refresh() }),
        t("mode_" + mode)
      )
    );
    const reason = h("input", { id: "alert-reason", maxlength: 1000 });
    const previewBox = h("section", { id: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, t("alert_intro")));
    const sendButton = h("button", { id: "alert-send", type: "button", disabled: true }, t("send"));
    const statusBox = h("section", { id: "alert-status", "aria-live": "polite" });
    const { map } = layout([
      h("h2", {}, t("view_alert")),
      // The figures of the drawn area first: visible without scrolling, beside the map.
      previewBox,
      h("label", {}, t("template"), templateSelect),
      languages.map((lang) => h("label", {}, t("message_" + lang), boxes[lang])),
      h("fieldset", {}, h("legend", {}, t("mode")), modeInputs),
      h("label", {}, t("reason"), reason),
      h("button", { id: "alert-preview-btn", type: "button", onclick: () => refresh() }, t("preview")),
      sendButton,
      statusBox,
    ]);
    let target = null;
    let edgeLayer = null;

    function request() {
      const messages = {};
      for (const lang of languages) if (boxes[lang].value.trim()) messages[lang] = boxes[lang].value.trim();
      const mode = document.querySelector("input[name=mode]:checked").value;
      return { target, mode, messages, reason: reason.value.trim(), urgency: mode === "direct" ? "immediate" : "expected" };
    }

    async function refresh() {
      if (!target) {
        setChildren(previewBox, h("p", { class: "muted" }, t("draw_first")));
        return;
      }
      const body = request();
      exposed.lastTarget = target;
      setChildren(previewBox, h("p", { class: "muted" }, t("loading")));
      try {
        const preview = await api("POST", "/alerts/preview", body);
        exposed.lastPreview = preview;
        showPreview(preview);
        sendButton.disabled = false;
      } catch (error) {
        sendButton.disabled = true;
        showError(previewBox, error);
      }
    }

    function showPreview(p) {
      if (edgeLayer) edgeLayer.remove();
      const warnings = (p.message && p.message.warnings) || [];
      setChildren(previewBox,
        h("h3", {}, t("preview_title")),
        figures([
          ["pv_networks", fmt(p.networks.length), "pv-networks"],
          ["pv_addresses", fmt(p.addresses.inside_area), "pv-addresses"],
          // Approximately placed addresses are named only when there are some.
          ...(p.addresses.inside_area_approximate
            ? [["pv_addresses_approximate", fmt(p.addresses.inside_area_approximate), "pv-addresses-approximate"]]
            : []),
          ["pv_addresses_network", fmt(p.addresses.inside_area_and_network), "pv-addresses-network"],
          ["pv_members", fmt(p.members.total), "pv-members"],
          ["pv_coordinators", fmt(p.coordinators.total), "pv-coordinators"],
          ["pv_recipients", fmt(p.recipients.total), "pv-recipients"],
          ["pv_cost", fmt(p.cost.total_eur, 2), "pv-cost"],
        ]),
        p.networks.length
          ? table(p.networks, [
              { label: "networks", value: (n) => n.name },
              { label: "code", value: (n) => n.code },
              { label: "kind", value: (n) => label("kind_", n.kind) },
              { label: "share_inside", value: (n) => pct(n.share_inside) },
              { label: "pv_members", value: (n) => fmt(n.members_reached) },
            ])
          : h("p", {}, t("none")),
        p.networks_edge_only.length ? h("p", {}, `${t("pv_edge_only")}: ${p.networks_edge_only.join(", ")}`) : null,
        h("h4", {}, t("pv_edge", { m: p.edge.distance_m }), ": ", h("span", { id: "pv-edge" }, fmt(p.edge.total))),
        h(
          "ul",
          { class: "edge" },
          p.edge.addresses.slice(0, 15).map((a) =>
            h("li", {}, `${a.street || ""} ${a.house_number || ""} – ${t(a.side)}`)
          )
        ),
        warnings.length ? h("div", { class: "warnings" }, h("h4", {}, t("warnings")), h("ul", {}, warnings.map((w) => h("li", { title: w }, apiText(w))))) : null
      );
    }

    drawTools(map, (layer) => {
      target = targetOf(layer);
      refresh();
    });

    sendButton.addEventListener("click", async () => {
      const body = request();
      if (!body.reason) {
        setChildren(statusBox, h("p", { class: "error" }, t("reason_needed")));
        reason.focus();
        return;
      }
      sendButton.disabled = true;
      try {
        const sent = await api("POST", "/alerts", body);
        setChildren(statusBox, h("p", { id: "alert-sent", "data-alert-id": sent.id }, t("sent", { id: sent.id })));
        follow(sent.id);
      } catch (error) {
        sendButton.disabled = false;
        showError(statusBox, error);
      }
    });

    function follow(alertId) {
      const box = h("div", { id: "delivery" });
      statusBox.append(box);
      let timer = null;
      const poll = async () => {
        try {
          const s = await api("GET", `/alerts/${alertId}`);
          const byStatus = s.recipients.by_status || {};
          setChildren(box,
            h("h4", {}, t("delivery")),
            figures([
              ["status", t("status_" + s.status), "as-status"],
              ["total", fmt(s.recipients.total), "as-total"],
              ["status_sent", fmt(byStatus.sent || 0), "as-sent"],
              ["status_queued", fmt(byStatus.queued || 0), "as-queued"],
              ["status_failed", fmt(byStatus.failed || 0), "as-failed"],
            ]),
            h(
              "p",
              {},
              `${t("by_channel")}: `,
              Object.entries(s.recipients.by_channel || {})
                .map(([channel, counts]) => `${label("ch_", channel)} ${Object.entries(counts).map(([k, v]) => `${t("status_" + k)} ${v}`).join(", ")}`)
                .join("; ")
            )
          );
          const open = (byStatus.queued || 0) + (byStatus.sending || 0);
          if (open > 0 && state.view === "alert") timer = setTimeout(poll, 1000);
        } catch (error) {
          showError(box, error);
        }
      };
      state.cleanup.push(() => clearTimeout(timer));
      poll();
    }

    api("GET", `/networks?limit=1000&${scopeQuery().networks}`)
      .then((networks) => {
        const layer = networkLayer(networks).addTo(map);
        layer.eachLayer((l) => l.bringToBack());
        fit(map, layer);
      })
      .catch((error) => showError(previewBox, error));
  }

  // planning (planners) ---------------------------------------------------------------------

  function renderPlanning() {
    const fileInput = h("input", { id: "plan-file", type: "file", accept: ".geojson,.json,.gpkg,.zip,.kml,.csv,.txt" });
    const reportBox = h("section", { id: "report", "aria-live": "polite" }, h("p", { class: "muted" }, t("plan_intro")));
    const lifecycleBox = h("section", { id: "lifecycle" });
    const networksBox = h("section", { id: "plan-networks" });
    const { map } = layout([
      h("h2", {}, t("view_planning")),
      h("p", { class: "muted" }, t("plan_intro")),
      h("label", {}, t("upload"), fileInput),
      reportBox,
      lifecycleBox,
      networksBox,
    ]);
    let geometry = null;
    let shownLayer = null;
    const drawn = drawTools(map, (layer) => validate(layer.toGeoJSON().geometry), { circle: false });

    function showGeometry(g) {
      if (shownLayer) shownLayer.remove();
      drawn.clearLayers();
      shownLayer = L.geoJSON(g, { style: { color: "#6b46c1", weight: 3, fillOpacity: 0.15 } }).addTo(map);
      fit(map, shownLayer);
    }

    async function run(promise) {
      exposed.lastReport = null;
      setChildren(reportBox, h("p", { class: "muted" }, t("loading")));
      try {
        const report = await promise;
        exposed.lastReport = report;
        geometry = report.geometry;
        showGeometry(geometry);
        showReport(report);
      } catch (error) {
        showError(reportBox, error);
      }
    }

    function validate(g) {
      run(api("POST", "/planning/validate", { geometry: g }));
    }

    fileInput.addEventListener("change", () => {
      const file = fileInput.files[0];
      if (!file) return;
      const form = new FormData();
      form.append("file", file, file.name);
      run(api("POST", "/planning/validate", form));
    });

    function showReport(r) {
      const overlapIds = r.overlaps.map((o) => o.network_id);
      const name = h("input", { id: "plan-name", maxlength: 200 });
      setChildren(reportBox,
        h("h3", {}, t("report"), " ", h("span", { id: "rp-valid", class: r.valid ? "ok" : "blocked" }, r.valid ? t("valid") : t("not_valid"))),
        figures([
          ["area_ha", fmt(r.area_m2 / 10000, 2), "rp-area"],
          ["addresses_inside", fmt(r.addresses_inside), "rp-addresses"],
          ["members_inside", fmt(r.members_inside), "rp-members"],
          ["covered_elsewhere", fmt(r.addresses_covered_elsewhere), "rp-elsewhere"],
          ["sectors", fmt(r.sectors.length), "rp-sectors"],
          ["municipalities", r.municipalities.map((m) => m.name || m.nis_code || m.code).join(", ") || "–", "rp-municipalities"],
        ]),
        h("h4", {}, t("findings")),
        h(
          "ul",
          { id: "rp-findings" },
          r.findings.map((f) =>
            h(
              "li",
              { class: "finding " + f.severity, "data-code": f.code, title: f.message },
              `${label("sev_", f.severity)}: ${findingText(f)}`
            )
          )
        ),
        r.overlaps.length
          ? [
              h("h4", {}, t("overlaps")),
              table(r.overlaps, [
                { label: "networks", value: (o) => `${o.name} (${o.code})` },
                { label: "overlap_m2", value: (o) => fmt(o.overlap_m2) },
                { label: "addresses", value: (o) => fmt(o.addresses) },
              ]),
            ]
          : null,
        h(
          "div",
          { class: "buttons" },
          h("button", {
            id: "plan-clip",
            type: "button",
            disabled: !overlapIds.length,
            onclick: () => run(api("POST", "/planning/clip", { geometry, against: overlapIds })),
          }, t("clip")),
          h("button", {
            id: "plan-snap",
            type: "button",
            onclick: () => run(api("POST", "/planning/snap", { geometry, level: "wijk" })),
          }, t("snap"))
        ),
        h("label", {}, t("proposal_name"), name),
        h("button", {
          id: "plan-save",
          type: "button",
          disabled: !r.valid,
          onclick: async () => {
            try {
              const saved = await api("POST", "/planning/proposals", { name: name.value.trim(), geometry });
              const id = saved.network.id ?? saved.network.properties.id;
              reportBox.append(h("p", { id: "plan-saved", class: "ok" }, t("saved", { id })));
              showLifecycle(id);
              listNetworks();
            } catch (error) {
              reportBox.append(errorLine(error));
            }
          },
        }, t("save_proposal"))
      );
    }

    // An input for a lifecycle fact, of its kind (date, yes/no, number, text); the invitation
    // export date is recorded by bingeo itself and only shown.
    function factInput(fact, value) {
      if (fact === "approved") {
        const select = h(
          "select",
          { name: fact, "data-kind": "boolean" },
          h("option", { value: "" }, "–"),
          h("option", { value: "true", selected: value === true }, t("yes")),
          h("option", { value: "false", selected: value === false }, t("no"))
        );
        return select;
      }
      if (fact === "attendance" || fact === "merged_into") {
        return h("input", { name: fact, type: "number", min: 0, step: 1, "data-kind": "number", value: value ?? "" });
      }
      const date = /_(at|date)$/.test(fact);
      return h("input", {
        name: fact,
        type: date ? "date" : "text",
        value: value ?? "",
        disabled: fact === "invitations_exported_at",
      });
    }

    function factValue(input) {
      const raw = input.value.trim();
      if (input.disabled || !raw) return null;
      if (input.dataset.kind === "boolean") return raw === "true";
      if (input.dataset.kind === "number") return Number(raw);
      return raw;
    }

    async function showLifecycle(networkId) {
      setChildren(lifecycleBox, h("p", { class: "muted" }, t("loading")));
      try {
        const l = await api("GET", `/networks/${networkId}/lifecycle`);
        setChildren(lifecycleBox,
          h("h3", {}, `${t("lifecycle")}: ${l.code}`),
          h("p", {}, `${t("status")}: `, h("strong", { id: "lc-status", "data-status": l.status }, statusLabel(l.status))),
          h("h4", {}, t("next_steps")),
          l.next.map((step) => {
            const inputs = {};
            const needs = [...new Set([...step.needs])];
            const fields = needs.map((fact) => {
              inputs[fact] = factInput(fact, l.facts[fact]);
              return h("label", { class: "fact" }, factText(fact), inputs[fact]);
            });
            return h(
              "div",
              { class: "step" },
              h("p", { title: step.description }, stepText(l.status, step)),
              fields,
              step.missing.length ? h("p", { class: "muted" }, `${t("missing")}: ${step.missing.map(factText).join(", ")}`) : null,
              h("button", {
                type: "button",
                "data-step": step.to,
                onclick: async () => {
                  const facts = {};
                  for (const [fact, input] of Object.entries(inputs)) {
                    const value = factValue(input);
                    if (value !== null) facts[fact] = value;
                  }
                  try {
                    await api("POST", `/networks/${networkId}/lifecycle`, { to: step.to, facts });
                    showLifecycle(networkId);
                    listNetworks();
                  } catch (error) {
                    lifecycleBox.append(errorLine(error));
                  }
                },
              }, t("go_to", { to: statusLabel(step.to) }))
            );
          }),
          l.history.length
            ? [h("h4", {}, t("history")), h("ul", {}, l.history.map((s) => h("li", {}, `${statusLabel(s.from)} → ${statusLabel(s.to)} (${s.by}, ${String(s.at).slice(0, 10)})`)))]
            : null
        );
      } catch (error) {
        showError(lifecycleBox, error);
      }
    }

    async function listNetworks() {
      try {
        const networks = await api("GET", `/networks?limit=200&${scopeQuery().networks}`);
        setChildren(networksBox,
          h("h3", {}, t("my_networks")),
          h(
            "ul",
            {},
            networks.features.map((f) =>
              h(
                "li",
                {},
                h("a", { href: "#", onclick: (e) => { e.preventDefault(); showLifecycle(f.id ?? f.properties.id); } }, f.properties.name),
                ` (${label("kind_", f.properties.kind)}, ${statusLabel(f.properties.status)})`
              )
            )
          )
        );
      } catch (error) {
        showError(networksBox, error);
      }
    }
    listNetworks();
  }

  // network (coordinators) -----------------------------------------------------------------

  function renderNetwork() {
    const networkId = state.me.network_id;
    const info = h("section", { id: "network-info" }, h("p", { class: "muted" }, t("loading")));
    const membersBox = h("section", { id: "members" });
    const inboxBox = h("section", { id: "inbox" });
    const { map } = layout([h("h2", {}, t("my_network")), info, inboxBox, membersBox]);
    Promise.all([
      api("GET", `/networks/${networkId}`),
      api("GET", `/networks/${networkId}/members?limit=1000`),
      api("GET", `/networks/${networkId}/alerts?limit=50`),
    ])
      .then(([network, members, inbox]) => {
        const layer = networkLayer(network).addTo(map);
        fit(map, layer);
        const p = network.properties;
        setChildren(info,
          h("h3", { id: "network-name" }, p.name),
          figures([
            ["code", p.code],
            ["kind", label("kind_", p.kind)],
            ["status", statusLabel(p.status)],
            ["members", fmt(members.total), "network-members"],
          ])
        );
        setChildren(inboxBox,
          h("h3", {}, `${t("inbox")} (${inbox.total})`),
          inbox.alerts.length
            ? h(
                "ul",
                { class: "inbox" },
                inbox.alerts.map((a) => {
                  const text = a.messages[state.lang] || a.messages.nl || a.messages.fr || a.messages.de || "";
                  return h(
                    "li",
                    { "data-alert-id": a.id },
                    h("strong", {}, `${String(a.created_at).replace("T", " ").slice(0, 16)} · ${label("mode_short_", a.mode)} · ${t("status_" + a.status)}`),
                    h("p", {}, text)
                  );
                })
              )
            : h("p", {}, t("no_messages"))
        );
        setChildren(membersBox,
          h("h3", {}, `${t("member_list")} (${members.total})`),
          table(members.members, [
            { label: "name", value: (m) => m.name },
            { label: "street", value: (m) => `${m.street || ""} ${m.house_number || ""}${m.outside_area ? " (" + t("outside_area") + ")" : ""}` },
            { label: "language", value: (m) => label("lang_", m.language) },
            { label: "channels", value: (m) => m.channels.map((c) => label("ch_", c)).join(", ") },
          ])
        );
      })
      .catch((error) => showError(info, error));
  }

  // start -----------------------------------------------------------------------------------

  async function start() {
    translateStatic();
    try {
      state.config = await api("GET", "/app/config.json");
    } catch (error) {
      state.config = { tiles: null };
    }
    if (state.token) {
      try {
        state.me = await api("GET", "/auth/me");
      } catch (error) {
        state.token = null;
        sessionStorage.removeItem("bingeo.token");
      }
    }
    render();
  }
  start();
})();
