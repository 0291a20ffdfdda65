// neurflow-graph serve: hovering a group of a circuit lights its paths up to the class logit.
// Edges carry data-child / data-parent (group ids of the run); nodes data-group.
// A page's later sections (section.later[data-src], e.g. a class page's bias paths) are fetched after load from
// their own page and put in place, with their Cypher added to the page's; without JS each stays a link.
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

(function () {
  const later = [...document.querySelectorAll("section.later[data-src]")];
  const cypher = document.getElementById("cypher");
  const shown = new Set([...(cypher?.querySelectorAll(":scope > section") || [])].map(s => s.textContent));
  const load = async (placeholder) => {
    const note = placeholder.querySelector(".loading");
    try {
      const answer = await fetch(placeholder.dataset.src, { headers: { Accept: "text/html" } });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const part = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const id of [placeholder.id, "trust"]) {
        const fresh = part.getElementById(id);
        const old = document.getElementById(id);
        if (fresh && old && (id === placeholder.id || placeholder.id === "faithfulness")) {
          old.replaceWith(document.importNode(fresh, true));
        }
      }
      for (const query of part.querySelectorAll("#cypher > section")) {
        if (!cypher || shown.has(query.textContent)) continue;
        shown.add(query.textContent);
        cypher.appendChild(document.importNode(query, true));
      }
      const count = cypher?.querySelector(".n-queries");
      if (count) count.textContent = String(cypher.querySelectorAll(":scope > section").length);
    } catch (error) {
      if (note) note.append(` could not be loaded (${error.message}); the link opens it on its own.`);
    }
  };
  for (const placeholder of later) load(placeholder);
})();
