/* Storefront grid: infinite scroll. When the pager comes into view, fetch the next page from
   /api/products/ and append cards with the same markup as the server-rendered ones (the tracking
   contract: article.product-card[data-product][data-source][data-position][data-model-version]
   with a.product-link). Without JS the pager links still work. */
(function () {
  "use strict";
  var grid = document.getElementById("product-grid");
  var sentinel = document.getElementById("grid-sentinel");
  if (!grid || !sentinel || !("IntersectionObserver" in window) || !window.fetch) return;

  var page = parseInt(grid.dataset.page, 10) || 1;
  var size = parseInt(grid.dataset.size, 10) || 24;
  var hasNext = grid.dataset.hasNext === "1";
  var loading = false;
  var maxPages = 20; // stop appending after this many pages; the pager takes over (keeps the DOM small)
  var loaded = 0;

  function apiUrl(p) {
    var params = new URLSearchParams({page: String(p), page_size: String(size)});
    if (grid.dataset.category) params.set("category", grid.dataset.category);
    if (grid.dataset.search) params.set("search", grid.dataset.search);
    if (grid.dataset.ordering && grid.dataset.ordering !== "id") params.set("ordering", grid.dataset.ordering);
    return grid.dataset.api + "?" + params.toString();
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function card(p, position) {
    var article = el("article", "product-card");
    article.dataset.product = p.id;
    article.dataset.source = "grid";
    article.dataset.position = String(position);
    article.dataset.modelVersion = "";
    var link = el("a", "product-link");
    link.href = "/products/" + p.id + "/?src=grid";
    var img = el("img");
    img.src = p.image; img.alt = p.name; img.width = 320; img.height = 240;
    img.loading = "lazy"; img.decoding = "async";
    link.appendChild(img);
    link.appendChild(el("span", "product-name", p.name));
    article.appendChild(link);
    var meta = [p.brand ? p.brand.charAt(0).toUpperCase() + p.brand.slice(1) : "", p.category_name || ""].filter(Boolean);
    article.appendChild(el("p", "product-meta", meta.join(" · ")));
    article.appendChild(el("p", "product-price", p.price + " " + p.currency));
    return article;
  }

  function updatePager() {
    var next = document.getElementById("next-link");
    var no = document.querySelector(".page-no");
    if (no) no.textContent = "Page " + page;
    if (next) {
      if (hasNext) { next.href = next.href.replace(/([?&]page=)\d+/, "$1" + (page + 1)); }
      else { next.replaceWith(el("span", "disabled", "Next →")); }
    }
  }

  function loadMore() {
    if (loading || !hasNext || loaded >= maxPages) return;
    loading = true;
    sentinel.classList.add("loading");
    fetch(apiUrl(page + 1), {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        var start = grid.querySelectorAll(".product-card").length;
        var fragment = document.createDocumentFragment();
        var added = [];
        data.results.forEach(function (p, i) { var c = card(p, start + i); added.push(c); fragment.appendChild(c); });
        grid.appendChild(fragment);
        page += 1; loaded += 1;
        hasNext = Boolean(data.next);
        updatePager();
        // Lets tracking.js observe the new cards.
        grid.dispatchEvent(new CustomEvent("shop:cards-added", {bubbles: true, detail: {cards: added}}));
      })
      .catch(function () { hasNext = false; })
      .then(function () {
        loading = false;
        sentinel.classList.remove("loading");
        // The observer only fires on changes: if the sentinel is still near the viewport, keep going.
        if (sentinel.getBoundingClientRect().top < window.innerHeight + 600) loadMore();
      });
  }

  new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; })) loadMore();
  }, {rootMargin: "600px 0px"}).observe(sentinel);
})();
