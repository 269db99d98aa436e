/* gridcredit personal look-up (个人查询).
 *
 * Mirrors scoring/lookup.py: PBKDF2-HMAC-SHA256(code, salt) → master key;
 * HMAC(master, "file") names the data file lookup/<id>.js, HMAC(master, "enc")
 * and HMAC(master, "mac") decrypt and check it. The data file is loaded with a
 * <script> tag (works on static hosts and file://) and calls
 * gridcreditLookup(id, payload). Nothing is sent anywhere: the code never
 * leaves this page. All text is inserted with textContent, never as HTML.
 */
(function () {
  "use strict";
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  var pending = {};
  var enc = new TextEncoder();

  window.gridcreditLookup = function (id, payload) {
    var resolve = pending[id];
    if (resolve) {
      delete pending[id];
      resolve(payload);
    }
  };

  function normalize(code) {
    var up = String(code).toUpperCase().replace(/0/g, "O").replace(/1/g, "I").replace(/8/g, "B");
    var out = "";
    for (var i = 0; i < up.length; i++) {
      if (ALPHABET.indexOf(up[i]) >= 0) out += up[i];
    }
    return out;
  }

  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function fromBase64(text) {
    var bin = atob(text);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function concat(a, b) {
    var out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  async function hmacKey(raw) {
    return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  async function sign(key, data) {
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
  }

  async function deriveKeys(code, salt, iterations) {
    var base = await crypto.subtle.importKey("raw", enc.encode(code), "PBKDF2", false, ["deriveBits"]);
    var master = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: enc.encode(salt), iterations: iterations }, base, 256);
    var mk = await hmacKey(master);
    return {
      file: hex(await sign(mk, enc.encode("file"))).slice(0, 32),
      enc: await hmacKey(await sign(mk, enc.encode("enc"))),
      mac: await hmacKey(await sign(mk, enc.encode("mac")))
    };
  }

  async function decrypt(keys, payload) {
    var raw = fromBase64(payload);
    var nonce = raw.slice(0, 16), ct = raw.slice(16, raw.length - 16), tag = raw.slice(raw.length - 16);
    var want = (await sign(keys.mac, concat(nonce, ct))).slice(0, 16);
    if (hex(want) !== hex(tag)) throw new Error("mac");
    var out = new Uint8Array(ct.length);
    for (var block = 0; block * 32 < ct.length; block++) {
      var counter = new Uint8Array([block >>> 24 & 255, block >>> 16 & 255, block >>> 8 & 255, block & 255]);
      var ks = await sign(keys.enc, concat(nonce, counter));
      for (var j = 0; j < 32 && block * 32 + j < ct.length; j++) out[block * 32 + j] = ct[block * 32 + j] ^ ks[j];
    }
    return JSON.parse(new TextDecoder().decode(out));
  }

  function load(base, id) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      var timer = setTimeout(function () { delete pending[id]; reject(new Error("timeout")); }, 15000);
      pending[id] = function (payload) { clearTimeout(timer); resolve(payload); };
      script.onerror = function () { clearTimeout(timer); delete pending[id]; reject(new Error("notfound")); };
      script.src = base + id + ".js";
      document.head.appendChild(script);
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function signed(n) {
    return n > 0 ? "+" + n : String(n);
  }

  function render(out, data) {
    out.replaceChildren();
    var head = el("div", "gc-lookup-head");
    head.appendChild(el("strong", null, data.name));
    head.appendChild(el("span", "gc-muted", " · 数据截至" + (data.month_label || data.month) + "末"));
    out.appendChild(head);
    (data.accounts || []).forEach(function (acc) {
      var card = el("section", "gc-card");
      card.appendChild(el("h3", null, acc.group));
      var stats = el("div", "gc-stats");
      [["信用积分", acc.score], ["等级", !acc.tier_title ? acc.tier
        : (acc.tier.length <= 3 || acc.tier === acc.tier.toUpperCase()) ? acc.tier + " " + acc.tier_title
        : acc.tier_title],
       ["可用积分", acc.wallet]].forEach(function (pair) {
        var box = el("div", "gc-stat");
        box.appendChild(el("span", "gc-stat-label", pair[0]));
        box.appendChild(el("span", "gc-stat-value", pair[1]));
        stats.appendChild(box);
      });
      card.appendChild(stats);
      if (acc.note) card.appendChild(el("p", "gc-muted", acc.note));
      var entries = acc.entries || [];
      card.appendChild(el("h4", null, "本月明细"));
      if (!entries.length) card.appendChild(el("p", "gc-muted", "本月没有积分变动。"));
      if (entries.length) {
        var wrap = el("div", "md-typeset__table");
        var table = el("table");
        var thead = el("thead");
        var hr = el("tr");
        ["日期", "事项", "信用积分", "可用积分"].forEach(function (h) { hr.appendChild(el("th", null, h)); });
        thead.appendChild(hr);
        table.appendChild(thead);
        var tbody = el("tbody");
        entries.forEach(function (e) {
          var tr = el("tr");
          tr.appendChild(el("td", "gc-num", e.date));
          var what = el("td", null, e.rule);
          if (e.flag) what.appendChild(el("span", "gc-flag", e.flag));
          tr.appendChild(what);
          tr.appendChild(el("td", e.points < 0 ? "gc-down" : (e.points > 0 ? "gc-up" : null), signed(e.points)));
          tr.appendChild(el("td", null, e.wallet ? signed(e.wallet) : "—"));
          tbody.appendChild(tr);
        });
        table.appendChild(tbody);
        wrap.appendChild(table);
        card.appendChild(wrap);
      } else {
        card.appendChild(el("p", "gc-muted", "暂无积分记录。"));
      }
      out.appendChild(card);
    });
  }

  function message(out, text, cls) {
    out.replaceChildren(el("p", "gc-message " + (cls || ""), text));
  }

  function init() {
    var root = document.getElementById("gc-lookup");
    if (!root || root.dataset.ready) return;
    root.dataset.ready = "1";
    var form = root.querySelector("form");
    var input = root.querySelector("input");
    var out = root.querySelector(".gc-lookup-result");
    var salt = root.dataset.salt, iterations = parseInt(root.dataset.iterations, 10);
    var base = root.dataset.base || "./";
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      var code = normalize(input.value);
      if (code.length !== 16) {
        message(out, "查询码不正确：查询码共16位，由字母和数字组成，例如 ABCD-EFGH-IJKL-MNOP。", "gc-error");
        return;
      }
      if (!window.crypto || !crypto.subtle) {
        message(out, "当前浏览器不支持安全查询，请使用较新版本的浏览器打开本页。", "gc-error");
        return;
      }
      message(out, "正在查询……");
      try {
        var keys = await deriveKeys(code, salt, iterations);
        var payload = await load(base, keys.file);
        render(out, await decrypt(keys, payload));
      } catch (err) {
        if (err && err.message === "timeout") {
          message(out, "查询超时，请检查网络后重试。", "gc-error");
        } else {
          message(out, "查询码不正确，请核对后重新输入。如遗失查询码，请向所在网格员申请补发。", "gc-error");
        }
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
