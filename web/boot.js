// Boot-time shell: the loading bar and the "Python did not start" message, before Python runs.
// Python (pyapp.browser) takes over through window.mhsaBoot once it starts. Text only (textContent).
(function () {
  "use strict";
  var items = {};          // key -> {label, fraction}
  var order = [];
  var state = "loading";
  var failedText = "";     // the bar's text while it is red (a file the shown view needs failed)
  var started = Date.now();
  var WATCHDOG_MS = 180000;

  function el(id) { return document.getElementById(id); }

  function render() {
    var bar = el("loading");
    if (!bar) return;
    var sum = 0;
    for (var i = 0; i < order.length; i++) sum += items[order[i]].fraction;
    var pct = order.length ? Math.round(100 * sum / order.length) : 0;
    bar.setAttribute("aria-valuenow", String(pct));
    el("loading-fill").style.width = pct + "%";
    var list = el("loading-items");
    while (list.firstChild) list.removeChild(list.firstChild);
    var current = "";
    for (var j = 0; j < order.length; j++) {
      var it = items[order[j]];
      var li = document.createElement("li");
      var p = Math.round(100 * it.fraction);
      li.textContent = it.label + " " + p + "%";
      if (p >= 100) li.className = "done";
      else if (!current) current = it.label;
      list.appendChild(li);
    }
    el("loading-text").textContent = failedText ||
      ((current ? "Loading " + current + "… " : "Loaded ") + pct + "%");
  }

  function progress(key, label, fraction) {
    if (!(key in items)) { order.push(key); items[key] = {label: label, fraction: 0}; }
    items[key].label = label;
    items[key].fraction = Math.max(0, Math.min(1, Number(fraction) || 0));
    render();
  }

  function fail(message) {
    if (state === "ready") return;
    state = "error";
    document.body.dataset.state = "error";
    var status = el("status-text");
    if (status) {
      status.textContent = message;
      status.parentNode.classList.add("error");
    }
    var t = el("loading-text");
    if (t) t.textContent = message;
    var bar = el("loading");
    if (bar) bar.classList.add("failed");
  }

  function ready() {     // Python hides the bar itself once the shown model's files are in
    state = "ready";
    var s = el("status");
    if (s && s.classList.contains("info") && /^Still loading/.test(el("status-text").textContent)) {
      el("status-text").textContent = "";
      s.className = "status";
    }
  }

  function remove(key) {   // a file no view needs any more leaves the list
    if (!(key in items)) return;
    delete items[key];
    order.splice(order.indexOf(key), 1);
    render();
  }

  function failed(text) {  // the bar turns red (Python adds the class) and says what failed
    failedText = String(text || "");
    render();
  }

  window.mhsaBoot = {progress: progress, fail: fail, ready: ready, remove: remove, failed: failed,
    clear: function () { items = {}; order = []; failedText = ""; render(); }};

  document.addEventListener("DOMContentLoaded", function () {
    progress("runtime", "Python runtime", 0);
    progress("numpy", "numpy", 0);
  });

  // PyScript reports its boot stages as py:progress events ("Loading Pyodide", "Loaded interpreter", ...).
  // PyScript 0.7 (Pyodide): Loading Pyodide, [Packages Graph, remote packages, Storage], Loading/Loaded
  // interpreter, Loading/Loaded files, (packages are installed here), Loaded Pyodide.
  var runtimeStages = {"Loading Pyodide": 0.05, "Loaded Packages Graph": 0.1, "Loading Storage": 0.15,
                       "Loading interpreter": 0.2, "Loaded interpreter": 1};
  var numpyStages = {"Loaded files": 0.1, "Loaded Pyodide": 1};
  var lastStage = "";
  addEventListener("py:progress", function (e) {
    var d = String(e.detail || "");
    lastStage = d;
    if (d in runtimeStages) progress("runtime", "Python runtime", runtimeStages[d]);
    if (d in numpyStages) progress("numpy", "numpy", numpyStages[d]);
  });

  // One readable line out of an error or a Python traceback.
  function describe(err) {
    if (!err) return "unknown error";
    var text = String(err.message || err);
    var lines = text.split("\n");
    for (var i = 0; i < lines.length; i++) {
      if (/^\w+(Error|Exception):/.test(lines[i])) return lines[i];
    }
    return lines[0].slice(0, 300);
  }

  function runtimeFailure(err) {
    var why = describe(err);
    if (lastStage === "Loaded interpreter" || lastStage === "Loaded files" || /micropip|numpy|loadPackage/.test(why)) {
      return "Python started, but its package numpy could not be loaded (" + why + "). " +
        "Check your internet connection and reload the page.";
    }
    return "The Python runtime could not start (" + why + "). Check your internet connection and reload the page.";
  }

  // Before the app is up, any uncaught error or failed script means Python could not start.
  addEventListener("error", function (e) {
    if (state !== "loading") return;
    var t = e.target;
    if (t && t !== window && t.tagName === "SCRIPT") {
      fail("Could not load the Python runtime (" + (t.src || "script") + "). Check your connection and reload.");
    } else if (t && t !== window && t.tagName === "LINK") {
      return;   // a stylesheet failing is not fatal
    } else if (e.error || e.message) {
      fail(runtimeFailure(e.error || e.message));
    }
  }, true);
  addEventListener("unhandledrejection", function (e) {
    if (state !== "loading") return;
    fail(runtimeFailure(e.reason));
  });
  // PyScript shows its own error box; mirror it in our status line.
  addEventListener("py:error", function (e) {
    fail(runtimeFailure(e.detail));
  });
  setInterval(function () {
    if (state !== "loading") return;
    var s = Math.round((Date.now() - started) / 1000);
    if (Date.now() - started > WATCHDOG_MS) {
      fail("The Python runtime did not start within " + s + " s. Check your connection and reload the page.");
    } else if (s >= 20) {
      var t = el("status-text");
      if (t) {
        t.textContent = "Still loading the Python runtime and numpy (" + s + " s)…";
        t.parentNode.className = "status info";
      }
    }
  }, 1000);
})();
