// rootloop dashboard: live updates over server-sent events. Vendored, no dependencies.
// On a "change" event, the element marked data-live is re-fetched and replaced,
// unless the person is typing in it (a deny reason is never thrown away).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var busy = false;
  function typing() {
    var a = document.activeElement;
    if (a && live.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) return true;
    var fields = live.querySelectorAll("input[name=reason]");
    for (var i = 0; i < fields.length; i++) if (fields[i].value) return true;
    return false;
  }
  function refresh() {
    if (busy || typing()) return;
    busy = true;
    fetch(live.getAttribute("data-live"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && !typing()) live.innerHTML = html; })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  var source = new EventSource("/ui/events");
  source.addEventListener("change", refresh);
  // "/" focuses the first search or filter field, as in most tools
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) return;
    var f = document.querySelector("main input, main select");
    if (f) { e.preventDefault(); f.focus(); }
  });
})();
