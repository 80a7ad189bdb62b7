"use strict";
// Canopy's API docs: reads /openapi.json and builds one form per operation.
(function () {
  const tokenInput = document.getElementById("token");
  tokenInput.value = sessionStorage.getItem("canopy-token") || "";
  tokenInput.addEventListener("change", () => sessionStorage.setItem("canopy-token", tokenInput.value));
  document.getElementById("clear-token").addEventListener("click", () => {
    tokenInput.value = "";
    sessionStorage.removeItem("canopy-token");
  });

  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };

  // resolve follows a local $ref such as #/components/schemas/App.
  let doc = null;
  const resolve = (o) => {
    while (o && o.$ref) {
      o = o.$ref.replace(/^#\//, "").split("/").reduce((acc, k) => acc && acc[k], doc);
    }
    return o;
  };

  // exampleOf builds a sample value from a schema's examples and properties.
  const exampleOf = (schema, depth) => {
    schema = resolve(schema);
    if (!schema || depth > 4) return null;
    if (schema.example !== undefined) return schema.example;
    if (schema.properties) {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties)) {
        const p = resolve(v);
        if ((schema.required || []).includes(k) || (p && p.example !== undefined)) out[k] = exampleOf(p, depth + 1);
      }
      return out;
    }
    if (schema.type === "array") return [];
    return null;
  };

  const paramsOf = (pathItem, op) =>
    [...(pathItem.parameters || []), ...(op.parameters || [])].map(resolve);

  function renderOperation(path, method, pathItem, op) {
    const m = method.toUpperCase();
    const params = paramsOf(pathItem, op);
    const inputs = {};
    const body = el("div", { class: "body" });
    if (op.description) body.append(el("p", {}, op.description));
    for (const p of params) {
      const input = el("input", { size: 40, placeholder: String(p.example ?? "") });
      inputs[p.in + ":" + p.name] = input;
      body.append(el("label", { class: "param" }, el("span", {}, p.name + (p.required ? " *" : "")), input,
        " ", el("small", {}, p.in + " — " + (p.description || ""))));
    }
    let bodyArea = null, contentType = null;
    const rb = resolve(op.requestBody);
    if (rb && rb.content) {
      contentType = el("select", {});
      for (const mt of Object.keys(rb.content)) contentType.append(el("option", { value: mt }, mt));
      const first = rb.content[Object.keys(rb.content)[0]];
      bodyArea = el("textarea", {});
      const sample = exampleOf(first.schema, 0);
      bodyArea.value = sample === null ? "" : JSON.stringify(sample, null, 2);
      body.append(el("label", { class: "param" }, el("span", {}, "Content-Type"), contentType), bodyArea);
    }
    const out = el("div", {});
    const send = el("button", { type: "button" }, "Send");
    send.addEventListener("click", () => sendRequest(path, m, params, inputs, bodyArea, contentType, out));
    body.append(send, out);
    const summary = el("summary", {}, el("span", { class: "method " + m }, m), path,
      el("span", { class: "summary" }, op.summary || ""));
    return el("details", { class: "op", id: op.operationId || (m + path) }, summary, body);
  }

  async function sendRequest(path, method, params, inputs, bodyArea, contentType, out) {
    let url = path;
    const query = new URLSearchParams();
    for (const p of params) {
      const v = inputs[p.in + ":" + p.name].value;
      if (p.in === "path") url = url.replace("{" + p.name + "}", encodeURIComponent(v));
      else if (p.in === "query" && v !== "") query.append(p.name, v);
    }
    if ([...query].length) url += "?" + query;
    const headers = {};
    if (tokenInput.value) headers["Authorization"] = "Bearer " + tokenInput.value;
    const init = { method, headers };
    if (bodyArea && bodyArea.value.trim() !== "") {
      headers["Content-Type"] = contentType.value;
      init.body = bodyArea.value;
    }
    out.replaceChildren(el("p", {}, "…"));
    try {
      const resp = await fetch(url, init);
      const text = await resp.text();
      let shown = text;
      try {
        const json = JSON.parse(text);
        shown = JSON.stringify(json, null, 2);
        if (json.accessToken) {
          tokenInput.value = json.accessToken;
          sessionStorage.setItem("canopy-token", json.accessToken);
        }
      } catch (e) { /* not JSON: show as is */ }
      const cls = resp.ok ? "status-ok" : "status-err";
      const loc = resp.headers.get("Location");
      out.replaceChildren(el("p", {}, el("span", { class: cls }, resp.status + " " + resp.statusText),
        " ", method + " " + url, loc ? " → Location: " + loc : ""), el("pre", {}, shown));
    } catch (e) {
      out.replaceChildren(el("p", { class: "status-err" }, String(e)));
    }
  }

  async function main() {
    const resp = await fetch("/openapi.json");
    doc = await resp.json();
    document.getElementById("summary").replaceChildren(
      doc.info.title + " " + doc.info.version + " — ", el("a", { href: "/openapi.yaml" }, "openapi.yaml"));
    const byTag = new Map();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of ["get", "post", "put", "patch", "delete"]) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, item, op]);
      }
    }
    const ops = document.getElementById("operations");
    const toc = document.getElementById("toc");
    for (const t of doc.tags || []) if (!byTag.has(t.name)) byTag.delete(t.name);
    for (const [tag, list] of byTag) {
      const meta = (doc.tags || []).find((t) => t.name === tag);
      ops.append(el("h2", { id: "tag-" + tag }, tag), el("p", {}, meta ? meta.description : ""));
      toc.append(el("h3", {}, tag));
      for (const [path, method, item, op] of list) {
        const node = renderOperation(path, method, item, op);
        ops.append(node);
        toc.append(el("a", { href: "#" + node.id }, method.toUpperCase() + " " + path.replace("/api/v1", "")));
      }
    }
    toc.append(el("h3", {}, "errors"), el("a", { href: "#problems" }, "Problem types"));
  }
  main().catch((e) => document.getElementById("summary").replaceChildren("Could not load the API document: " + e));
})();
