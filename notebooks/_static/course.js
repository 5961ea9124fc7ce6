/* The course website's own script (loaded on every page: Jupyter Book adds every .js file
 * of notebooks/_static/). Two fixes for sphinx-book-theme 1.3 / pydata-sphinx-theme 0.17,
 * both checked by tests/browser/test_site.py.
 *
 * 1. Sidebar toggles. The themes bind their click handlers to the FIRST element with class
 *    .primary-toggle (and .secondary-toggle) on the page, which is a button in the top
 *    navbar that sphinx-book-theme hides. The visible buttons in the article header then
 *    did nothing, so on a phone there was no table of contents at all. Every other toggle
 *    now forwards its click to the bound one, so the theme's own behaviour applies: on a
 *    wide screen the sidebar collapses and comes back, on a narrow one it opens as a drawer.
 *
 * 2. Search results. Sphinx builds each result's snippet from the text of the whole <main>
 *    element, which starts with the download buttons (".ipynb", ".pdf") and holds formulas
 *    as raw LaTeX ("\(T^2\)"); titles with math were shown as raw LaTeX too. Snippets now
 *    come from the article only, start at a sentence (or after an ellipsis, at a word), keep
 *    only whole formulas, and MathJax typesets the formulas of snippets and titles.
 */
"use strict";

(() => {
  const onReady = (callback) => {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  };

  // ------------------------------------------------------------------ 1. sidebar toggles
  onReady(() => {
    for (const kind of ["primary-toggle", "secondary-toggle"]) {
      const [bound, ...others] = document.querySelectorAll("." + kind);
      for (const button of others) {
        button.addEventListener("click", (event) => {
          event.preventDefault();
          event.stopPropagation();
          bound.click();
        });
      }
    }
  });

  // ------------------------------------------------------------------ 2. search results
  // Parts of a page that are not its text: buttons, navigation, permalinks, scripts.
  const NOT_TEXT = [".headerlink", "script", "style", ".bd-header-article",
                    ".header-article-items", ".dropdown-download-buttons", ".prev-next-area",
                    ".bd-footer-article", ".toggle-details__summary", "mjx-container"];
  // A formula stands in the page's text as OPEN + its number + CLOSE (private-use characters).
  const OPEN = "\uE000", CLOSE = "\uE001";
  const MARKER = new RegExp(OPEN + "(\\d+)" + CLOSE, "g");

  // The text of a page's article (or of the part `anchor` names) with formulas as markers,
  // and the TeX source of each formula.
  const pageText = (htmlString, anchor) => {
    const html = new DOMParser().parseFromString(htmlString, "text/html");
    html.querySelectorAll(NOT_TEXT.join(", ")).forEach((element) => element.remove());
    const formulas = [];
    html.querySelectorAll("span.math, div.math").forEach((element) => {
      formulas.push(element.textContent.trim());     // with its delimiters, as Sphinx wrote it
      element.replaceWith(" " + OPEN + (formulas.length - 1) + CLOSE + " ");
    });
    // Blocks end with a space, so that "term" and "definition" do not run together.
    html.querySelectorAll("p, li, dt, dd, td, th, h1, h2, h3, h4, h5, h6, pre, div")
      .forEach((element) => element.append(" "));
    const main = html.querySelector("article.bd-article") || html.querySelector('[role="main"]');
    let part = main && anchor ? main.querySelector(anchor) : null;
    if (part && part.tagName === "DT") {
      // A glossary term: its names and its definition.
      const entry = [part];
      for (let next = part.nextElementSibling; next; next = next.nextElementSibling) {
        entry.push(next);
        if (next.tagName === "DD") break;
      }
      const text = entry.map((element) => element.textContent).join(" ");
      return {text: text.replace(/\s+/g, " ").trim(), formulas};
    }
    const text = main ? (part || main).textContent.replace(/\s+/g, " ").trim() : "";
    return {text, formulas};
  };

  // About 240 characters around the first search word, from the start of its sentence (or of
  // a word, after an ellipsis), with each whole formula as a span.math for MathJax.
  const makeSearchSummary = (htmlText, keywords, anchor) => {
    const {text, formulas} = pageText(htmlText, anchor);
    if (text === "") return null;
    const lower = text.toLowerCase();
    const hits = [...keywords].map((k) => lower.indexOf(k.toLowerCase())).filter((i) => i > -1);
    const hit = hits.length ? Math.min(...hits) : 0;
    let start = Math.max(hit - 120, 0);
    let prefix = "";
    if (start > 0) {
      const sentence = text.lastIndexOf(". ", hit);
      if (sentence >= start) start = sentence + 2;
      else {
        start = text.indexOf(" ", start) + 1;
        prefix = "… ";
      }
    }
    let end = Math.min(start + 240, text.length);
    let suffix = "";
    if (end < text.length) {
      const space = text.lastIndexOf(" ", end);
      if (space > hit) end = space;
      suffix = " …";
    }
    const excerpt = text.slice(start, end).replace(new RegExp(OPEN + "\\d*$"), "").trim();
    const summary = document.createElement("p");
    summary.classList.add("context");
    summary.append(prefix);
    let last = 0;
    for (const match of excerpt.matchAll(MARKER)) {
      summary.append(excerpt.slice(last, match.index));
      const math = document.createElement("span");
      math.className = "math notranslate nohighlight";
      math.textContent = formulas[Number(match[1])];
      summary.append(math);
      last = match.index + match[0].length;
    }
    summary.append(excerpt.slice(last) + suffix);
    return summary;
  };

  // Typeset the formulas of results (titles and snippets) as they are added to the list.
  // Only the formulas are handed to MathJax, each with its TeX restored first: Sphinx
  // highlights the search words in a result (splitting its text nodes) while MathJax works.
  const typesetResults = () => {
    const results = document.getElementById("search-results");
    if (!results || !window.MathJax) return;
    new MutationObserver((records) => {
      const formulas = [];
      for (const record of records)
        record.addedNodes.forEach((node) => {
          if (node.nodeType !== Node.ELEMENT_NODE) return;
          const found = node.matches("span.math") ? [node] : node.querySelectorAll("span.math");
          found.forEach((math) => {
            if (math.dataset.tex === undefined) {
              math.dataset.tex = math.textContent;
              formulas.push(math);
            }
          });
        });
      if (!formulas.length || !(MathJax.startup && MathJax.startup.promise)) return;
      MathJax.startup.promise = MathJax.startup.promise
        .then(() => {
          formulas.forEach((math) => { math.textContent = math.dataset.tex; });
          return MathJax.typesetPromise(formulas);
        })
        .catch((error) => console.warn("MathJax could not typeset a search result:", error));
    }).observe(results, {childList: true, subtree: true});
  };

  // Only the search page loads searchtools.js, possibly after this script: wait for it.
  onReady(() => {
    if (typeof Search === "undefined") return;
    Search.makeSearchSummary = makeSearchSummary;
    typesetResults();
  });
})();
