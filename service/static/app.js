// The demo page: pick or search an article, read it, see its "Related Articles" box.
// Every piece of data is inserted with textContent (never innerHTML), so article text cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { searchTimer: null, loadToken: 0 };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function articleHash(id) {
    return "#/article/" + encodeURIComponent(id);
  }

  function apiPath(id) {
    // Ids may contain slashes: the API routes them with a path converter, so encode each character safely.
    return "/v1/articles/" + encodeURIComponent(id);
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "HTTP " + response.status;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function formatDate(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }

  function gapText(days) {
    const n = Math.round(Math.abs(days));
    if (n === 0) return "same day";
    return n + (n === 1 ? " day " : " days ") + (days < 0 ? "earlier" : "later");
  }

  // One chip per reason; unknown reason types still show their name.
  function reasonChip(reason) {
    const chip = el("li", "chip chip-" + String(reason.type || "other").replace(/[^a-z_]/gi, ""));
    let text;
    switch (reason.type) {
      case "shared_terms":
        text = "Shares: " + (reason.terms || []).join(", ");
        break;
      case "shared_tags":
        text = "Tags: " + (reason.tags || []).join(", ");
        break;
      case "same_section":
        text = "Also in " + reason.section;
        break;
      case "similar_meaning":
        text = "Similar meaning " + Math.round((reason.score || 0) * 100) + "%";
        break;
      case "published_gap":
        text = gapText(reason.days || 0);
        break;
      default:
        text = String(reason.type || "related").replace(/_/g, " ");
    }
    chip.textContent = text;
    return chip;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  // -- picker ---------------------------------------------------------------------------------------
  async function search(query) {
    const params = new URLSearchParams({ query: query, limit: "50" });
    try {
      const data = await getJSON("/v1/articles?" + params.toString());
      renderPicker(data);
      showError("");
    } catch (err) {
      $("picker-count").textContent = "";
      $("picker-list").replaceChildren();
      showError(err.status === 503 ? "The index is not loaded yet: " + err.message : err.message);
    }
  }

  function renderPicker(data) {
    $("index-version").textContent = data.index_version ? "index " + data.index_version : "";
    $("picker-count").textContent = data.total + (data.total === 1 ? " article" : " articles");
    const list = $("picker-list");
    list.replaceChildren();
    for (const item of data.items) {
      const li = el("li", "picker-item");
      const link = el("a", "picker-link");
      link.href = articleHash(item.id);
      link.dataset.id = item.id;
      link.appendChild(el("span", "section-label small", item.section || ""));
      link.appendChild(el("span", "picker-title", item.title));
      link.appendChild(el("time", "picker-date", formatDate(item.published_at)));
      li.appendChild(link);
      list.appendChild(li);
    }
    markCurrent();
  }

  function markCurrent() {
    const current = currentId();
    for (const link of document.querySelectorAll(".picker-link")) {
      link.classList.toggle("current", link.dataset.id === current);
    }
  }

  // -- article and related box ------------------------------------------------------------------------
  function currentId() {
    const match = location.hash.match(/^#\/article\/(.+)$/);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch (_) {
      return null;
    }
  }

  async function route() {
    const id = currentId();
    markCurrent();
    if (!id) {
      $("article").hidden = true;
      $("related-box").hidden = true;
      $("empty").hidden = false;
      document.body.dataset.state = "home";
      return;
    }
    const token = ++state.loadToken;
    document.body.dataset.state = "loading";
    try {
      const [article, related] = await Promise.all([
        getJSON(apiPath(id)),
        getJSON(apiPath(id) + "/related?k=6"),
      ]);
      if (token !== state.loadToken) return; // a newer navigation won
      renderArticle(article);
      renderRelated(related);
      showError("");
      document.body.dataset.state = "article";
      window.scrollTo(0, 0);
    } catch (err) {
      if (token !== state.loadToken) return;
      $("article").hidden = true;
      $("related-box").hidden = true;
      $("empty").hidden = true;
      showError(err.status === 404 ? "No article with id " + id + "." : err.message);
      document.body.dataset.state = "error";
    }
  }

  function renderArticle(a) {
    $("empty").hidden = true;
    $("article").hidden = false;
    $("article").dataset.id = a.id;
    $("article-section").textContent = a.section || "";
    $("article-title").textContent = a.title;
    $("article-title").dataset.id = a.id;
    const date = $("article-date");
    date.textContent = formatDate(a.published_at);
    date.dateTime = a.published_at || "";
    $("article-authors").textContent = a.authors && a.authors.length ? " · " + a.authors.join(", ") : "";
    $("article-summary").textContent = a.summary || "";
    const body = $("article-body");
    body.replaceChildren();
    for (const paragraph of (a.body || "").split(/\n\s*\n|\n/)) {
      if (paragraph.trim()) body.appendChild(el("p", null, paragraph.trim()));
    }
    $("article-tags").textContent = a.tags && a.tags.length ? "Tags: " + a.tags.join(", ") : "";
    document.title = a.title + " — related articles demo";
  }

  function renderRelated(data) {
    $("index-version").textContent = "index " + data.index_version;
    const box = $("related-box");
    const list = $("related-list");
    list.replaceChildren();
    for (const item of data.items) {
      const li = el("li", "related-item");
      li.dataset.id = item.id;
      li.appendChild(el("p", "section-label small", item.section || ""));
      const link = el("a", "related-link", item.title);
      link.href = articleHash(item.id);
      link.dataset.id = item.id;
      li.appendChild(link);
      const meta = el("p", "related-meta");
      meta.appendChild(el("time", null, formatDate(item.published_at)));
      meta.appendChild(el("span", "score", "score " + Number(item.score).toFixed(2)));
      li.appendChild(meta);
      const chips = el("ul", "chips");
      for (const reason of item.reasons || []) chips.appendChild(reasonChip(reason));
      li.appendChild(chips);
      list.appendChild(li);
    }
    $("related-empty").hidden = data.items.length > 0;
    box.hidden = false;
  }

  // -- wiring -----------------------------------------------------------------------------------------
  $("search").addEventListener("input", (event) => {
    clearTimeout(state.searchTimer);
    const query = event.target.value;
    state.searchTimer = setTimeout(() => search(query), 150);
  });
  window.addEventListener("hashchange", route);
  search("");
  route();
})();
