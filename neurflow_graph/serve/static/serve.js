// neurflow-graph serve: hovering a group of a circuit lights its paths up to the class logit.
// Edges carry data-child / data-parent (group ids of the run); nodes data-group.
(function () {
  for (const svg of document.querySelectorAll("svg.circuit")) {
    const up = new Map();
    for (const edge of svg.querySelectorAll(".edge")) {
      const child = edge.dataset.child;
      if (!up.has(child)) up.set(child, []);
      up.get(child).push(edge);
    }
    const nodes = new Map();
    for (const node of svg.querySelectorAll(".node")) nodes.set(node.dataset.group, node);
    const clear = () => {
      svg.classList.remove("focus");
      for (const lit of svg.querySelectorAll(".lit")) lit.classList.remove("lit");
    };
    const light = (group) => {
      const seen = new Set([group]);
      const todo = [group];
      while (todo.length) {
        const g = todo.pop();
        nodes.get(g)?.classList.add("lit");
        for (const edge of up.get(g) || []) {
          edge.classList.add("lit");
          if (!seen.has(edge.dataset.parent)) { seen.add(edge.dataset.parent); todo.push(edge.dataset.parent); }
        }
      }
      svg.classList.add("focus");
    };
    for (const [group, node] of nodes) {
      node.addEventListener("mouseenter", () => { clear(); light(group); });
      node.addEventListener("mouseleave", clear);
    }
  }
})();
