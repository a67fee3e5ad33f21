/* Client-side tracking: impressions of product cards actually seen and clicks on them, batched
 * and sent to the events API (window.SHOP = {visitId, eventsUrl, csrfToken}).
 *
 * Markup contract: <article class="product-card" data-product="ID" data-source="grid"
 * data-position="N" data-model-version="..." [data-token="..."]> with an <a class="product-link">
 * inside. data-token is the served-item token of a recommended card: without it the API keeps
 * neither the card's source nor its model version. Cards added later (infinite scroll,
 * recommendation refresh) are picked up by a MutationObserver.
 *
 * Every batch carries its own batch_id (the API's idempotency key, in the body because sendBeacon
 * cannot set headers): a batch that is sent again, by the retry below or by the browser, is
 * stored once.
 */
(function () {
  "use strict";
  var SHOP = window.SHOP || {};
  if (!SHOP.visitId || !SHOP.eventsUrl) { return; }

  var MAX_BATCH = 500;          // the API's limit per request
  var FLUSH_MS = 2000;          // send at most every 2 s while the page is open
  var VISIBLE_RATIO = 0.5;      // an impression: half the card in the viewport...
  var VISIBLE_MS = 300;         // ...for at least 300 ms
  var RETRY_MS = 3000;          // a failed batch is sent again (same batch_id) after 3 s, twice at most
  var queue = [];
  var timer = null;
  var seen = new WeakSet();     // cards already counted (once per card per page view)
  var pending = new WeakMap();  // card -> timeout id while it is becoming visible

  function cardData(card) {
    var product = parseInt(card.getAttribute("data-product"), 10);
    if (!(product > 0)) { return null; }
    var event = { product: product, source: card.getAttribute("data-source") || "" };
    var position = parseInt(card.getAttribute("data-position"), 10);
    if (position >= 0) { event.position = position; }
    var model = card.getAttribute("data-model-version");
    if (model) { event.model_version = model; }
    var token = card.getAttribute("data-token");
    if (token) { event.token = token; }
    return event;
  }

  function batchId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) { crypto.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); } }
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function push(type, card) {
    var event = cardData(card);
    if (!event) { return; }
    event.type = type;
    event.timestamp = new Date().toISOString();
    queue.push(event);
    if (queue.length >= MAX_BATCH) { flush(false); }
    else if (!timer) { timer = setTimeout(function () { flush(false); }, FLUSH_MS); }
  }

  function send(payload, leaving, retries) {
    fetch(SHOP.eventsUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": SHOP.csrfToken || "" },
      body: payload,
      credentials: "same-origin",
      keepalive: leaving
    }).then(function (r) {
      if ((r.status >= 500 || r.status === 429) && retries > 0) { retry(payload, retries); }
    }).catch(function () {
      // No answer (network, timeout): the batch may or may not have arrived. The same body,
      // batch_id included, is safe to send again.
      if (retries > 0) { retry(payload, retries); }
    });
  }

  function retry(payload, retries) {
    setTimeout(function () { send(payload, false, retries - 1); }, RETRY_MS);
  }

  function flush(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) {
      var payload = JSON.stringify({ session: SHOP.visitId, batch_id: batchId(), events: queue.splice(0, MAX_BATCH) });
      // sendBeacon survives the page going away; it can only send CORS-safelisted content
      // types, hence text/plain (the API parses it as JSON). No cookie-based auth is used there.
      if (leaving && navigator.sendBeacon &&
          navigator.sendBeacon(SHOP.eventsUrl, new Blob([payload], { type: "text/plain;charset=UTF-8" }))) {
        continue;
      }
      send(payload, leaving, leaving ? 0 : 2);
    }
  }

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      var card = entry.target;
      if (seen.has(card)) { return; }
      if (entry.isIntersecting && entry.intersectionRatio >= VISIBLE_RATIO) {
        if (!pending.has(card)) {
          pending.set(card, setTimeout(function () {
            pending.delete(card);
            if (!seen.has(card)) {
              seen.add(card);
              observer.unobserve(card);
              push("impression", card);
            }
          }, VISIBLE_MS));
        }
      } else if (pending.has(card)) {
        clearTimeout(pending.get(card));
        pending.delete(card);
      }
    });
  }, { threshold: [0, VISIBLE_RATIO, 1] }) : null;

  function observe(root) {
    if (!observer || !root || root.nodeType !== 1) { return; }
    if (root.matches && root.matches("article.product-card")) { observer.observe(root); }
    var cards = root.querySelectorAll ? root.querySelectorAll("article.product-card") : [];
    for (var i = 0; i < cards.length; i++) { if (!seen.has(cards[i])) { observer.observe(cards[i]); } }
  }

  // One delegated listener covers cards added later too. Middle-click (auxclick) opens a tab.
  function onClick(e) {
    if (e.type === "auxclick" && e.button !== 1) { return; }
    var link = e.target.closest && e.target.closest("a.product-link");
    var card = link && link.closest("article.product-card");
    if (card) { push("click", card); flush(true); }  // the page may unload right after
  }
  document.addEventListener("click", onClick, true);
  document.addEventListener("auxclick", onClick, true);

  if ("MutationObserver" in window) {
    new MutationObserver(function (mutations) {
      mutations.forEach(function (m) {
        for (var i = 0; i < m.addedNodes.length; i++) { observe(m.addedNodes[i]); }
      });
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  // pagehide is the reliable "leaving" signal (bfcache, mobile); unload/visibilitychange as backup.
  window.addEventListener("pagehide", function () { flush(true); });
  window.addEventListener("unload", function () { flush(true); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { flush(true); }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { observe(document.body); });
  } else {
    observe(document.body);
  }

  window.SHOP.tracking = { flush: flush, queue: queue };
})();
