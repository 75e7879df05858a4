/* The sandbox page: run a request, render the CDS cards as an EHR would, post feedback.
 * Plain DOM, no framework, no external resources. Card text is set with textContent; only the
 * detail goes through the escaping markdown renderer. */
(function () {
  "use strict";
  var md = window.MMCDSMarkdown;
  var config = JSON.parse(document.getElementById("sandbox-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var LABEL = { info: "Info", warning: "Warning", critical: "Critical" };
  var EXT = "org.mmcds.card";
  var DETAIL_OPEN_CHARS = 400; /* as cds_service/http/sandbox.py: longer details start folded */
  /* ?details=open unfolds every card's detail (screenshots for review) */
  var OPEN_ALL = /[?&]details=open(&|$)/.test(window.location.search);
  var current = { serviceId: config.initial.serviceId, fixture: config.initial.fixture };
  document.documentElement.classList.add("js");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function ext(card) { return (card && card.extension && card.extension[EXT]) || {}; }
  function urlFor(template, id) { return template.replace("__ID__", encodeURIComponent(id)); }

  var shown = {};
  function renderCard(card) {
    shown[String(card.uuid || "")] = card;
    var indicator = LABEL[card.indicator] ? card.indicator : "info";
    var uuid = String(card.uuid || "");
    var e = ext(card);
    var art = el("article", { "class": "card ind-" + indicator, "data-card-uuid": uuid, "data-indicator": indicator,
      "data-kind": e.kind || null, "aria-labelledby": "sum-" + uuid });
    var head = el("header", { "class": "card-head" });
    head.appendChild(el("span", { "class": "ind-badge" }, LABEL[indicator]));
    head.appendChild(el("h3", { "class": "card-summary", id: "sum-" + uuid }, card.summary || ""));
    art.appendChild(head);
    if (card.detail) {
      var more = el("details", { "class": "card-more", open: (OPEN_ALL || String(card.detail).length <= DETAIL_OPEN_CHARS) ? "" : null });
      more.appendChild(el("summary", {}, "Details"));
      var detail = el("div", { "class": "card-detail md" });
      detail.innerHTML = md.render(String(card.detail));
      more.appendChild(detail);
      art.appendChild(more);
    }
    if (Array.isArray(card.suggestions) && card.suggestions.length) {
      var sug = el("div", { "class": "card-suggestions" });
      card.suggestions.forEach(function (s) {
        if (!s || typeof s !== "object") return;
        sug.appendChild(el("button", { type: "button", "class": "btn suggestion" + (s.isRecommended ? " recommended" : ""),
          "data-suggestion-uuid": s.uuid || "" }, s.label || "Accept"));
      });
      art.appendChild(sug);
    }
    if (Array.isArray(card.links) && card.links.length) {
      var ul = el("ul", { "class": "card-links" });
      card.links.forEach(function (l) {
        var url = l && md.safeUrl(l.url);
        if (!url) return;
        var li = el("li");
        li.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", "data-link-type": l.type || "absolute" },
          l.label || url));
        if (l.type === "smart") { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", { "class": "tag" }, "SMART app")); }
        ul.appendChild(li);
      });
      art.appendChild(ul);
    }
    var foot = el("footer", { "class": "card-foot" });
    var src = el("span", { "class": "card-source" }, "Source: ");
    var source = card.source || {};
    var surl = md.safeUrl(source.url);
    if (surl) src.appendChild(el("a", { href: surl, target: "_blank", rel: "noopener noreferrer" }, source.label || surl));
    else src.appendChild(document.createTextNode(source.label || ""));
    foot.appendChild(src);
    if (e.ruleId) foot.appendChild(el("span", { "class": "card-rule" }, (e.kind || "") + " · " + e.ruleId));
    var dismiss = el("span", { "class": "dismiss" });
    if (Array.isArray(card.overrideReasons) && card.overrideReasons.length) {
      dismiss.appendChild(el("label", { "class": "sr-label", "for": "ovr-" + uuid }, "Dismiss with reason"));
      var sel = el("select", { "class": "override-select", id: "ovr-" + uuid });
      sel.appendChild(el("option", { value: "" }, "Dismiss with reason…"));
      card.overrideReasons.forEach(function (r, n) {
        if (!r || typeof r !== "object") return;
        sel.appendChild(el("option", { value: String(n), "data-code": r.code || "", "data-system": r.system || "" }, r.display || r.code || ""));
      });
      dismiss.appendChild(sel);
    }
    dismiss.appendChild(el("button", { type: "button", "class": "btn btn-quiet dismiss-btn" }, "Dismiss"));
    foot.appendChild(dismiss);
    art.appendChild(foot);
    art.appendChild(el("p", { "class": "card-feedback", role: "status", "aria-live": "polite" }));
    return art;
  }

  function yesNo(v) { return v === true ? "yes" : v === false ? "no" : "unknown"; }
  function chip(list, text, value, cls) {
    var li = el("li", { "class": "chip " + cls }, text + " ");
    li.appendChild(el("b", {}, value));
    list.appendChild(li);
  }
  function fact(dl, label, value) {
    var d = el("div");
    d.appendChild(el("dt", {}, label));
    d.appendChild(el("dd", {}, value));
    dl.appendChild(d);
  }
  function renderHistory(state) {
    var panel = $("history"), body = $("history-body");
    body.textContent = "";
    if (!state) { panel.hidden = true; return; }
    panel.hidden = false;
    var cyto = state.cytogenetics || {}, tx = state.transplant || {};
    var dl = el("dl", { "class": "facts" });
    fact(dl, "Prior lines", state.priorLines);
    fact(dl, "Cytogenetics", cyto.tested ? ((cyto.findings || []).join(", ") || "no abnormality found") + (cyto.highRisk ? " · high-risk" : "") : "not tested");
    fact(dl, "Prior ASCT", tx.priorASCT ? "yes" + (tx.monthsAsctToProgression != null ? " · " + tx.monthsAsctToProgression + " months to progression" : "") : "no");
    fact(dl, "Salvage ASCT", tx.salvageASCT || "—");
    body.appendChild(dl);
    if (Array.isArray(state.lines) && state.lines.length) {
      body.appendChild(el("h3", { "class": "sub" }, "Lines"));
      var ol = el("ol", { "class": "lines" });
      state.lines.forEach(function (ln) { ol.appendChild(el("li", {}, typeof ln === "object" ? (ln.label || ln.regimen || JSON.stringify(ln)) : ln)); });
      body.appendChild(ol);
    }
    body.appendChild(el("h3", { "class": "sub" }, "Agents"));
    var agents = state.agents || {};
    if (Object.keys(agents).length) {
      var ua = el("ul", { "class": "chips" });
      Object.keys(agents).forEach(function (a) { chip(ua, a, agents[a], "st-" + agents[a]); });
      body.appendChild(ua);
    } else body.appendChild(el("p", { "class": "empty" }, "No anti-myeloma agent received."));
    body.appendChild(el("h3", { "class": "sub" }, "Classes"));
    var uc = el("ul", { "class": "chips" });
    var classes = state.classes || {};
    Object.keys(classes).forEach(function (k) { chip(uc, k, classes[k], "st-" + classes[k]); });
    body.appendChild(uc);
    body.appendChild(el("h3", { "class": "sub" }, "Flags"));
    var uf = el("ul", { "class": "chips" });
    [["doubleRefractory", "double-refractory"], ["tripleClassExposed", "triple-class exposed"],
     ["tripleClassRefractory", "triple-class refractory"], ["pentaRefractory", "penta-refractory"],
     ["progressedOnLenalidomideMaintenance", "progressed on lenalidomide maintenance"], ["frail", "frail"],
     ["plasmaCellLeukemia", "plasma cell leukemia"], ["extramedullary", "extramedullary disease"]].forEach(function (f) {
      var v = state[f[0]];
      chip(uf, f[1], yesNo(v), v === true ? "flag-on" : v == null ? "flag-unknown" : "flag-off");
    });
    body.appendChild(uf);
  }

  function banner(req) {
    var b = $("patient-banner");
    b.textContent = "";
    var ctx = (req && typeof req.context === "object" && req.context) || {};
    var patient = null;
    var prefetch = (req && typeof req.prefetch === "object" && req.prefetch) || {};
    Object.keys(prefetch).some(function (k) {
      var v = prefetch[k];
      if (v && v.resourceType === "Patient") { patient = v; return true; }
      if (v && v.resourceType === "Bundle" && Array.isArray(v.entry)) {
        return v.entry.some(function (e) { if (e && e.resource && e.resource.resourceType === "Patient") { patient = e.resource; return true; } return false; });
      }
      return false;
    });
    var name = "Patient";
    if (patient && Array.isArray(patient.name) && patient.name[0]) {
      var n = patient.name[0];
      name = n.text || [].concat(Array.isArray(n.given) ? n.given : [], n.family ? [n.family] : []).join(" ") || name;
    }
    b.appendChild(el("span", { "class": "pb-name" }, name));
    if (patient && patient.gender) b.appendChild(el("span", {}, patient.gender));
    if (patient && patient.birthDate) b.appendChild(el("span", {}, "born " + patient.birthDate));
    if (ctx.patientId) b.appendChild(el("span", { "class": "pb-id" }, "id " + ctx.patientId));
    b.appendChild(el("span", { "class": "pb-hook", id: "pb-hook" }, current.serviceId));
    var bundle = ctx.draftOrders, entries = bundle && Array.isArray(bundle.entry) ? bundle.entry : [];
    var selections = Array.isArray(ctx.selections) ? ctx.selections : [];
    if (entries.length) {
      var orders = el("span", { "class": "pb-orders" }, "Draft orders: ");
      entries.slice(0, 30).forEach(function (e) {
        var r = e && e.resource;
        if (!r || typeof r !== "object") return;
        var ref = r.resourceType + "/" + r.id;
        var label = conceptText(r.medicationCodeableConcept) || conceptText(r.code) ||
          conceptText(r.medication && r.medication.concept) || ref;
        orders.appendChild(el("span", { "class": "order" + (selections.indexOf(ref) >= 0 ? " selected" : "") }, label));
      });
      b.appendChild(orders);
    }
  }
  function conceptText(c) {
    if (!c || typeof c !== "object") return "";
    if (typeof c.text === "string" && c.text.trim()) return c.text.trim();
    var coding = Array.isArray(c.coding) ? c.coding : [];
    for (var i = 0; i < coding.length; i++) if (coding[i] && typeof coding[i].display === "string") return coding[i].display;
    return "";
  }

  function renderResponse(status, body) {
    var ok = status === 200 && body && Array.isArray(body.cards);
    var cards = $("cards"), err = $("error-box");
    cards.textContent = "";
    shown = {};
    cards.setAttribute("data-rendered-by", "js");
    err.textContent = "";
    err.hidden = ok;
    if (ok) {
      body.cards.forEach(function (c) { if (c && typeof c === "object") cards.appendChild(renderCard(c)); });
      if (!body.cards.length) cards.appendChild(el("p", { "class": "empty" }, "No cards: the service stays quiet for this request."));
      var state = null;
      body.cards.some(function (c) { var e = ext(c); if (e.kind === "state" && e.state) { state = e.state; return true; } return false; });
      renderHistory(state);
      $("run-status").textContent = "HTTP 200 · " + body.cards.length + " card" + (body.cards.length === 1 ? "" : "s");
    } else {
      err.appendChild(el("strong", {}, "HTTP " + status + " — " + ((body && body.error) || "error")));
      err.appendChild(el("p", {}, (body && body.detail) || ""));
      renderHistory(null);
      $("run-status").textContent = "HTTP " + status;
    }
    $("raw").textContent = body === undefined ? "" : JSON.stringify(body, null, 2);
    var wrap = $("evidence-link-wrap");
    if (wrap && config.evidenceUrl) {
      var fx = config.fixtures.filter(function (f) { return f.key === current.fixture; })[0];
      wrap.hidden = !(fx && fx.hook === "patient-view");
      if (fx) $("evidence-link").setAttribute("href", config.evidenceUrl.replace("__KEY__", encodeURIComponent(fx.key)));
    }
  }

  function postJson(url, payload) {
    // calls and feedback from this page are marked: never counted as clinicians' feedback
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json",
      "MMCDS-Origin": "sandbox" },
      body: JSON.stringify(payload), credentials: "same-origin" })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var body;
          try { body = text ? JSON.parse(text) : {}; } catch (e) { body = { error: "not JSON", detail: text.slice(0, 300) }; }
          return { status: resp.status, body: body };
        });
      });
  }

  function run() {
    var text = $("request").value, req;
    current.serviceId = $("service").value;
    try { req = JSON.parse(text); } catch (e) {
      renderResponse(400, { error: "malformed JSON", detail: "the request is not valid JSON (" + e.message + ")" });
      return Promise.resolve();
    }
    banner(req);
    $("run-status").textContent = "Running…";
    $("run-btn").disabled = true;
    var call = config.realEndpoints
      ? postJson(urlFor(config.serviceUrl, current.serviceId), req)
      : postJson(config.serviceUrl, { serviceId: current.serviceId, request: req });
    return call.then(function (r) { renderResponse(r.status, r.body); })
      .catch(function (e) { renderResponse(0, { error: "network error", detail: String(e) }); })
      .then(function () { $("run-btn").disabled = false; });
  }

  function loadFixture(key) {
    current.fixture = key;
    var fx = config.fixtures.filter(function (f) { return f.key === key; })[0];
    if (fx) $("service").value = fx.serviceId;
    return fetch(config.fixtureUrl.replace("__KEY__", key), { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        $("request").value = JSON.stringify(data.request, null, 2);
        if (history.replaceState) history.replaceState(null, "", "?fixture=" + encodeURIComponent(key));
        return run();
      })
      .catch(function (e) { renderResponse(0, { error: "fixture not loaded", detail: String(e) }); });
  }

  function describeActions(cardUuid, suggestionUuid) {
    /* What the EHR would now do with the draft orders (the sandbox applies nothing). */
    var card = shown[cardUuid], parts = [];
    var s = card && Array.isArray(card.suggestions) ? card.suggestions.filter(function (x) { return x && x.uuid === suggestionUuid; })[0] : null;
    (s && Array.isArray(s.actions) ? s.actions : []).forEach(function (a) {
      if (!a || typeof a !== "object") return;
      var r = a.resource || {};
      parts.push(a.type + " " + (a.description || conceptText(r.medicationCodeableConcept) || conceptText(r.code) || a.resourceId || r.resourceType || ""));
    });
    return parts.length ? " — the EHR would: " + parts.join("; ") : "";
  }
  function feedback(article, item, okText) {
    var out = article.querySelector(".card-feedback");
    out.className = "card-feedback";
    out.textContent = "Sending feedback…";
    return postJson(urlFor(config.feedbackUrl, current.serviceId), { feedback: [item] }).then(function (r) {
      var good = r.status === 200;
      out.classList.add(good ? "ok" : "bad");
      out.textContent = good
        ? okText + " — feedback " + (r.body && r.body.stored === false ? "validated (not stored)" : "recorded") + " (HTTP 200)"
        : "Feedback refused: HTTP " + r.status + " " + ((r.body && r.body.detail) || "");
      return good;
    }).catch(function (e) { out.classList.add("bad"); out.textContent = "Feedback failed: " + e; return false; });
  }

  $("cards").addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) return;
    var article = btn.closest("[data-card-uuid]");
    if (!article) return;
    var uuid = article.getAttribute("data-card-uuid");
    var now = new Date().toISOString();
    if (btn.classList.contains("suggestion")) {
      btn.disabled = true;
      var sid = btn.getAttribute("data-suggestion-uuid");
      feedback(article, { card: uuid, outcome: "accepted", acceptedSuggestions: [{ id: sid }],
        outcomeTimestamp: now }, "Accepted: " + btn.textContent + describeActions(uuid, sid))
        .then(function (good) { if (!good) btn.disabled = false; });
    } else if (btn.classList.contains("dismiss-btn")) {
      var item = { card: uuid, outcome: "overridden", outcomeTimestamp: now };
      var sel = article.querySelector(".override-select");
      if (sel && sel.value !== "") {
        var opt = sel.options[sel.selectedIndex];
        item.overrideReason = { reason: { code: opt.getAttribute("data-code"), system: opt.getAttribute("data-system"), display: opt.textContent } };
      }
      btn.disabled = true;
      feedback(article, item, "Dismissed" + (item.overrideReason ? ": " + item.overrideReason.reason.display : ""))
        .then(function (good) { if (good) article.classList.add("dismissed"); else btn.disabled = false; });
    }
  });
  $("run-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    run();
  });
  $("fixture").addEventListener("change", function () { loadFixture($("fixture").value); });
  $("service").addEventListener("change", function () { current.serviceId = $("service").value; });
  $("load-btn").hidden = true;
  /* The server already rendered the opening fixture; render the same answer here so what the page
   * shows on every later Run comes from one renderer. */
  if (config.initial.body) renderResponse(config.initial.status, config.initial.body);
  document.body.setAttribute("data-sandbox-ready", "1");
})();
