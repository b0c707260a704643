/* CryptoSatX dashboard glue: chart colours from the page's CSS (light or dark), and a way for a
   page to start its widgets on load and again whenever htmx swaps new content in. */
(function () {
  "use strict";
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  /** The palette of the current colour scheme, for Chart.js and lightweight-charts. */
  function colors() {
    return {
      text: css("--text"), muted: css("--muted"), grid: css("--grid"), panel: css("--panel"),
      accent: css("--accent"), up: css("--up"), down: css("--down"), warn: css("--warn"),
      series: [css("--tier-1"), css("--tier-2"), css("--tier-3"), css("--warn"), css("--up"),
               css("--down"), css("--tier-4")],
    };
  }

  /** The JSON a template put in a `json_script` tag. */
  function data(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  const starters = [];
  /** Run `start(element)` for every element matching `selector`, now and in later htmx swaps;
   *  an element is started once. */
  function widget(selector, start) {
    starters.push([selector, start]);
    run(document, [[selector, start]]);
  }
  function run(root, list) {
    for (const [selector, start] of list) {
      const found = root.matches && root.matches(selector) ? [root] : [];
      for (const element of found.concat(Array.from(root.querySelectorAll(selector)))) {
        if (element.dataset.started) continue;
        element.dataset.started = "1";
        start(element);
      }
    }
  }
  document.addEventListener("htmx:load", (event) => run(event.target, starters));

  window.csx = { colors, data, widget };
})();
