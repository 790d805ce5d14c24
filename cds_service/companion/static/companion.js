/* The companion page: one evaluation's evidence, score calculators and pathways.
 *
 * The page URL carries only an opaque, signed reference (?ref=…). Its data comes from this service
 * (api/evaluation?ref=…). When an EHR launches it with SMART (launch + iss) and fhirclient is installed
 * (static/vendor/fhir-client.js, optional), the patient's name is read for the header; everything else
 * works without it. Text from the record is always inserted as text, never as HTML.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var REF_KEY = "posterior-knee-cds.ref";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function fmt(points) {
    var sign = points > 0 ? "+" : "";
    return sign + (Math.round(points * 10) / 10).toString();
  }

  function evidenceLine(evidence) {
    if (!evidence) return null;
    var parts = [evidence.label];
    if (evidence.when) parts.push(evidence.when + (evidence.date && evidence.when !== evidence.date ? " (" + evidence.date + ")" : ""));
    var line = el("span", {}, [parts.join(", ")]);
    if (evidence.code) line.appendChild(el("span", { className: "ref", text: " code " + evidence.code }));
    if (evidence.reference) line.appendChild(el("span", { className: "ref", text: " · " + evidence.reference }));
    if (evidence.quote) line.appendChild(el("span", { className: "quote", text: "“" + evidence.quote + "”" }));
    return line;
  }

  function likely(table, score) {
    return table.strict ? score > table.threshold : score >= table.threshold;
  }

  function pathwayList(steps, id) {
    var list = el("ol", { className: "pathway", id: id });
    (steps || []).forEach(function (step) { list.appendChild(el("li", { text: step })); });
    return list;
  }

  function renderCalculator(card) {
    var table = card.table;
    var key = table.key;
    var wrap = el("div", { className: "calculator", id: "calc-" + key });
    wrap.appendChild(el("h3", {}, [el("span", { className: "calculator-label", text: "Calculator" }), " " + table.title +
      (table.leg ? " — " + table.leg + " leg" : "")]));
    wrap.appendChild(el("p", { className: "muted", text: "Ticked items score. Items the record documents are ticked; " +
      "tick an undocumented item once you have examined for it, and the score and pathway change here (not in the record)." }));
    var body = el("tbody");
    table.items.forEach(function (item) {
      var box = el("input", { type: "checkbox", "data-item": item.key, "data-points": String(item.points),
                              id: key + "-" + item.key });
      box.checked = item.state === "documented";
      var state = { documented: "documented in the record", absent: "documented as absent",
                    "not-documented": item.judgement ? "clinical judgement: not read from the record" : "not documented" }[item.state];
      var what = el("td", {}, [el("label", { "for": key + "-" + item.key }, [box, item.text]),
                              el("span", { className: "state", text: state }), evidenceLine(item.evidence)]);
      body.appendChild(el("tr", { className: item.state }, [what, el("td", { className: "points", text: fmt(item.points) })]));
    });
    var scoreNode = el("strong", { id: "score-" + key });
    var total = el("td", { className: "points" }, [scoreNode]);
    body.appendChild(el("tr", {}, [el("td", {}, [el("strong", { text: "Total" })]), total]));
    wrap.appendChild(el("table", {}, [el("thead", {}, [el("tr", {}, [el("th", { text: "Item" }), el("th", { text: "Points" })])]), body]));
    var result = el("p", { className: "result", id: "result-" + key, "aria-live": "polite" });
    wrap.appendChild(result);
    var changed = el("p", { className: "muted", id: "changed-" + key });
    wrap.appendChild(changed);
    var pathway = card.pathway || {};
    var heading = el("h3", { id: "pathway-title-" + key });
    wrap.appendChild(heading);
    var list = pathwayList(pathway.current, "pathway-" + key);
    wrap.appendChild(list);
    if (!pathway.switches) {
      heading.textContent = "Pathway";
      wrap.appendChild(el("p", { className: "notice", text: "Here the score does not decide the pathway " +
        "(pregnancy or a scan result does): the calculator shows the score only." }));
    }

    function update() {
      var score = 0, ticked = 0;
      Array.prototype.forEach.call(wrap.querySelectorAll("input[data-item]"), function (input) {
        var item = table.items.filter(function (i) { return i.key === input.getAttribute("data-item"); })[0];
        if (input.checked) score += Number(input.getAttribute("data-points"));
        if (input.checked !== (item.state === "documented")) ticked += 1;
      });
      score = Math.round(score * 10) / 10;
      scoreNode.textContent = String(score);
      var isLikely = likely(table, score);
      result.className = "result " + (isLikely ? "likely" : "unlikely");
      result.textContent = table.name + " " + score + ": " + (isLikely ? "likely" : "unlikely") + " (" +
        (isLikely ? (table.strict ? "above " : "at or above ") : (table.strict ? "at or below " : "below ")) + table.threshold + ")";
      changed.textContent = ticked ? ticked + " item(s) changed on this page from what the record documents." : "As documented in the record.";
      if (pathway.switches) {
        var title = (isLikely ? pathway.likelyTitle : pathway.unlikelyTitle) || "";
        heading.textContent = "Pathway: " + title.split("{score}").join(String(score));
        var steps = isLikely ? pathway.likely : pathway.unlikely;
        var fresh = pathwayList(steps, "pathway-" + key);
        list.replaceWith(fresh);
        list = fresh;
      }
    }
    wrap.addEventListener("change", update);
    update();
    return wrap;
  }

  function renderPerc(perc) {
    var wrap = el("div", { className: "calculator", id: "perc" });
    wrap.appendChild(el("h3", {}, [el("span", { className: "calculator-label", text: "Calculator" }),
      " PERC — only if your clinical pre-test estimate of PE is below " + perc.pretestBelow + " %"]));
    wrap.appendChild(el("p", { className: "muted", text: "Pulmonary embolism rule-out criteria (NICE NG158). With a low " +
      "pre-test estimate and all eight criteria absent, PE is ruled out without a D-dimer. Tick each criterion that is present." }));
    var body = el("tbody");
    perc.criteria.forEach(function (criterion) {
      var box = el("input", { type: "checkbox", "data-criterion": criterion.key, id: "perc-" + criterion.key });
      box.checked = criterion.state === "present";
      var state = { present: "present in the record", absent: "absent in the record", unknown: "not documented: confirm" }[criterion.state];
      body.appendChild(el("tr", { className: criterion.state === "unknown" ? "not-documented" : criterion.state === "present" ? "documented" : "absent",
                                  "data-state": criterion.state }, [el("td", {}, [
        el("label", { "for": "perc-" + criterion.key }, [box, criterion.text]), el("span", { className: "state", text: state }),
        evidenceLine(criterion.evidence)])]));
    });
    wrap.appendChild(el("table", {}, [body]));
    var result = el("p", { className: "result", id: "perc-result", "aria-live": "polite" });
    wrap.appendChild(result);
    function update() {
      var present = wrap.querySelectorAll("input[data-criterion]:checked").length;
      var unknown = Array.prototype.filter.call(wrap.querySelectorAll("tr[data-state=unknown] input"), function (i) { return !i.checked; }).length;
      if (present) {
        result.className = "result likely";
        result.textContent = "PERC positive (" + present + " criterion/criteria present): PERC does not rule out PE; follow PE Wells.";
      } else {
        result.className = "result unlikely";
        result.textContent = "PERC negative" + (unknown ? " if the " + unknown + " undocumented criterion/criteria are absent (confirm each)" : "") +
          ": with a pre-test estimate below " + perc.pretestBelow + " %, PE is ruled out without a D-dimer.";
      }
    }
    wrap.addEventListener("change", update);
    update();
    return wrap;
  }

  function renderCard(card) {
    var section = el("section", { className: "card " + card.indicator, "data-topic": card.topic });
    section.appendChild(el("h2", { text: card.display }));
    section.appendChild(el("p", { className: "summary", text: card.summary }));
    if (card.table) section.appendChild(renderCalculator(card));
    if (card.perc) section.appendChild(renderPerc(card.perc));
    if (card.evidence && card.evidence.length) {
      section.appendChild(el("h3", { text: "Evidence" }));
      var list = el("ul", { className: "evidence" });
      card.evidence.forEach(function (e) { list.appendChild(el("li", {}, [evidenceLine(e)])); });
      section.appendChild(list);
    }
    if (card.notDocumented && card.notDocumented.length) {
      section.appendChild(el("p", {}, [el("strong", { text: "Not documented: " }), card.notDocumented.join("; ")]));
    }
    if (!card.table) {
      section.appendChild(el("h3", { text: "Pathway" }));
      section.appendChild(pathwayList(card.pathway.current, "pathway-" + card.topic));
    }
    if (card.thresholds && card.thresholds.length) {
      section.appendChild(el("h3", { text: "Thresholds used" }));
      var thresholds = el("ul", { className: "thresholds" });
      card.thresholds.forEach(function (t) { thresholds.appendChild(el("li", {}, [t.text + " — " + t.meaning + " ",
        el("span", { className: "muted", text: "(" + t.source + ")" })])); });
      section.appendChild(thresholds);
    }
    if (card.links && card.links.length) {
      var links = el("p", { className: "muted" }, ["Guidelines: "]);
      card.links.forEach(function (link, i) {
        if (i) links.appendChild(document.createTextNode(" · "));
        var a = el("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", text: link.label });
        links.appendChild(a);
      });
      section.appendChild(links);
    }
    return section;
  }

  function render(data) {
    var main = document.getElementById("main");
    main.textContent = "";
    var evaluated = new Date(data.evaluatedAt);
    document.getElementById("meta").textContent = "Evaluated " + evaluated.toLocaleString() +
      (data.age !== null && data.age !== undefined ? " · age " + data.age : "") + " · knowledge version " + data.knowledgeVersion;
    data.cards.forEach(function (card) { main.appendChild(renderCard(card)); });
    if (data.otherCards && data.otherCards.length) {
      main.appendChild(el("h2", { text: "Other cards of this evaluation" }));
      var others = el("ul");
      data.otherCards.forEach(function (c) { others.appendChild(el("li", { text: "[" + c.indicator + "] " + c.summary })); });
      main.appendChild(others);
    }
    if (data.unread && data.unread.length) {
      main.appendChild(el("p", { className: "notice", text: "Not read (check these in the chart): " + data.unread.join("; ") }));
    }
    document.title = "Posterior knee pain: " + (data.cards[0] ? data.cards[0].display : "evaluation");
  }

  function showStatus(text) {
    var main = document.getElementById("main");
    main.textContent = "";
    main.appendChild(el("p", { id: "status", role: "status", className: "notice", text: text }));
  }

  function load(ref) {
    if (!ref) {
      showStatus("No evaluation named: open this page from a card's link.");
      return;
    }
    fetch("api/evaluation?ref=" + encodeURIComponent(ref), { credentials: "omit", cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) throw new Error("expired");
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(render)
      .catch(function (error) {
        showStatus(error.message === "expired"
          ? "This evaluation has expired or is unknown: evaluations are kept for a limited time. Open the patient's record again for a new one."
          : "The evaluation could not be loaded (" + error.message + "). Try again.");
      });
  }

  /* Optional SMART EHR launch: the patient's name for the header, when fhirclient is installed. */
  function smartName() {
    var launching = params.get("launch") && params.get("iss");
    var returning = params.get("code") && params.get("state");
    if (!launching && !returning) return;
    var script = document.createElement("script");
    script.src = "static/vendor/fhir-client.js";
    script.onload = function () {
      if (!window.FHIR) return;
      if (launching) {
        window.FHIR.oauth2.authorize({ clientId: "posterior-knee-cds-companion", scope: "launch openid fhirUser patient/Patient.read",
                                       redirectUri: window.location.pathname }).catch(function () {});
        return;
      }
      window.FHIR.oauth2.ready().then(function (client) { return client.patient.read(); }).then(function (patient) {
        var name = (patient.name || [])[0] || {};
        var text = name.text || [(name.given || []).join(" "), name.family].filter(Boolean).join(" ");
        if (text) {
          var node = document.getElementById("patient");
          node.textContent = "Patient: " + text;
          node.hidden = false;
        }
      }).catch(function () {});
    };
    document.head.appendChild(script);
  }

  var ref = params.get("ref");
  try {
    if (ref) window.sessionStorage.setItem(REF_KEY, ref);
    else ref = window.sessionStorage.getItem(REF_KEY);
  } catch (e) { /* storage may be off: the reference in the URL is enough */ }
  load(ref);
  smartName();
})();
