// A campaign's page: while it is under way, ask for its figures every two seconds and show
// them (counters, bar, chart, the buttons its state allows) without a reload; stop asking
// once it has finished or been cancelled.
(function () {
  "use strict";
  var panel = document.getElementById("campaign-progress");
  if (!panel) { return; }
  var url = panel.getAttribute("data-progress-url");
  var language = document.body.getAttribute("data-language") || "en";
  var number = new Intl.NumberFormat(language);
  var stateNames = {};
  var timer = null;

  function text(id, value) {
    var element = document.getElementById(id);
    if (element) { element.textContent = value; }
  }

  function show(figures) {
    var badge = panel.querySelector("[data-campaign-state]");
    if (badge && badge.getAttribute("data-campaign-state") !== figures.state) {
      badge.setAttribute("data-campaign-state", figures.state);
      badge.className = "badge badge-" + figures.state;
      badge.textContent = stateNames[figures.state] || figures.state;
    }
    text("campaign-state-reason", figures.state_reason || "");
    Object.keys(figures.counts).forEach(function (key) {
      var cell = panel.querySelector('[data-count="' + key + '"]');
      if (cell) { cell.textContent = number.format(figures.counts[key]); }
    });
    var bar = document.getElementById("campaign-bar");
    if (bar) {
      bar.max = figures.total || 1;
      bar.value = figures.done;
    }
    text("campaign-done", number.format(figures.done));
    text("campaign-total", number.format(figures.total));
    text("campaign-percent", String(figures.percent));
    var chart = document.getElementById("campaign-chart");
    if (chart) { chart.innerHTML = figures.chart_html; }
    panel.querySelectorAll("[data-when]").forEach(function (button) {
      button.hidden = button.getAttribute("data-when").split(" ").indexOf(figures.state) < 0;
    });
    if (figures.ended) {
      panel.setAttribute("data-live", "no");
      var actions = document.getElementById("campaign-actions");
      if (actions) { actions.hidden = true; }
      stop();
    }
  }

  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (figures) { if (figures) { show(figures); } })
      .catch(function () { /* the next tick tries again */ });
  }

  document.querySelectorAll("#campaign-state-names [data-state]").forEach(function (item) {
    stateNames[item.getAttribute("data-state")] = item.textContent;
  });
  // A draft changes only by a form on this page, which reloads it: nothing to watch.
  if (panel.getAttribute("data-live") === "yes") {
    timer = window.setInterval(poll, 2000);
  }
})();
