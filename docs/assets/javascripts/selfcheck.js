// After the page has loaded, record on <html> what rendered: images that decoded, KaTeX
// formulas and KaTeX errors.  tests/test_docs_browser.py reads these attributes from the DOM
// that headless Chromium dumps; a reader never sees them.
window.addEventListener("load", function () {
  setTimeout(function () {
    var imgs = Array.prototype.slice.call(document.querySelectorAll(".md-content img"));
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
    var root = document.documentElement.dataset;
    root.imagesTotal = imgs.length;
    root.imagesLoaded = ok.length;
    root.mathSource = document.querySelectorAll(".arithmatex").length;
    root.mathRendered = document.querySelectorAll(".katex").length;
    root.mathErrors = document.querySelectorAll(".katex-error").length;
  }, 0);
});
