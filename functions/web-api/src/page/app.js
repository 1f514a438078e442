/* The preferences page: plain JavaScript, no dependencies, no build step.
 * It talks to the JSON API under /api/v1 (functions/web-api/API.md) with a bearer token kept
 * in sessionStorage. Every change is saved at once; API errors are shown next to the field
 * they name. */
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "fmn.token";
  const PKCE_KEY = "fmn.pkce";
  const SEVERITIES = ["debug", "info", "warning", "error"];
  const ARTIFACT_TYPES = ["rpms", "containers", "modules", "flatpaks"];

  const state = {
    config: null,
    catalogue: [],
    me: null,
    token: sessionStorage.getItem(TOKEN_KEY),
    openRules: new Set(),
    foldedRules: new Set(),
    // Filters whose preview is open (kept across re-renders).
    openPreviews: new Set(),
  };

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** Builds an element: h("p", {class: "x", onclick: f}, "text", child). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || `request failed (${status})`);
      this.status = status;
      this.code = e.code || "internal";
      this.field = e.field || null;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, { error: { code: "network", message: "The server cannot be reached. Check your connection and try again." } });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!response.ok) {
      const err = new ApiError(response.status, data);
      if (response.status === 401 && state.token && !path.startsWith("/confirm/")) {
        signOut("Your session has expired: please sign in again.");
      }
      throw err;
    }
    return data;
  }

  let statusTimer = null;
  function say(message) {
    const el = $("status");
    el.textContent = message;
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => { el.textContent = ""; }, 6000);
  }
  function alertMsg(message) {
    $("alert").textContent = message || "";
  }

  /** Shows an error in the element with this id (and marks the input it describes). */
  function showError(id, message) {
    const el = $(id);
    if (!el) { alertMsg(message); return; }
    el.textContent = message || "";
    // Field errors are not live regions themselves: announce them once for screen readers.
    if (message) {
      $("announce").textContent = "";
      setTimeout(() => { $("announce").textContent = message; }, 50);
    }
    const input = document.querySelector(`[aria-describedby~="${id}"]`);
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }
  function clearErrors(root) {
    for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    alertMsg("");
  }
  function describe(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    // The error is shown next to its field: the field's path in front of it says nothing more.
    return err.field ? err.message.replace(/^[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*: /, "") : err.message;
  }

  /** Runs an action with its button disabled; errors go to errorId (or the alert region). */
  async function busy(button, errorId, action) {
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    try {
      if (errorId) showError(errorId, "");
      return await action();
    } catch (err) {
      if (errorId) showError(errorId, describe(err));
      else alertMsg(describe(err));
      return undefined;
    } finally {
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    }
  }

  /** Re-rendering replaces elements: give focus back to the one with the same id. */
  function keepingFocus(render) {
    const id = document.activeElement && document.activeElement.id;
    render();
    if (id && $(id) && document.activeElement !== $(id)) $(id).focus();
  }

  const list = (s) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

  function formatWhen(ts) {
    if (ts === undefined || ts === null || ts === "") return "";
    const d = typeof ts === "number" ? new Date(ts < 1e12 ? ts * 1000 : ts) : new Date(ts);
    return isNaN(d) ? String(ts) : d.toLocaleString();
  }

  function b64url(bytes) {
    let s = "";
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  const randomString = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

  function jwtClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (_) {
      return {};
    }
  }

  // ---------------------------------------------------------------- views

  function show(view) {
    $("loading").hidden = true;
    $("login-section").hidden = view !== "login";
    $("confirm-section").hidden = view !== "confirm";
    $("app").hidden = view !== "app";
    $("nav").hidden = view !== "app";
    $("session").hidden = view !== "app";
  }

  async function start() {
    const confirmMatch = location.pathname.match(/^\/confirm\/([^/]+)\/?$/);
    if (confirmMatch) {
      show("confirm");
      return confirmView(decodeURIComponent(confirmMatch[1]));
    }
    try {
      state.config = await api("GET", "/config");
    } catch (err) {
      show("login");
      $("dev-login").hidden = true;
      $("oidc-login").hidden = true;
      alertMsg(`The service is unavailable: ${describe(err)}. Reload the page to try again.`);
      return;
    }
    const params = new URLSearchParams(location.search);
    if (params.has("code") || params.has("error")) await finishOidc(params);
    if (state.token) {
      const exp = jwtClaims(state.token).exp;
      if (exp && exp * 1000 < Date.now()) signOut("Your session has expired: please sign in again.", false);
    }
    if (state.token) return loadApp();
    loginView();
  }

  // ---------------------------------------------------------------- sign in

  function loginView() {
    show("login");
    const dev = state.config && state.config.auth === "dev";
    $("dev-login").hidden = !dev;
    $("oidc-login").hidden = dev;
  }

  function signOut(message, render = true) {
    state.token = null;
    state.me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (message) alertMsg(message);
    if (render) loginView();
  }

  $("dev-login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const username = $("dev-username").value.trim();
    if (!username) { showError("dev-username-error", "Enter a user name."); $("dev-username").focus(); return; }
    const groups = $("dev-admin").checked ? [state.config.admin_group || "sysadmin-main"] : [];
    busy(form.querySelector("button[type=submit]"), "dev-username-error", async () => {
      const { token } = await api("POST", "/dev/login", { username, groups });
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      await loadApp();
    });
  });

  async function discovery() {
    const issuer = state.config.issuer.replace(/\/+$/, "");
    const r = await fetch(`${issuer}/.well-known/openid-configuration`);
    if (!r.ok) throw new Error(`the identity provider's discovery document: HTTP ${r.status}`);
    return r.json();
  }

  const redirectUri = () => `${location.origin}/`;

  $("oidc-button").addEventListener("click", (ev) => {
    busy(ev.currentTarget, "oidc-error", async () => {
      if (!crypto.subtle) throw new Error("Signing in needs a secure (https) connection.");
      const doc = await discovery();
      const verifier = randomString(48);
      const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
      const st = randomString(24);
      sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state: st }));
      const url = new URL(doc.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: state.config.client_id,
        redirect_uri: redirectUri(),
        scope: state.config.scope || "openid profile email",
        state: st,
        code_challenge: challenge,
        code_challenge_method: "S256",
      }).toString();
      location.assign(url.toString());
    });
  });

  async function finishOidc(params) {
    const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", location.pathname);
    try {
      if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
      if (!saved || saved.state !== params.get("state")) throw new Error("The sign-in answer does not match this browser's request; try again.");
      const doc = await discovery();
      const r = await fetch(doc.token_endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: params.get("code"),
          redirect_uri: redirectUri(),
          client_id: state.config.client_id,
          code_verifier: saved.verifier,
        }),
      });
      const tokens = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(tokens.error_description || tokens.error || `token request failed (${r.status})`);
      // The API takes an RS256 JWT: the access token when it is one, else the ID token.
      const jwt = (t) => typeof t === "string" && t.split(".").length === 3;
      const token = jwt(tokens.access_token) ? tokens.access_token : tokens.id_token;
      if (!jwt(token)) throw new Error("The identity provider returned no usable token.");
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch (err) {
      showError("oidc-error", `Signing in failed: ${describe(err)}`);
    }
  }

  $("logout").addEventListener("click", () => {
    signOut(null);
    say("Signed out.");
  });

  // ---------------------------------------------------------------- the app

  async function loadApp() {
    try {
      const [me, catalogue] = await Promise.all([api("GET", "/me"), api("GET", "/rules")]);
      state.me = me;
      state.catalogue = Array.isArray(catalogue) ? catalogue : (catalogue && catalogue.rules) || [];
    } catch (err) {
      if (state.token) { show("login"); loginView(); }
      alertMsg(describe(err));
      return;
    }
    alertMsg("");
    show("app");
    $("session-user").textContent = state.me.name;
    renderTimeZone();
    $("session-admin").hidden = !state.me.admin;
    renderDestinationForm();
    renderAll();
    loadRecent();
    loadDeliveries();
    startLive();
    $("admin-section").hidden = !state.me.admin;
    $("nav-admin").hidden = !state.me.admin;
    if (state.me.admin) loadUsers();
    // A mail's "edit this filter" link (`#filter-<id>`) opens on that filter.
    const linked = location.hash.startsWith("#filter-") && document.getElementById(location.hash.slice(1));
    if (linked) { linked.scrollIntoView(); linked.focus(); }
  }

  function renderAll() {
    keepingFocus(() => {
      renderDestinations();
      renderFilters();
    });
  }

  /** Each destination's last delivery (`GET /me/deliveries`), shown on its card. */
  async function loadDeliveries() {
    try {
      const list = await api("GET", "/me/deliveries");
      state.deliveries = Object.fromEntries((list || []).map((x) => [x.destination, x]));
      keepingFocus(() => renderDestinations());
    } catch (_) {
      // The cards keep saying nothing was delivered; the rest of the page works.
    }
  }

  async function reloadMe() {
    state.me = await api("GET", "/me");
    renderAll();
  }

  // ---------------------------------------------------------------- time zone

  // Filled by the user for now (FAS's time zone is not read yet); empty means UTC.
  function renderTimeZone() {
    $("tz-input").value = state.me.time_zone || "";
    const list = $("tz-list");
    if (!list.children.length && Intl.supportedValuesOf) {
      list.replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => h("option", { value: z })));
    }
  }

  $("tz-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearErrors(ev.currentTarget);
    const tz = $("tz-input").value.trim();
    busy(ev.currentTarget.querySelector("button[type=submit]"), "tz-error", async () => {
      state.me = await api("PATCH", "/me", { time_zone: tz || null });
      renderAll();
      say(`Your time zone is now ${state.me.time_zone || "UTC"}.`);
    });
  });

  // ------------------------------------------------------------ destinations

  // IRC destinations are delivered immediately (the API refuses digests for them).
  function deliveryFields(prefix, delivery, irc) {
    const d = delivery || { mode: "immediate" };
    const digest = d.mode === "digest";
    const minutes = d.batch_delta ? Math.round(d.batch_delta / 60) : "";
    const fs = h("div", { class: "delivery-fields" },
      h("div", { class: "field" },
        h("label", { for: `${prefix}-mode` }, "Delivery"),
        h("select", { id: `${prefix}-mode`, name: "mode" },
          h("option", { value: "immediate", selected: !digest }, "Immediately, one by one"),
          h("option", { value: "digest", selected: digest, disabled: !!irc }, "As a digest (e-mail and Matrix only)"))),
      h("div", { class: "field digest-only", hidden: !digest },
        h("label", { for: `${prefix}-delta` }, "Send after (minutes)"),
        h("input", { id: `${prefix}-delta`, name: "batch_delta", type: "number", min: 1, max: 10080, inputmode: "numeric", value: minutes, "aria-describedby": `${prefix}-delivery-error` })),
      h("div", { class: "field digest-only", hidden: !digest },
        h("label", { for: `${prefix}-count` }, "or after (messages)"),
        h("input", { id: `${prefix}-count`, name: "batch_count", type: "number", min: 1, max: 1000, inputmode: "numeric", value: d.batch_count || "", "aria-describedby": `${prefix}-delivery-error` })),
      h("div", { class: "field digest-only", hidden: !digest },
        h("label", { for: `${prefix}-every` }, "or every"),
        h("select", { id: `${prefix}-every`, name: "every" },
          ...["", "day", ...WEEKDAYS].map((v) => h("option", { value: v, selected: scheduleDay(d.schedule) === v },
            v === "" ? "(no schedule)" : v === "day" ? "day" : v[0].toUpperCase() + v.slice(1))))),
      h("div", { class: "field digest-only", hidden: !digest },
        h("label", { for: `${prefix}-at` }, "at (your time)"),
        h("input", { id: `${prefix}-at`, name: "at", type: "time", value: (d.schedule && d.schedule.at) || "08:00", "aria-describedby": `${prefix}-delivery-error` })),
      h("p", { class: "field-error", id: `${prefix}-delivery-error` }));
    fs.querySelector("select").addEventListener("change", (ev) => {
      for (const el of fs.querySelectorAll(".digest-only")) el.hidden = ev.target.value !== "digest";
    });
    return fs;
  }

  function readDelivery(prefix) {
    const mode = $(`${prefix}-mode`).value;
    if (mode !== "digest") return { mode: "immediate" };
    const out = { mode: "digest" };
    const minutes = $(`${prefix}-delta`).value.trim();
    const count = $(`${prefix}-count`).value.trim();
    if (minutes) out.batch_delta = Math.round(Number(minutes) * 60);
    if (count) out.batch_count = Math.round(Number(count));
    const every = $(`${prefix}-every`).value;
    const at = $(`${prefix}-at`).value || "08:00";
    if (every === "day") out.schedule = { every: "day", at };
    else if (every) out.schedule = { every: "week", on: every, at };
    return out;
  }

  const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

  /** "" (none), "day" or the weekday of a schedule. */
  function scheduleDay(schedule) {
    if (!schedule) return "";
    return schedule.every === "day" ? "day" : schedule.on;
  }

  /** Quiet hours inputs (both empty: none). */
  function quietFields(prefix, quiet) {
    return h("div", { class: "quiet-fields" },
      h("div", { class: "field" },
        h("label", { for: `${prefix}-quiet-from` }, "Quiet from"),
        h("input", { id: `${prefix}-quiet-from`, type: "time", value: (quiet && quiet.from) || "", "aria-describedby": `${prefix}-quiet-error` })),
      h("div", { class: "field" },
        h("label", { for: `${prefix}-quiet-to` }, "to"),
        h("input", { id: `${prefix}-quiet-to`, type: "time", value: (quiet && quiet.to) || "", "aria-describedby": `${prefix}-quiet-error` })),
      h("p", { class: "hint" }, "Your time. Held notifications come as one digest when quiet hours end; errors and urgent filters come at once."),
      h("p", { class: "field-error", id: `${prefix}-quiet-error` }));
  }

  function readQuiet(prefix) {
    const from = $(`${prefix}-quiet-from`).value;
    const to = $(`${prefix}-quiet-to`).value;
    return from && to ? { from, to } : null;
  }

  function renderDestinationForm() {
    const fs = $("dest-delivery");
    fs.replaceChildren(h("legend", {}, "Delivery"), deliveryFields("new-dest", null), quietFields("new-dest", null));
    fs.querySelector("label").classList.add("visually-hidden");
  }

  $("dest-kind").addEventListener("change", (ev) => {
    const irc = ev.target.value === "irc";
    const matrix = ev.target.value === "matrix";
    $("dest-address-label").textContent = irc ? "IRC nick" : matrix ? "Matrix user (@name:fedora.im, or your Fedora account name)" : "Email address";
    $("dest-address").type = irc || matrix ? "text" : "email";
    $("dest-address").autocomplete = irc ? "nickname" : matrix ? "username" : "email";
    // Your own address from FAS, to accept or change; a typed one is kept.
    const suggested = (state.me && state.me.suggested_addresses) || {};
    const address = $("dest-address");
    if (!address.value.trim() || address.dataset.suggested === address.value) {
      address.value = (irc ? suggested.irc : matrix ? suggested.matrix : suggested.email) || "";
      address.dataset.suggested = address.value;
    }
    for (const el of document.querySelectorAll(".irc-only")) el.hidden = !irc;
    const mode = $("new-dest-mode");
    if (mode) {
      if (irc && mode.value === "digest") {
        mode.value = "immediate";
        mode.dispatchEvent(new Event("change"));
      }
      mode.querySelector("option[value=digest]").disabled = irc;
    }
  });

  function destinationErrorId(field, prefix) {
    if (!field) return `${prefix}-error`;
    if (/address/.test(field)) return "dest-address-error";
    if (/delivery|batch/.test(field)) return "new-dest-delivery-error";
    if (/quiet/.test(field)) return "new-dest-quiet-error";
    return `${prefix}-error`;
  }

  $("add-destination").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const kind = $("dest-kind").value;
    const address = $("dest-address").value.trim();
    if (!address) { showError("dest-address-error", kind === "irc" ? "Enter a nick." : kind === "matrix" ? "Enter a Matrix user." : "Enter an email address."); $("dest-address").focus(); return; }
    const body = { kind, address, delivery: readDelivery("new-dest"), verbose: $("dest-verbose").checked };
    const quiet = readQuiet("new-dest");
    if (quiet) body.quiet_hours = quiet;
    if (kind === "irc") body.irc_colour = $("dest-colour").checked;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const dest = await api("POST", "/me/destinations", body);
      await reloadMe();
      form.reset();
      renderDestinationForm();
      say(`Added ${dest.address}: a confirmation was sent to it. It receives nothing until it is confirmed.`);
    } catch (err) {
      const id = destinationErrorId(err.field, "add-destination");
      showError(id, describe(err));
      const input = document.querySelector(`[aria-describedby~="${id}"]`);
      if (input) input.focus();
    } finally {
      button.disabled = false;
    }
  });

  function renderDestinations() {
    const ul = $("destinations");
    const dests = state.me.destinations || [];
    if (!dests.length) {
      ul.replaceChildren(h("li", { class: "empty muted" }, "No destination yet: add one below, then follow the link sent to it."));
      return;
    }
    ul.replaceChildren(...dests.map((d) => {
      const p = `dest-${d.id}`;
      const errorId = `${p}-error`;
      const health = d.health || {};
      const status = health.stopped
        ? h("span", { class: "badge stopped" }, "Stopped")
        : d.paused
          ? h("span", { class: "badge pending" }, "Paused")
          : d.confirmed && d.verified_by === "fas"
          ? h("span", { class: "badge ok", title: "Your FAS e-mail: Fedora's account system vouches for it, so no confirmation was needed" }, "Confirmed (verified by FAS)")
          : d.confirmed
          ? h("span", { class: "badge ok" }, "Confirmed")
          : h("span", { class: "badge pending" }, "Awaiting confirmation");
      // What delivery has shown: a stop (with its reason and a way back), or problems so far.
      let healthNote = null;
      if (health.stopped) {
        healthNote = h("div", { class: "health stopped", id: `${p}-health`, role: "status" },
          h("p", null, `Nothing is sent here since ${formatWhen(health.stopped.at)}: ${health.stopped.reason}.`),
          h("button", {
            type: "button",
            id: `${p}-resume`,
            onclick: (ev) => busy(ev.currentTarget, errorId, async () => {
              await api("PATCH", `/me/destinations/${encodeURIComponent(d.id)}`, { resume: true });
              await reloadMe();
              say(`Delivery to ${d.address} resumed.`);
            }),
          }, "Resume delivery"));
      } else if (health.soft_bounces || health.failing_since) {
        const problem = health.last_problem ? ` The last: ${health.last_problem.reason}.` : "";
        const what = health.soft_bounces
          ? `${health.soft_bounces} temporary bounce${health.soft_bounces > 1 ? "s" : ""} since the last delivery.`
          : `Deliveries failing since ${formatWhen(health.failing_since)}.`;
        healthNote = h("p", { class: "health warning", id: `${p}-health` }, what + problem);
      } else if (health.last_problem) {
        // Delivered since, but the last error stays worth knowing.
        healthNote = h("p", { class: "health muted", id: `${p}-health` },
          `Last error, ${formatWhen(health.last_problem.at)}: ${health.last_problem.reason}.`);
      }
      const form = h("form", { class: "dest-settings", novalidate: true },
        deliveryFields(p, d.delivery, d.kind === "irc"),
        quietFields(p, d.quiet_hours),
        d.kind === "irc" ? h("div", { class: "field check" },
          h("input", { type: "checkbox", id: `${p}-colour`, checked: d.irc_colour }),
          h("label", { for: `${p}-colour` }, "IRC colours")) : null,
        h("div", { class: "field check" },
          h("input", { type: "checkbox", id: `${p}-verbose`, checked: d.verbose !== false }),
          h("label", { for: `${p}-verbose` }, "Long form")),
        h("button", { type: "submit" }, "Save delivery"));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        clearErrors(form);
        const body = { delivery: readDelivery(p), verbose: $(`${p}-verbose`).checked, quiet_hours: readQuiet(p) };
        if (d.kind === "irc") body.irc_colour = $(`${p}-colour`).checked;
        busy(form.querySelector("button[type=submit]"), null, async () => {
          try {
            await api("PATCH", `/me/destinations/${encodeURIComponent(d.id)}`, body);
          } catch (err) {
            const f = err.field || "";
            showError(/delivery|batch/.test(f) ? `${p}-delivery-error` : /quiet/.test(f) ? `${p}-quiet-error` : errorId, describe(err));
            return;
          }
          await reloadMe();
          say(`Saved the delivery of ${d.address}.`);
        });
      });
      const resend = d.confirmed ? null : h("button", {
        type: "button",
        id: `${p}-resend`,
        onclick: (ev) => busy(ev.currentTarget, errorId, async () => {
          const r = await api("POST", `/me/destinations/${encodeURIComponent(d.id)}/resend`);
          const until = r && r.expires ? ` Its link is valid until ${formatWhen(r.expires)}.` : "";
          say(`A new confirmation was sent to ${d.address}.${until}`);
        }),
      }, "Resend confirmation");
      // A pause is the user's own, apart from a stop by delivery (above).
      const pause = h("button", {
        type: "button",
        id: `${p}-pause`,
        "aria-pressed": d.paused ? "true" : "false",
        onclick: (ev) => busy(ev.currentTarget, errorId, async () => {
          await api("PATCH", `/me/destinations/${encodeURIComponent(d.id)}`, { paused: !d.paused });
          await reloadMe();
          say(d.paused ? `Delivery to ${d.address} resumed.` : `Delivery to ${d.address} paused; your filters still feed it.`);
        }),
      }, d.paused ? "Resume" : "Pause");
      const remove = h("button", {
        type: "button",
        class: "danger",
        id: `${p}-remove`,
        onclick: (ev) => {
          if (!window.confirm(`Remove ${d.address}? It is also taken out of every filter.`)) return;
          busy(ev.currentTarget, errorId, async () => {
            await api("DELETE", `/me/destinations/${encodeURIComponent(d.id)}`);
            await reloadMe();
            say(`Removed ${d.address}.`);
            $("destinations-title").focus();
          });
        },
      }, "Remove");
      const last = (state.deliveries || {})[d.id];
      const lastNote = h("p", { class: "last-delivery muted", id: `${p}-last` },
        last ? `Last delivery ${formatWhen(last.at_ms)}: ${last.what}` : "Nothing delivered here yet (or not in the last 90 days).");
      return h("li", { class: "card dest", "data-id": d.id },
        h("div", { class: "dest-head" },
          h("span", { class: "kind" }, d.kind === "irc" ? "IRC" : d.kind === "matrix" ? "Matrix" : "Email"),
          h("strong", { class: "address" }, d.address),
          status),
        lastNote,
        healthNote,
        form,
        h("div", { class: "actions" }, resend, pause, remove),
        h("p", { class: "field-error", id: errorId }));
    }));
  }

  // ------------------------------------------------------------------ filters

  /** A rule kind's catalogue item; `catalogue:<entry>` is a service catalogue entry, shaped
   * like a kind (its one argument: the values, when the entry takes them). */
  function catalogueEntry(kind) {
    if (kind && kind.startsWith("catalogue:")) {
      const id = kind.slice("catalogue:".length);
      const e = state.catalogue.find((r) => r.family === "service-entry" && r.entry === id);
      if (!e) return null;
      return {
        kind, entry: e.entry, title: `${e.service_title}: ${e.title}`, description: e.description,
        args: e.param ? [{ name: "values", kind: "values", required: true, description: e.param }] : [],
      };
    }
    return state.catalogue.find((r) => r.kind === kind && r.family !== "service-entry");
  }

  function argText(value, argKind) {
    if (argKind === "artifacts" && Array.isArray(value)) return value.map((a) => `${a.type}/${a.name}`).join(", ");
    if (Array.isArray(value)) return value.join(", ");
    return value === undefined || value === null ? "" : String(value);
  }

  function ruleSummary(rule) {
    const info = catalogueEntry(rule.kind === "catalogue" ? `catalogue:${rule.entry}` : rule.kind);
    const title = info ? info.title : rule.kind;
    const args = (info ? info.args : [])
      .map((a) => {
        const t = argText(rule[a.name], a.kind);
        return t ? t : a.required ? "" : "me";
      })
      .filter(Boolean);
    return args.length ? `${title}: ${args.join("; ")}` : title;
  }

  /** An input for one catalogue argument. */
  function argInput(id, arg) {
    const errorId = `${id}-error`;
    const help = h("p", { class: "hint", id: `${id}-hint` }, arg.description || "");
    const label = h("label", { for: id }, arg.name.replace(/_/g, " "), arg.required ? "" : " (optional)");
    let input;
    if (arg.kind === "severities") {
      return h("fieldset", { class: "field", "data-arg": arg.name, "data-kind": arg.kind, id },
        h("legend", {}, "Severities"),
        h("div", { class: "checks" }, SEVERITIES.map((s) => h("span", { class: "check" },
          h("input", { type: "checkbox", id: `${id}-${s}`, value: s }),
          h("label", { for: `${id}-${s}` }, s)))),
        help, h("p", { class: "field-error", id: errorId }));
    }
    const listy = ["usernames", "packages", "groups", "applications", "artifacts", "values"].includes(arg.kind);
    input = h("input", {
      id,
      "data-arg": arg.name,
      "data-kind": arg.kind,
      autocapitalize: "none",
      spellcheck: "false",
      required: arg.required,
      placeholder: arg.kind === "artifacts" ? "rpms/kernel, containers/fedora"
        : listy ? "several, separated by commas" : arg.kind === "topic-glob" ? "*.bodhi.update.comment" : "",
      "aria-describedby": `${id}-hint ${errorId}`,
    });
    return h("div", { class: "field" }, label, input, help, h("p", { class: "field-error", id: errorId }));
  }

  /** Reads the argument inputs under root into a rule; throws {id, message} on bad input. */
  function readRule(kind, root) {
    const info = catalogueEntry(kind);
    const rule = info.entry ? { kind: "catalogue", entry: info.entry } : { kind };
    for (const arg of info.args) {
      const el = root.querySelector(`[data-arg="${arg.name}"]`);
      let value;
      if (arg.kind === "severities") {
        value = [...el.querySelectorAll("input:checked")].map((c) => c.value);
      } else if (["usernames", "packages", "groups", "applications", "values"].includes(arg.kind)) {
        value = list(el.value);
      } else if (arg.kind === "artifacts") {
        value = list(el.value).map((item) => {
          const [type, ...rest] = item.split("/");
          const name = rest.join("/");
          if (!name || !ARTIFACT_TYPES.includes(type)) {
            throw { id: `${el.id}-error`, message: `“${item}”: write type/name, the type one of ${ARTIFACT_TYPES.join(", ")}.` };
          }
          return { type, name };
        });
      } else {
        value = el.value.trim();
      }
      const empty = Array.isArray(value) ? value.length === 0 : value === "";
      if (empty && arg.required) throw { id: `${el.id}-error`, message: "Required." };
      if (!empty || arg.kind === "usernames") rule[arg.name] = value;
    }
    return rule;
  }

  function filterErrorId(f, field) {
    const p = `filter-${f.id}`;
    if (!field) return `${p}-error`;
    if (/(^|\.)name$/.test(field)) return `${p}-name-error`;
    if (/rules/.test(field)) return `${p}-rule-error`;
    if (/destinations/.test(field)) return `${p}-destinations-error`;
    return `${p}-error`;
  }

  /** Saves a changed copy of a filter (the whole filter, PUT), then shows the result. */
  async function saveFilter(f, change, message, errorId) {
    const body = {
      name: f.name,
      enabled: f.enabled,
      oneshot: f.oneshot,
      urgent: !!f.urgent,
      destinations: [...(f.destinations || [])],
      rules: (f.rules || []).map((r) => ({ ...r })),
    };
    if (f.max_per_hour) body.max_per_hour = f.max_per_hour;
    change(body);
    try {
      await api("PUT", `/me/filters/${encodeURIComponent(f.id)}`, body);
    } catch (err) {
      renderAll();
      showError(errorId || filterErrorId(f, err.field), describe(err));
      return false;
    }
    await reloadMe();
    if (message) say(message);
    return true;
  }

  function renderFilters() {
    const root = $("filters");
    const filters = state.me.filters || [];
    if (!filters.length) {
      root.replaceChildren(h("p", { class: "empty muted" }, "No filter: you receive nothing. Add one below."));
      return;
    }
    root.replaceChildren(...filters.map(renderFilter));
  }

  function renderFilter(f) {
    const p = `filter-${f.id}`;
    const dests = state.me.destinations || [];

    const nameForm = h("form", { class: "inline-form", novalidate: true },
      h("div", { class: "field grow" },
        h("label", { for: `${p}-name` }, "Name"),
        h("input", { id: `${p}-name`, value: f.name, maxlength: 64, required: true, "aria-describedby": `${p}-name-error` }),
        h("p", { class: "field-error", id: `${p}-name-error` })),
      h("button", { type: "submit", id: `${p}-rename`, "aria-describedby": `${p}-title` }, "Rename"));
    nameForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = $(`${p}-name`).value.trim();
      if (!name) { showError(`${p}-name-error`, "Enter a name."); return; }
      saveFilter(f, (b) => { b.name = name; }, `Renamed the filter to “${name}”.`, `${p}-name-error`);
    });

    const toggles = h("div", { class: "toggles" },
      h("span", { class: "check" },
        h("input", { type: "checkbox", id: `${p}-enabled`, checked: f.enabled !== false,
          onchange: (ev) => saveFilter(f, (b) => { b.enabled = ev.target.checked; },
            `“${f.name}” is now ${ev.target.checked ? "enabled" : "disabled"}.`) }),
        h("label", { for: `${p}-enabled` }, "Enabled")),
      h("span", { class: "check" },
        h("input", { type: "checkbox", id: `${p}-oneshot`, checked: !!f.oneshot, "aria-describedby": `${p}-oneshot-hint`,
          onchange: (ev) => saveFilter(f, (b) => { b.oneshot = ev.target.checked; },
            ev.target.checked ? `“${f.name}” will disable itself after its first match.` : `“${f.name}” is no longer one-shot.`) }),
        h("label", { for: `${p}-oneshot` }, "One-shot")),
      h("p", { class: "hint", id: `${p}-oneshot-hint` }, "A one-shot filter disables itself after its first match."),
      h("span", { class: "check" },
        h("input", { type: "checkbox", id: `${p}-urgent`, checked: !!f.urgent,
          onchange: (ev) => saveFilter(f, (b) => { b.urgent = ev.target.checked; },
            ev.target.checked ? `“${f.name}” now goes through quiet hours.` : `“${f.name}” now waits for quiet hours to end.`) }),
        h("label", { for: `${p}-urgent` }, "Urgent (through quiet hours)")),
      h("span", { class: "field" },
        h("label", { for: `${p}-max` }, "At most per hour"),
        h("input", { id: `${p}-max`, type: "number", min: 1, max: 1000, inputmode: "numeric", value: f.max_per_hour || "", "aria-describedby": `${p}-max-error`,
          onchange: (ev) => {
            const n = ev.target.value.trim();
            saveFilter(f, (b) => { if (n) b.max_per_hour = Math.round(Number(n)); else delete b.max_per_hour; },
              n ? `“${f.name}” sends at most ${n} an hour; the rest wait for the hour's end.` : `“${f.name}” has no hourly limit.`, `${p}-max-error`);
          } }),
        h("p", { class: "field-error", id: `${p}-max-error` })));

    const destBox = h("fieldset", { class: "dest-picks" },
      h("legend", {}, "Send to"),
      dests.length ? dests.map((d) => h("span", { class: "check" },
        h("input", { type: "checkbox", id: `${p}-to-${d.id}`, checked: (f.destinations || []).includes(d.id),
          onchange: (ev) => saveFilter(f, (b) => {
            b.destinations = ev.target.checked
              ? [...new Set([...b.destinations, d.id])]
              : b.destinations.filter((x) => x !== d.id);
          }, ev.target.checked ? `“${f.name}” now sends to ${d.address}.` : `“${f.name}” no longer sends to ${d.address}.`,
          `${p}-destinations-error`) }),
        h("label", { for: `${p}-to-${d.id}` }, d.address, d.confirmed ? "" : " (unconfirmed)"))) :
        h("span", { class: "muted" }, "No destination yet."),
      h("p", { class: "field-error", id: `${p}-destinations-error` }));

    const rules = f.rules || [];
    const ruleList = h("ol", { class: "rules", "aria-label": `Rules of ${f.name}` },
      rules.length ? rules.map((r, i) => {
        const rid = `${p}-rule-${i}`;
        return h("li", { class: r.negated ? "rule negated" : "rule" },
          h("span", { class: "rule-text", id: `${rid}-text` },
            r.negated ? h("strong", { class: "not" }, "NOT ") : null, ruleSummary(r)),
          h("span", { class: "rule-actions" },
            h("span", { class: "check" },
              h("input", { type: "checkbox", id: `${rid}-negate`, checked: !!r.negated, "aria-describedby": `${rid}-text`,
                onchange: (ev) => saveFilter(f, (b) => { b.rules[i].negated = ev.target.checked; },
                  `Rule ${i + 1} of “${f.name}” is now ${ev.target.checked ? "negated" : "not negated"}.`) }),
              h("label", { for: `${rid}-negate` }, "Negate")),
            h("button", { type: "button", class: "small danger", id: `${rid}-remove`, "aria-describedby": `${rid}-text`,
              onclick: () => saveFilter(f, (b) => { b.rules.splice(i, 1); }, `Removed rule ${i + 1} of “${f.name}”.`)
                .then((ok) => { if (ok && $(`${p}-add-kind`)) $(`${p}-add-kind`).focus(); }) }, "Remove")));
      }) : h("li", { class: "empty muted" }, "No rule: this filter matches nothing."));

    // Long rule lists (the default filters have twenty) start folded; the choice survives saves.
    const open = state.openRules.has(f.id) || (!state.foldedRules.has(f.id) && rules.length <= 8);
    const rulesBox = h("details", { class: "rules-box", open,
      ontoggle: (ev) => {
        if (ev.target.open) { state.openRules.add(f.id); state.foldedRules.delete(f.id); }
        else { state.openRules.delete(f.id); state.foldedRules.add(f.id); }
      } },
      h("summary", {}, h("h4", {}, `Rules (${rules.length}, all must hold)`)),
      ruleList);

    // Adding a rule: pick a kind from the catalogue, its description and argument fields follow.
    const kindSelect = h("select", { id: `${p}-add-kind`, "aria-describedby": `${p}-add-desc` },
      h("option", { value: "" }, "Choose a rule…"),
      ["tracking", "generic", "narrowing"].map((family) => {
        const items = state.catalogue.filter((r) => r.family === family);
        if (!items.length) return null;
        const labels = { tracking: "Tracking", generic: "Generic", narrowing: "Narrowing" };
        return h("optgroup", { label: labels[family] }, items.map((r) => h("option", { value: r.kind }, r.title)));
      }),
      (() => {
        const others = state.catalogue.filter((r) => !["tracking", "generic", "narrowing", "service", "service-entry"].includes(r.family));
        return others.length ? h("optgroup", { label: "Other" }, others.map((r) => h("option", { value: r.kind }, r.title))) : null;
      })(),
      // The service catalogue: one group per service, one option per event.
      (() => {
        const groups = new Map();
        for (const e of state.catalogue.filter((r) => r.family === "service-entry")) {
          if (!groups.has(e.service_title)) groups.set(e.service_title, []);
          groups.get(e.service_title).push(e);
        }
        return [...groups].map(([service, items]) => h("optgroup", { label: service },
          items.map((e) => h("option", { value: `catalogue:${e.entry}`, "data-search": `${service} ${e.title} ${e.description} ${e.entry}`.toLowerCase() }, e.title))));
      })());
    // Search narrows the choice to the events and rules whose words match.
    const search = h("input", { type: "search", id: `${p}-add-search`, placeholder: "Search events: koji failed, bodhi comment…",
      autocapitalize: "none", spellcheck: "false", "aria-controls": `${p}-add-kind` });
    search.addEventListener("input", () => {
      const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const opt of kindSelect.querySelectorAll("option")) {
        if (!opt.value) continue;
        const text = opt.dataset.search || opt.textContent.toLowerCase();
        opt.hidden = !words.every((w) => text.includes(w));
      }
      for (const g of kindSelect.querySelectorAll("optgroup")) {
        g.hidden = ![...g.querySelectorAll("option")].some((o) => !o.hidden);
      }
    });
    const desc = h("p", { class: "hint", id: `${p}-add-desc`, "aria-live": "polite" });
    const argsBox = h("div", { class: "rule-args" });
    const negate = h("span", { class: "check" },
      h("input", { type: "checkbox", id: `${p}-add-negate` }),
      h("label", { for: `${p}-add-negate` }, "Negate (the rule must not hold)"));
    kindSelect.addEventListener("change", () => {
      const info = catalogueEntry(kindSelect.value);
      desc.textContent = info ? info.description : "";
      argsBox.replaceChildren(...(info ? info.args.map((a) => argInput(`${p}-arg-${a.name}`, a)) : []));
    });
    const addForm = h("form", { class: "add-rule", novalidate: true },
      h("h4", {}, "Add a rule"),
      h("div", { class: "field" }, h("label", { for: `${p}-add-search` }, "Search"), search),
      h("div", { class: "field" }, h("label", { for: `${p}-add-kind` }, "Rule"), kindSelect),
      desc, argsBox, negate,
      h("p", { class: "field-error", id: `${p}-rule-error` }),
      h("button", { type: "submit", id: `${p}-add-rule` }, "Add rule"));
    addForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      clearErrors(addForm);
      const kind = kindSelect.value;
      if (!kind) { showError(`${p}-rule-error`, "Choose a rule."); kindSelect.focus(); return; }
      let rule;
      try {
        rule = readRule(kind, argsBox);
      } catch (e) {
        if (e && e.id) { showError(e.id, e.message); return; }
        throw e;
      }
      if ($(`${p}-add-negate`).checked) rule.negated = true;
      const title = catalogueEntry(kind).title;
      // The error of a failed add stays next to the form, whose input is kept.
      const values = [...addForm.querySelectorAll("input, select")].map((el) => [el.id, el.type === "checkbox" ? el.checked : el.value]);
      saveFilter(f, (b) => { b.rules.push(rule); }, `Added the rule “${title}” to “${f.name}”.`, null).then((ok) => {
        if (ok) { if ($(`${p}-add-kind`)) $(`${p}-add-kind`).focus(); return; }
        const sel = $(`${p}-add-kind`);
        if (!sel) return;
        sel.value = kind;
        sel.dispatchEvent(new Event("change"));
        const errText = $(filterErrorId(f, "rules")).textContent || $(`${p}-error`).textContent;
        for (const [id, v] of values) {
          const el = $(id);
          if (!el) continue;
          if (el.type === "checkbox") el.checked = v; else el.value = v;
        }
        showError(`${p}-rule-error`, errText);
        $(`${p}-error`).textContent = "";
      });
    });

    // Preview: what the rules (with the rule being added, once it reads) would have matched
    // in the last 14 days. Fetched when opened and again, debounced, while the rule is edited.
    const previewBody = h("div", { class: "preview-body", id: `${p}-preview-body`, "aria-live": "polite" });
    let previewTimer = null;
    let previewSeq = 0;
    function previewRules() {
      const rules = (f.rules || []).map((r) => ({ ...r }));
      const kind = kindSelect.value;
      if (kind) {
        try {
          const extra = readRule(kind, argsBox);
          if ($(`${p}-add-negate`) && $(`${p}-add-negate`).checked) extra.negated = true;
          rules.push(extra);
        } catch (e) {
          if (!(e && e.id)) throw e;
        }
      }
      return rules;
    }
    async function refreshPreview() {
      const seq = ++previewSeq;
      previewBody.replaceChildren(h("p", { class: "muted" }, "Looking at the last 14 days…"));
      try {
        const r = await api("POST", "/me/filters/preview", { rules: previewRules() });
        if (seq !== previewSeq) return;
        const items = (r.matches || []).map((m) => h("li", { class: "preview-item" },
          m.link && /^https?:\/\//.test(m.link)
            ? h("a", { href: m.link, rel: "noopener noreferrer" }, m.title || m.topic) : (m.title || m.topic),
          " ", h("span", { class: "muted" }, formatWhen(m.time)),
          m.about_your_packages ? h("span", { class: "badge" }, "your package") : null));
        previewBody.replaceChildren(
          h("p", { class: "preview-rate", id: `${p}-preview-rate` }, r.summary),
          h("p", { class: "hint" }, `${r.matched} of ${r.read} stored messages read match.`),
          items.length ? h("ul", { class: "preview-list", id: `${p}-preview-list` }, items) : null);
      } catch (e) {
        if (seq !== previewSeq) return;
        previewBody.replaceChildren(h("p", { class: "field-error" }, (e && e.message) || String(e)));
      }
    }
    function schedulePreview() {
      if (!state.openPreviews.has(f.id)) return;
      clearTimeout(previewTimer);
      previewTimer = setTimeout(refreshPreview, 400);
    }
    const previewBox = h("details", { class: "preview", id: `${p}-preview`, open: state.openPreviews.has(f.id),
      ontoggle: (ev) => {
        if (ev.target.open) { state.openPreviews.add(f.id); refreshPreview(); } else state.openPreviews.delete(f.id);
      } },
      h("summary", {}, h("h4", {}, "Preview: what this filter would have sent")),
      previewBody);
    addForm.addEventListener("input", schedulePreview);
    addForm.addEventListener("change", schedulePreview);

    const remove = h("button", { type: "button", class: "danger", id: `${p}-delete`, "aria-describedby": `${p}-title`,
      onclick: (ev) => {
        if (!window.confirm(`Delete the filter “${f.name}”?`)) return;
        busy(ev.currentTarget, `${p}-error`, async () => {
          await api("DELETE", `/me/filters/${encodeURIComponent(f.id)}`);
          await reloadMe();
          say(`Deleted the filter “${f.name}”.`);
          $("filters-title").focus();
        });
      } }, "Delete filter");

    return h("article", { class: f.enabled === false ? "card filter disabled" : "card filter", "data-id": f.id, id: p, tabindex: -1, "aria-labelledby": `${p}-title` },
      h("h3", { id: `${p}-title` }, f.name,
        f.enabled === false ? h("span", { class: "badge" }, "disabled") : null,
        f.oneshot ? h("span", { class: "badge" }, "one-shot") : null),
      nameForm, toggles, destBox,
      rulesBox,
      addForm,
      previewBox,
      h("div", { class: "actions end" }, remove),
      h("p", { class: "field-error", id: `${p}-error` }));
  }

  $("add-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const name = $("new-filter-name").value.trim();
    if (!name) { showError("new-filter-name-error", "Enter a name."); $("new-filter-name").focus(); return; }
    // A new filter sends to every confirmed destination; change it in the filter.
    const destinations = (state.me.destinations || []).filter((d) => d.confirmed).map((d) => d.id);
    busy(form.querySelector("button[type=submit]"), "new-filter-name-error", async () => {
      const f = await api("POST", "/me/filters", { name, enabled: true, oneshot: false, destinations, rules: [] });
      form.reset();
      await reloadMe();
      say(`Added the filter “${f.name}”: add rules to it.`);
      const sel = $(`filter-${f.id}-add-kind`);
      if (sel) sel.focus();
    });
  });

  // ------------------------------------------------------------------ recent

  async function loadRecent() {
    showError("recent-error", "");
    let items;
    try {
      items = await api("GET", "/me/recent");
    } catch (err) {
      showError("recent-error", describe(err));
      return;
    }
    items = Array.isArray(items) ? items : (items && items.items) || [];
    const ol = $("recent");
    if (!items.length) {
      ol.replaceChildren(h("li", { class: "empty muted" }, "Nothing sent to you lately."));
      return;
    }
    ol.replaceChildren(...items.map((n) => h("li", { class: "card notification", "data-msg-id": n.msg_id },
      h("div", { class: "n-title" },
        n.app ? h("span", { class: "kind" }, n.app) : null,
        n.link && /^https?:\/\//.test(n.link)
          ? h("a", { href: n.link, rel: "noopener noreferrer" }, n.subtitle || n.title || n.topic)
          : h("strong", {}, n.subtitle || n.title || n.topic)),
      h("p", { class: "n-meta muted" },
        [n.filter ? `filter “${n.filter}”` : null,
          n.address ? `to ${n.address}${n.digest ? " (digest)" : ""}` : null,
          n.topic || null,
          formatWhen(n.timestamp || n.time || n.at)].filter(Boolean).join(" · ")),
      n.msg_id ? h("button", { type: "button", class: "small link-button", onclick: () => explain(n.msg_id) }, "Why?") : null)));
  }

  $("recent-refresh").addEventListener("click", (ev) => busy(ev.currentTarget, "recent-error", async () => {
    await loadRecent();
    say("Recent notifications refreshed.");
  }));

  // -------------------------------------------------------- feed and live updates

  $("feed-rotate").addEventListener("click", (ev) => busy(ev.currentTarget, "feed-error", async () => {
    const r = await api("POST", "/me/feed-token");
    $("feed-url").value = r.url;
    $("feed-url-line").hidden = false;
    $("feed-url").focus();
    $("feed-url").select();
    say("New feed address made; the previous one no longer works.");
  }));

  // Polls /me/latest with If-None-Match: 304 while nothing is new (no SSE: the Lambda adapter
  // cannot stream). Paused while the tab is hidden.
  const LIVE_INTERVAL_MS = 5000;
  const live = { timer: null, etag: null, newest: null };

  function startLive() {
    if (live.timer) return;
    live.etag = null;
    live.newest = null;
    live.timer = setInterval(pollLatest, LIVE_INTERVAL_MS);
    pollLatest();
  }

  async function pollLatest() {
    if (!state.token || $("app").hidden) {
      clearInterval(live.timer);
      live.timer = null;
      return;
    }
    if (document.hidden) return;
    const headers = { Accept: "application/json", Authorization: `Bearer ${state.token}` };
    if (live.etag) headers["If-None-Match"] = live.etag;
    let response;
    try {
      response = await fetch(API + "/me/latest", { headers, cache: "no-store" });
    } catch (_) {
      $("live-state").textContent = "Live updates: the server cannot be reached; retrying.";
      return;
    }
    if (response.status === 304) return;
    if (!response.ok) {
      $("live-state").textContent = `Live updates paused (${response.status}).`;
      return;
    }
    const data = await response.json();
    const items = (data && data.items) || [];
    const newest = items.length ? items[0].job_id || items[0].msg_id : null;
    const first = live.etag === null;
    live.etag = response.headers.get("ETag");
    $("live-state").textContent = "New notifications appear in the list above within seconds.";
    if (!first && newest && newest !== live.newest) {
      const n = items[0];
      await loadRecent();
      loadDeliveries();
      say(`New notification: ${n.subtitle || n.title || n.topic}`);
    }
    live.newest = newest;
  }

  // ----------------------------------------------------------------- explain

  function explain(msgId) {
    $("explain-id").value = msgId;
    $("explain-section").scrollIntoView({ behavior: "smooth", block: "start" });
    $("explain-form").requestSubmit();
  }

  /** The rules of one filter in an explanation; in a long list the rules that held fold away. */
  function explainRules(rules) {
    const item = (r) => h("li", { class: r.held ? "held" : "failed" },
      h("span", { class: "mark", "aria-hidden": "true" }, r.held ? "✓" : "✗"),
      h("span", { class: "visually-hidden" }, r.held ? "Held: " : "Did not hold: "),
      h("strong", {}, r.rule && r.rule.negated ? "NOT " : "", r.rule ? ruleSummary(r.rule) : ""),
      " — ", r.why);
    const failed = rules.filter((r) => !r.held);
    if (rules.length <= 8 || !failed.length) return h("ul", { class: "x-rules" }, rules.map(item));
    const held = rules.filter((r) => r.held);
    return h("div", {},
      h("ul", { class: "x-rules" }, failed.map(item)),
      h("details", {}, h("summary", {}, `${held.length} other rules held`),
        h("ul", { class: "x-rules" }, held.map(item))));
  }

  $("explain-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const id = $("explain-id").value.trim();
    const out = $("explain-result");
    if (!id) { showError("explain-id-error", "Paste a message id."); $("explain-id").focus(); return; }
    busy(form.querySelector("button[type=submit]"), "explain-id-error", async () => {
      out.replaceChildren();
      let x;
      try {
        x = await api("GET", `/me/explain/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err.status === 404) throw new Error("No such message: it may be older than the recent-messages window, or never reached fmn.");
        throw err;
      }
      out.replaceChildren(h("div", { class: "card explanation" },
        h("p", { class: x.notified ? "verdict yes" : "verdict no" }, x.summary || (x.notified ? "You were notified." : "You were not notified.")),
        h("p", { class: "muted" }, `Topic ${x.topic} · message ${x.msg_id}`),
        x.user_enabled === false ? h("p", {}, "Your account is disabled.") : null,
        (x.filters || []).map((f) => h("section", { class: "x-filter" },
          h("h4", {}, f.name, " ", h("span", { class: f.matched ? "badge ok" : "badge" }, f.matched ? "matched" : "did not match"),
            f.enabled ? null : h("span", { class: "badge" }, "disabled")),
          explainRules(f.rules || []),
          (f.destinations || []).length ? h("ul", { class: "x-dests" }, f.destinations.map((d) => h("li", {}, `${d.address || d.id}: ${d.outcome}`))) : null))));
    });
  });

  // ---------------------------------------------------------- export/import

  $("export").addEventListener("click", (ev) => busy(ev.currentTarget, null, async () => {
    const prefs = await api("GET", "/me/export");
    const blob = new Blob([JSON.stringify(prefs, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `fmn-${state.me.name}.json`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    say("Exported your settings.");
  }));

  $("reset-filters").addEventListener("click", (ev) => {
    if (!window.confirm("Replace all your filters with the two default ones (events on packages you maintain, events referring to you), feeding every destination?")) return;
    busy(ev.currentTarget, null, async () => {
      await api("POST", "/me/reset");
      await reloadMe();
      say("Your filters are the defaults again.");
    });
  });

  $("import-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const file = $("import-file").files[0];
    if (!file) { showError("import-error", "Choose a JSON file."); $("import-file").focus(); return; }
    busy(form.querySelector("button[type=submit]"), "import-error", async () => {
      let prefs;
      try { prefs = JSON.parse(await file.text()); } catch (e) { throw new Error(`Not JSON: ${e.message}`); }
      if (!window.confirm("Replace all your settings with this file?")) return;
      try {
        await api("PUT", "/me/import", prefs);
      } catch (err) {
        throw new Error(err.field ? `${err.field}: ${describe(err)}` : describe(err));
      }
      form.reset();
      await reloadMe();
      say("Imported your settings. New destinations were sent a confirmation.");
    });
  });

  // ---------------------------------------------------------- administration

  async function loadUsers() {
    showError("admin-error", "");
    let users;
    try {
      users = await api("GET", "/admin/users");
    } catch (err) {
      showError("admin-error", describe(err));
      return;
    }
    users = Array.isArray(users) ? users : (users && users.users) || [];
    const action = (u, verb) => h("button", {
      type: "button", class: "small" + (verb === "disable" ? " danger" : ""), id: `admin-${verb}-${u.name}`,
      "aria-label": `${verb === "disable" ? "Disable" : "Enable"} ${u.name}`,
      onclick: (ev) => busy(ev.currentTarget, "admin-error", async () => {
        await api("POST", `/admin/users/${encodeURIComponent(u.name)}/${verb}`);
        await loadUsers();
        say(`${u.name} is now ${verb === "disable" ? "disabled" : "enabled"}.`);
      }),
    }, verb === "disable" ? "Disable" : "Enable");
    const tbody = $("admin-users");
    tbody.replaceChildren(...users.map((u) => h("tr", { "data-name": u.name },
      h("th", { scope: "row" }, u.name),
      h("td", {}, u.bot ? "bot" : "person"),
      h("td", {}, u.enabled ? "enabled" : "disabled"),
      h("td", { class: "num" }, String(u.destinations ?? "")),
      h("td", { class: "num" }, String(u.filters ?? "")),
      h("td", {}, h("div", { class: "actions" },
        u.enabled ? action(u, "disable") : action(u, "enable"),
        u.bot ? h("button", { type: "button", class: "small", "aria-label": `Edit ${u.name}'s preferences`,
          onclick: (ev) => busy(ev.currentTarget, "admin-error", () => editBot(u.name)) }, "Edit") : null)))));
  }

  async function editBot(name) {
    const prefs = await api("GET", `/admin/users/${encodeURIComponent(name)}/prefs`);
    const form = $("admin-prefs");
    form.dataset.name = name;
    $("admin-prefs-title").textContent = `Preferences of ${name}`;
    $("admin-prefs-json").value = JSON.stringify(prefs, null, 2);
    showError("admin-prefs-error", "");
    form.hidden = false;
    $("admin-prefs-json").focus();
  }

  $("admin-refresh").addEventListener("click", (ev) => busy(ev.currentTarget, "admin-error", loadUsers));

  $("admin-create").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    const name = $("admin-name").value.trim();
    if (!name) { showError("admin-name-error", "Enter an account name."); $("admin-name").focus(); return; }
    const body = { name, bot: $("admin-bot").checked, create_defaults: $("admin-defaults").checked };
    const email = $("admin-email").value.trim();
    if (email) body.email = email;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    api("POST", "/admin/users", body).then(async () => {
      form.reset();
      await loadUsers();
      say(`Created the account ${name}.`);
    }, (err) => {
      const id = /email|address|destinations/.test(err.field || "") ? "admin-email-error"
        : /name/.test(err.field || "") || err.code === "conflict" ? "admin-name-error" : "admin-create-error";
      showError(id, describe(err));
    }).finally(() => { button.disabled = false; });
  });

  $("admin-prefs").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const name = form.dataset.name;
    busy(form.querySelector("button[type=submit]"), "admin-prefs-error", async () => {
      let prefs;
      try { prefs = JSON.parse($("admin-prefs-json").value); } catch (e) { throw new Error(`Not JSON: ${e.message}`); }
      try {
        await api("PUT", `/admin/users/${encodeURIComponent(name)}/prefs`, prefs);
      } catch (err) {
        throw new Error(err.field ? `${err.field}: ${describe(err)}` : describe(err));
      }
      form.hidden = true;
      await loadUsers();
      say(`Saved the preferences of ${name}.`);
    });
  });

  $("admin-prefs-close").addEventListener("click", () => { $("admin-prefs").hidden = true; });

  // ------------------------------------------------------------ confirmation

  async function confirmView(token) {
    const body = $("confirm-body");
    const path = `/confirm/${encodeURIComponent(token)}`;
    let info;
    try {
      info = await api("GET", path);
    } catch (err) {
      body.replaceChildren(h("p", {}, err.status === 410 || err.status === 404
        ? "This link was already used or has expired. Ask for a new confirmation from your settings."
        : describe(err)));
      return;
    }
    const what = info.kind === "irc" ? "the IRC nick" : info.kind === "matrix" ? "the Matrix user" : "the email address";
    body.replaceChildren(
      h("p", {}, "The Fedora account ", h("strong", {}, info.user), " asks to send its notifications to ",
        what, " ", h("strong", { class: "address" }, info.address), "."),
      h("p", {}, "Accept if this is you (or you want them). Reject if you did not ask for it: nothing will be sent."),
      info.expires ? h("p", { class: "muted" }, `This link expires ${formatWhen(info.expires)}.`) : null);
    $("confirm-actions").hidden = false;
    const decide = (accept) => async () => {
      showError("confirm-error", "");
      for (const b of $("confirm-actions").querySelectorAll("button")) b.disabled = true;
      try {
        const r = await api("POST", path, { accept });
        $("confirm-actions").hidden = true;
        body.replaceChildren(h("p", { class: "verdict " + (r && r.confirmed ? "yes" : "no"), tabindex: "-1", id: "confirm-done" },
          r && r.confirmed
            ? `Confirmed: ${info.address} will receive ${info.user}'s notifications.`
            : `Rejected: nothing will be sent to ${info.address}.`));
        $("confirm-done").focus();
        say(r && r.confirmed ? "Confirmed." : "Rejected.");
      } catch (err) {
        showError("confirm-error", err.status === 410 ? "This link was already used or has expired." : describe(err));
        for (const b of $("confirm-actions").querySelectorAll("button")) b.disabled = false;
      }
    };
    $("confirm-accept").onclick = decide(true);
    $("confirm-reject").onclick = decide(false);
  }

  start();
})();
