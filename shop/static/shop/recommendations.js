/* "Recommended for you": fetches the visit's next products from /api/recommendations/ and renders
 * them as product cards (data-source="recommended", data-position, data-model-version and the
 * item's served-item token as data-token, so tracking.js logs their impressions and clicks and
 * they count for the model), with a "Why these?" disclosure. Refreshes on
 * pageshow (also when coming back from the cache), when the tab becomes visible again, and after
 * a product-card click or an add-to-cart, without reloading the page. */
(function () {
  "use strict";
  var SHOP = window.SHOP || {};
  var API = "/api/recommendations/";
  var inflight = null;

  function sections() {
    return Array.prototype.slice.call(document.querySelectorAll("#recommended-for-you"));
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function card(item, position, version) {
    var p = item.product;
    // During an experiment the item names its arm's source and version (the token binds both).
    var source = item.source || "recommended";
    if (item.model_version !== undefined) { version = item.model_version; }
    var article = el("article", {
      "class": "product-card", "data-product": String(p.id), "data-source": source,
      "data-position": String(position), "data-model-version": version || "", "data-score": String(item.score)
    });
    if (item.token) { article.setAttribute("data-token", item.token); }
    var link = el("a", {"class": "product-link", href: "/products/" + p.id + "/?src=" + encodeURIComponent(source)});
    link.appendChild(el("img", {src: p.image || ("/products/" + p.id + "/image.svg"), alt: p.name, width: "320",
                                height: "240", loading: "lazy", decoding: "async"}));
    link.appendChild(el("span", {"class": "product-name"}, p.name));
    article.appendChild(link);
    var meta = [p.brand ? p.brand.charAt(0).toUpperCase() + p.brand.slice(1) : "", p.category_name || p.category_slug || ""]
      .filter(Boolean).join(" · ");
    article.appendChild(el("p", {"class": "product-meta"}, meta));
    article.appendChild(el("p", {"class": "product-price"}, p.price + " " + (p.currency || "")));
    return article;
  }

  var MODEL_NAMES = {gru4rec: "GRU4Rec", vsknn: "V-SKNN"};

  // A hybrid's answer: each model's share of the item's fused score, e.g. " (GRU4Rec 62%, V-SKNN 38%)".
  function shareText(shares) {
    if (!shares) { return ""; }
    return " (" + Object.keys(shares).map(function (name) {
      return (MODEL_NAMES[name] || name) + " " + Math.round(100 * shares[name]) + "%";
    }).join(", ") + ")";
  }

  function why(data) {
    var ex = data.explanation || {};
    var details = el("details", {"class": "why"});
    details.appendChild(el("summary", {}, "Why these?"));
    var reason = (ex.reason || data.strategy) + (data.model_version ? " (model " + data.model_version + ")" : "");
    details.appendChild(el("p", {"class": "why-text"}, reason.charAt(0).toUpperCase() + reason.slice(1) + "."));
    var facts = el("ul", {"class": "why-facts"});
    facts.appendChild(el("li", {}, "Answered by: " + data.strategy));
    facts.appendChild(el("li", {}, "Your recent items used: " + ((ex.session_items_used || []).length)));
    if ((ex.session_items_skipped || []).length) {
      facts.appendChild(el("li", {}, "Items the model does not know yet (skipped): " + ex.session_items_skipped.length));
    }
    (ex.scores || []).forEach(function (s) {
      facts.appendChild(el("li", {}, s.name + ": score " + Number(s.score).toFixed(3) + shareText(s.shares)));
    });
    details.appendChild(facts);
    return details;
  }

  function render(section, data) {
    var row = section.querySelector(".product-row");
    if (!row) { row = el("div", {"class": "product-row"}); section.appendChild(row); }
    var cards = data.items.map(function (item, i) { return card(item, i, data.model_version); });
    row.replaceChildren.apply(row, cards);
    var old = section.querySelector("details.why");
    if (old) { old.remove(); }
    section.appendChild(why(data));
    var empty = section.querySelector("p.empty");
    if (empty) { empty.remove(); }
    section.setAttribute("data-strategy", data.strategy);
    if (data.experiment) {
      section.setAttribute("data-experiment", String(data.experiment.id));
      section.setAttribute("data-arm", data.experiment.arm);
    } else {
      section.removeAttribute("data-experiment");
      section.removeAttribute("data-arm");
    }
    section.hidden = data.items.length === 0;
  }

  function refresh() {
    var targets = sections();
    if (!targets.length) { return; }
    var k = targets[0].getAttribute("data-k") || String(targets[0].querySelectorAll(".product-card").length || 6);
    var params = new URLSearchParams({k: k, explain: "true"});
    if (SHOP.visitId) { params.set("session", SHOP.visitId); }
    var category = targets[0].getAttribute("data-category");
    if (category) { params.set("category", category); }
    if (inflight) { inflight.abort(); }
    inflight = "AbortController" in window ? new AbortController() : null;
    fetch(API + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"},
                                         signal: inflight ? inflight.signal : undefined})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { targets.forEach(function (s) { render(s, data); }); } })
      .catch(function () { /* recommendations never break the page */ });
  }

  // After an interaction the visit's history changed: ask again once the event has been recorded.
  function soon() { setTimeout(refresh, 400); }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest(".product-card a.product-link")) { soon(); }
  }, true);
  document.addEventListener("submit", function (e) {
    if (e.target.classList && e.target.classList.contains("add-to-cart")) { soon(); }
  }, true);
  document.addEventListener("shop:interaction", soon);
  window.addEventListener("pageshow", function (e) {
    // a fresh page already has server-rendered cards on the product page; the index has none
    if (e.persisted || !document.querySelector("#recommended-for-you .product-card")) { refresh(); }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
})();
