/*! herd.js — cookieless analytics tracker for herd. No cookies, no
 * localStorage, no identifiers: the server derives a day-scoped pseudonym
 * and discards the address it came from.
 *
 *   <script defer src="https://stats.shop.example/herd.js" data-site="shop"></script>
 *
 * Pageviews are sent on load (and on history navigation); clicks on elements
 * with data-herd-slot become product_click events with the slot, the
 * data-herd-position and the data-herd-product id; slots seen on screen
 * become slot_impression events. Everything else goes through
 * herd.track(type, fields), e.g. herd.track("add_to_cart", {product: {id: "p1", price: 9.5}}).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.herd) return;
  var site = script.getAttribute("data-site") || "demo";
  var endpoint = script.getAttribute("data-endpoint") || new URL("/api/event", script.src).href;
  var variant = script.getAttribute("data-variant") || document.documentElement.getAttribute("data-herd-variant") || "";
  var gpc = navigator.globalPrivacyControl === true;

  function id() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function send(type, fields) {
    if (gpc) return; // the shopper objected; send nothing at all
    var ev = { id: id(), site: site, type: type, url: location.href, referrer: document.referrer, ts: Date.now() };
    if (variant) ev.variant = variant;
    for (var k in fields) if (Object.prototype.hasOwnProperty.call(fields, k)) ev[k] = fields[k];
    var body = JSON.stringify(ev);
    // text/plain keeps the request "simple": no CORS preflight.
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    if (window.fetch) fetch(endpoint, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" }, credentials: "omit" });
  }

  function slotFields(el) {
    var f = { slot: el.getAttribute("data-herd-slot") };
    var pos = parseInt(el.getAttribute("data-herd-position") || "", 10);
    var product = el.getAttribute("data-herd-product");
    if (product || !isNaN(pos)) {
      f.product = { id: product || "" };
      if (!isNaN(pos)) f.product.position = pos;
      var list = el.getAttribute("data-herd-list");
      if (list) f.product.list = list;
    }
    return f;
  }

  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-herd-slot]") : null;
    if (el) send("product_click", slotFields(el));
  }, true);

  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var observer = window.IntersectionObserver && seen ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting && !seen.has(entry.target)) {
        seen.add(entry.target);
        send("slot_impression", { slot: entry.target.getAttribute("data-herd-slot") });
      }
    });
  }, { threshold: 0.5 }) : null;
  function observeSlots() {
    if (!observer) return;
    document.querySelectorAll("[data-herd-slot]").forEach(function (el) { observer.observe(el); });
  }

  var lastPath = "";
  function pageview() {
    if (location.pathname + location.search === lastPath) return;
    lastPath = location.pathname + location.search;
    send("pageview", {});
    observeSlots();
  }
  var push = history.pushState;
  history.pushState = function () { push.apply(this, arguments); pageview(); };
  window.addEventListener("popstate", pageview);

  window.herd = { track: send, pageview: pageview };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", pageview);
  else pageview();
})();
