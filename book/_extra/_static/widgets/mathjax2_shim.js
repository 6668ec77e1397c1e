// ipywidgets 8 typesets widget labels with MathJax 2's MathJax.Hub.Queue, which the book's
// MathJax 3 does not have (every label then throws "reading 'Queue'"). Forward that call to
// MathJax 3's typesetPromise. Loaded before the widget manager (nb_ipywidgets_js in
// _config.yml), so this runs before the manager renders on the window's load event.
window.addEventListener("load", function () {
  var mathjax = window.MathJax;
  if (!mathjax || mathjax.Hub || !mathjax.startup) return;
  mathjax.Hub = {
    Queue: function (command) {
      var element = command[2];
      mathjax.startup.promise = mathjax.startup.promise.then(function () {
        return mathjax.typesetPromise([element]);
      });
    },
  };
});
