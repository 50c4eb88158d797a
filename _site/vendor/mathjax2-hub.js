/* The Jupyter widgets HTML manager typesets widget labels with MathJax 2's API
   (MathJax.Hub.Queue); the book loads MathJax 3. Before the widgets render (this listener is
   registered before the manager's), give MathJax 3 that one entry point, mapped to typesetPromise. */
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj && !mj.Hub) {
    mj.Hub = {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          var el = Array.isArray(job) ? job[2] : undefined;
          if (mj.typesetPromise) { mj.typesetPromise(el ? [el] : undefined).catch(function () {}); }
        }
      }
    };
  }
});
