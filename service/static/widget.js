/*! related-articles widget: the "Related articles" box for any page. No dependencies.
 *
 *   <div data-related-articles data-url="https://news.example/world/story"></div>
 *   <script src="https://related.example/widget.js" async></script>
 *
 * Options (data-* on the box): url or article-id (one of them), k (items, default 6), title ("Related articles"),
 * fallback-title ("More news"), api (the API's origin; default: where this script came from), link-template
 * (e.g. "#/article/{id}": links built from ids instead of the articles' URLs), reasons (show why each item is
 * related), and the API's options section, exclude-section, tag, language, window, freshness, diversity,
 * min-relevance, fill. Theme with CSS custom properties (--ra-accent, --ra-text, --ra-muted, --ra-font,
 * --ra-heading-font, --ra-gap, --ra-radius, --ra-image-ratio, --ra-min-column).
 *
 * Text from the API is only ever inserted as text (textContent); links and images only when they are http(s).
 * The box asks the API only when it comes within 400px of the viewport, renders nothing when there is nothing
 * to show, and reports impressions (when at least half of it is visible) and clicks to the API's /v1/events.
 */
(function () {
  "use strict";
  var VERSION = "1";
  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, location.href) : null;
  var OPTIONS = ["section", "exclude-section", "tag", "language", "window", "freshness", "diversity", "min-relevance", "fill"];
  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var count = 0;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
    return node;
  }

  function safeUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function apiOrigin(box) {
    var given = box.getAttribute("data-api");
    if (given) return given.replace(/\/+$/, "");
    return scriptUrl ? scriptUrl.origin : location.origin;
  }

  function visitor() {
    try {
      var id = localStorage.getItem("ra-visitor");
      if (!id) {
        id = (crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
        localStorage.setItem("ra-visitor", id);
      }
      return id;
    } catch (e) {
      return "";
    }
  }

  function requestUrl(box) {
    var base = apiOrigin(box);
    var params = new URLSearchParams();
    var id = box.getAttribute("data-article-id");
    var path;
    if (id) {
      path = "/v1/articles/" + encodeURIComponent(id) + "/related";
    } else {
      path = "/v1/related";
      params.set("url", box.getAttribute("data-url") || location.href);
    }
    params.set("k", box.getAttribute("data-k") || "6");
    OPTIONS.forEach(function (name) {
      var value = box.getAttribute("data-" + name);
      if (value) params.set(name.replace(/-/g, "_"), value);
    });
    var who = visitor();
    if (who) params.set("visitor", who);
    return base + path + "?" + params.toString();
  }

  function ensureStyle() {
    if (document.getElementById("ra-style") || !scriptUrl) return;
    var link = document.createElement("link");
    link.id = "ra-style";
    link.rel = "stylesheet";
    link.href = scriptUrl.href.replace(/widget\.js(\?.*)?$/, "widget.css");
    (document.head || document.documentElement).appendChild(link);
  }

  function formatDate(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    var lang = document.documentElement.lang || undefined;
    try {
      return date.toLocaleDateString(lang, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
    } catch (e) {
      return date.toISOString().slice(0, 10);
    }
  }

  function reasonText(reason) {
    switch (reason && reason.type) {
      case "shared_terms": return "Shares: " + (reason.terms || []).join(", ");
      case "shared_tags": return "Tags: " + (reason.tags || []).join(", ");
      case "same_section": return "Also in " + reason.section;
      case "similar_meaning": return "Similar meaning " + Math.round((reason.score || 0) * 100) + "%";
      case "pinned": return "Editors' pick";
      case "fallback": return "Recent";
      case "published_gap":
        var n = Math.round(Math.abs(reason.days || 0));
        return n === 0 ? "Same day" : n + (n === 1 ? " day " : " days ") + (reason.days < 0 ? "earlier" : "later");
      default: return String((reason && reason.type) || "related").replace(/_/g, " ");
    }
  }

  function itemNode(box, item, position, withMedia) {
    var li = el("li", "ra-item");
    li.setAttribute("data-id", item.id);
    var template = box.getAttribute("data-link-template");
    var href = template ? template.replace("{id}", encodeURIComponent(item.id)) : safeUrl(item.url);
    var link = el(href ? "a" : "span", "ra-link");
    if (href) link.setAttribute("href", href);
    link.setAttribute("data-position", String(position));
    var media = el("span", "ra-media");
    var image = safeUrl(item.image_url);
    if (!withMedia) {
      media = null;
    } else if (image) {
      var img = document.createElement("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = item.image_alt || "";
      img.src = image;
      img.addEventListener("error", function () { media.classList.add("ra-media-missing"); img.remove(); });
      media.appendChild(img);
    } else {
      media.classList.add("ra-media-missing");
    }
    if (media) {
      media.setAttribute("aria-hidden", image && item.image_alt ? "false" : "true");
      link.appendChild(media);
    }
    var text = el("span", "ra-text");
    if (item.section) text.appendChild(el("span", "ra-section", item.section));
    text.appendChild(el("span", "ra-headline", item.title));
    var date = formatDate(item.published_at);
    if (date) {
      var time = el("time", "ra-date", date);
      time.setAttribute("datetime", item.published_at);
      text.appendChild(time);
    }
    link.appendChild(text);
    li.appendChild(link);
    if (box.hasAttribute("data-reasons") && item.reasons && item.reasons.length) {
      var chips = el("ul", "ra-reasons");
      item.reasons.forEach(function (reason) { chips.appendChild(el("li", "ra-reason ra-reason-" + String(reason.type).replace(/[^a-z_]/gi, ""), reasonText(reason))); });
      li.appendChild(chips);
    }
    return li;
  }

  function group(box, title, items, offset) {
    var id = "ra-heading-" + (++count);
    var section = el("section", "ra-group");
    section.setAttribute("aria-labelledby", id);
    var heading = el("h2", "ra-heading", title);
    heading.id = id;
    section.appendChild(heading);
    var list = el("ul", "ra-list");
    // Image boxes (with a placeholder where an item has no image, so the cards line up) only when some item has one.
    var withMedia = items.some(function (item) { return !!safeUrl(item.image_url); });
    items.forEach(function (item, i) { list.appendChild(itemNode(box, item, offset + i + 1, withMedia)); });
    section.appendChild(list);
    return section;
  }

  function render(box, data) {
    var items = (data && data.items) || [];
    box.textContent = "";
    if (!items.length) {
      box.setAttribute("data-ra-state", "empty");
      return;
    }
    var related = items.filter(function (i) { return !i.fallback; });
    var more = items.filter(function (i) { return i.fallback; });
    var root = el("div", "ra");
    if (related.length) root.appendChild(group(box, box.getAttribute("data-title") || "Related articles", related, 0));
    if (more.length) root.appendChild(group(box, box.getAttribute("data-fallback-title") || "More news", more, related.length));
    box.appendChild(root);
    box.setAttribute("data-ra-state", "shown");
    track(box, data, items);
  }

  // -- events: impressions when the box is visible, clicks --------------------------------------------------
  function send(box, events) {
    if (!events.length) return;
    var body = JSON.stringify({ events: events });
    var url = apiOrigin(box) + "/v1/events";
    try {
      // text/plain: a simple request, no CORS preflight; the API reads it as JSON.
      var blob = new Blob([body], { type: "text/plain;charset=UTF-8" });
      if (navigator.sendBeacon && navigator.sendBeacon(url, blob)) return;
      fetch(url, { method: "POST", body: body, headers: { "Content-Type": "text/plain;charset=UTF-8" }, keepalive: true, mode: "cors", credentials: "omit" }).catch(function () {});
    } catch (e) { /* events are best effort: a box never breaks the page */ }
  }

  function event(data, type, item, position) {
    return {
      type: type,
      source_id: data.article_id,
      item_id: item.id,
      position: position,
      request_id: data.request_id,
      variant: data.variant || null,
      visitor: visitor() || null,
      at: new Date().toISOString()
    };
  }

  function track(box, data, items) {
    if (!data.request_id) return; // an API without events
    var shown = false;
    function impressions() {
      if (shown) return;
      shown = true;
      send(box, items.map(function (item, i) { return event(data, "impression", item, i + 1); }));
    }
    if ("IntersectionObserver" in window) {
      var watcher = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) {
          watcher.disconnect();
          impressions();
        }
      }, { threshold: 0.5 });
      watcher.observe(box);
    } else {
      impressions();
    }
    box.addEventListener("click", function (e) {
      var link = e.target && e.target.closest ? e.target.closest(".ra-link") : null;
      if (!link) return;
      var position = Number(link.getAttribute("data-position"));
      var item = items[position - 1];
      if (item) send(box, [event(data, "click", item, position)]);
    });
  }

  // -- loading, only when the box comes near ---------------------------------------------------------------
  function load(box) {
    box.setAttribute("data-ra-state", "loading");
    fetch(requestUrl(box), { mode: "cors", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { render(box, data); })
      .catch(function () { box.textContent = ""; box.setAttribute("data-ra-state", "empty"); });
  }

  var nearby = "IntersectionObserver" in window
    ? new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) {
            nearby.unobserve(entry.target);
            load(entry.target);
          }
        });
      }, { rootMargin: "400px 0px" })
    : null;

  function scan() {
    var boxes = document.querySelectorAll("[data-related-articles]");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (seen ? seen.has(box) : box.hasAttribute("data-ra-state")) continue;
      if (seen) seen.add(box);
      box.setAttribute("data-ra-state", "waiting");
      if (nearby) nearby.observe(box);
      else load(box);
    }
  }

  ensureStyle();
  scan();
  // Boxes added later (single-page sites, infinite scroll) are picked up as well; a page can also call refresh.
  if ("MutationObserver" in window) new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  window.RelatedArticles = {
    version: VERSION,
    refresh: function (box) {
      if (seen) seen.delete(box);
      box.removeAttribute("data-ra-state");
      box.textContent = "";
      scan();
    }
  };
})();
