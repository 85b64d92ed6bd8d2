// The demo page: pick or search an article, read it, see its "Related Articles" box.
// The box is the drop-in widget (widget.js), as a site embeds it; this file only tells it which article is shown.
// Every piece of data is inserted with textContent (never innerHTML), so article text cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const state = { searchTimer: null, loadToken: 0, query: "", shown: 0, total: 0 };

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

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  // -- picker ---------------------------------------------------------------------------------------
  async function search(query, more) {
    const offset = more ? state.shown : 0;
    const params = new URLSearchParams({ query: query, limit: String(PAGE), offset: String(offset) });
    try {
      const data = await getJSON("/v1/articles?" + params.toString());
      state.query = query;
      renderPicker(data, offset);
      showError("");
    } catch (err) {
      $("picker-count").textContent = "";
      $("picker-list").replaceChildren();
      showError(err.status === 503 ? "The index is not loaded yet: " + err.message : err.message);
    }
  }

  function renderPicker(data, offset) {
    $("index-version").textContent = data.index_version ? "index " + data.index_version : "";
    const list = $("picker-list");
    if (!offset) list.replaceChildren();
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
    state.shown = offset + data.items.length;
    state.total = data.total;
    const noun = data.total === 1 ? " article" : " articles";
    $("picker-count").textContent =
      state.shown < data.total ? "Showing " + state.shown + " of " + data.total + noun : data.total + noun;
    $("picker-more").hidden = state.shown >= data.total;
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
      $("related-empty").hidden = true;
      $("empty").hidden = false;
      document.body.dataset.state = "home";
      return;
    }
    const token = ++state.loadToken;
    document.body.dataset.state = "loading";
    try {
      const article = await getJSON(apiPath(id));
      if (token !== state.loadToken) return; // a newer navigation won
      renderArticle(article);
      showRelated(article.id);
      showError("");
      document.body.dataset.state = "article";
      window.scrollTo(0, 0);
    } catch (err) {
      if (token !== state.loadToken) return;
      $("article").hidden = true;
      $("related-box").hidden = true;
      $("related-empty").hidden = true;
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

  // The widget renders the box; an empty box renders nothing, and the page says so in its own words.
  function showRelated(id) {
    const box = $("related-box");
    box.setAttribute("data-article-id", id);
    box.hidden = false;
    $("related-empty").hidden = true;
    const refresh = () => window.RelatedArticles && window.RelatedArticles.refresh(box);
    if (window.RelatedArticles) refresh();
    else window.addEventListener("load", refresh, { once: true });
  }

  new MutationObserver(() => {
    const box = $("related-box");
    $("related-empty").hidden = box.hidden || box.getAttribute("data-ra-state") !== "empty";
  }).observe($("related-box"), { attributes: true, attributeFilter: ["data-ra-state"] });

  // -- wiring -----------------------------------------------------------------------------------------
  $("search").addEventListener("input", (event) => {
    clearTimeout(state.searchTimer);
    const query = event.target.value;
    state.searchTimer = setTimeout(() => search(query, false), 150);
  });
  $("picker-more").addEventListener("click", () => search(state.query, true));
  window.addEventListener("hashchange", route);
  search("", false);
  route();
})();
