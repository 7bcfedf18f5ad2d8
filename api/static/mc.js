// Live updates for the Mission Control dashboard: one EventSource on /api/stream.
// `counts` frames update the numbers marked data-count; `mc-event` frames are prepended to
// lists marked data-prepend and make regions marked data-fragment reload from the server.
// Text from the state is only ever set through textContent, never parsed as HTML here.
"use strict";
(function () {
  const body = document.body;
  const status = document.getElementById("live-status");
  let seq = parseInt(body.dataset.seq || "0", 10) || 0;
  let timer = null;
  let busy = false;
  let again = false;

  function setStatus(text, cls) {
    if (status) {
      status.textContent = text;
      status.className = cls;
    }
  }

  function subjectHref(subject, data) {
    const i = subject.indexOf("/");
    const kind = subject.slice(0, i);
    const name = subject.slice(i + 1);
    if (kind === "Run" && data && typeof data.task === "string") {
      return "/tasks/" + encodeURIComponent(data.task) + "#run-" + encodeURIComponent(name);
    }
    if (kind === "Task") return "/tasks/" + encodeURIComponent(name);
    if (kind === "WorkflowRun") return "/runs/" + encodeURIComponent(name);
    if (kind === "Agent") return "/agents#agent-" + encodeURIComponent(name);
    return null;
  }

  function what(e) {
    if (e.kind === "task.transition") {
      const d = e.data || {};
      return d.from + " → " + d.to + (d.reason ? ": " + d.reason : "");
    }
    // key=value of the plain fields, as the page's own lines; the full JSON is in <details>
    const data = e.data || {};
    const text = Object.keys(data)
      .filter(function (k) { return data[k] !== null && data[k] !== "" && typeof data[k] !== "object"; })
      .map(function (k) { return k + "=" + String(data[k]); })
      .join(" · ");
    return text.length > 300 ? text.slice(0, 299) + "…" : text;
  }

  function rawJson(e) {
    const details = document.createElement("details");
    details.className = "raw";
    const summary = document.createElement("summary");
    summary.textContent = "JSON";
    const pre = document.createElement("pre");
    pre.className = "light";
    pre.textContent = JSON.stringify(e.data, null, 2);
    details.appendChild(summary);
    details.appendChild(pre);
    return details;
  }

  function span(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function eventItem(e) {
    const li = document.createElement("li");
    li.dataset.seq = String(e.seq);
    li.className = "fresh";
    li.appendChild(span("seq", "#" + e.seq));
    const time = document.createElement("time");
    time.className = "muted";
    time.dateTime = e.time;
    time.textContent = e.time.replace("T", " ").slice(0, 19);
    li.appendChild(time);
    li.appendChild(span("kind", e.kind));
    const subject = span("subject", "");
    const href = subjectHref(e.subject, e.data);
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = e.subject;
      subject.appendChild(a);
    } else {
      subject.textContent = e.subject;
    }
    li.appendChild(subject);
    li.appendChild(span("actor", e.actor));
    li.appendChild(span("what", what(e)));
    if (e.data && Object.keys(e.data).length) li.appendChild(rawJson(e));
    return li;
  }

  function prepend(e) {
    document.querySelectorAll("[data-prepend]").forEach(function (list) {
      if (list.querySelector('[data-seq="' + e.seq + '"]')) return;
      list.insertBefore(eventItem(e), list.firstChild);
      const max = parseInt(list.dataset.max || "50", 10);
      while (list.children.length > max) list.removeChild(list.lastChild);
    });
  }

  function updateCounts(c) {
    const values = Object.assign({}, c.tasks, { total: c.total, pending: c.pending });
    Object.keys(values).forEach(function (key) {
      document.querySelectorAll('[data-count="' + key + '"]').forEach(function (el) {
        el.textContent = String(values[key]);
      });
    });
  }

  function refreshFragments() {
    const regions = document.querySelectorAll("[data-fragment][id]");
    if (!regions.length) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status));
      })
      .then(function (html) {
        const fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (el) {
          const next = fresh.getElementById(el.id);
          if (next) el.replaceChildren.apply(el, Array.from(next.childNodes));
        });
        body.dataset.refreshed = String((parseInt(body.dataset.refreshed || "0", 10) || 0) + 1);
      })
      .catch(function () { /* the next event tries again */ })
      .finally(function () {
        busy = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      refreshFragments();
    }, 700);
  }

  if (!window.EventSource) return;
  const source = new EventSource("/api/stream?after=" + seq);
  source.addEventListener("open", function () { setStatus("live", "live-on"); });
  source.addEventListener("error", function () { setStatus("reconnecting…", "live-off"); });
  source.addEventListener("counts", function (m) { updateCounts(JSON.parse(m.data)); });
  source.addEventListener("mc-event", function (m) {
    const e = JSON.parse(m.data);
    if (e.seq <= seq) return;
    seq = e.seq;
    body.dataset.seq = String(seq);
    prepend(e);
    schedule();
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
