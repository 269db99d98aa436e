/* gridcredit personal look-up (个人查询).
 *
 * Mirrors scoring/lookup.py: PBKDF2-HMAC-SHA256(code, salt) → master key;
 * HMAC(master, "file") names the data file lookup/<id>.js, HMAC(master, "enc")
 * and HMAC(master, "mac") decrypt and check it. The data file is loaded with a
 * <script> tag (works on static hosts and file://) and calls
 * gridcreditLookup(id, payload). Nothing is sent anywhere: the code never
 * leaves this page (the form has no named field and stays disabled until this
 * script enables it). All text is inserted with textContent, never as HTML.
 *
 * Written in ES5 with promises (no async/await, arrow functions or let) so
 * that older phone browsers and in-app WebViews can run it.
 */
(function () {
  "use strict";
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  var pending = {};

  window.gridcreditLookup = function (id, payload) {
    var resolve = pending[id];
    if (resolve) {
      delete pending[id];
      resolve(payload);
    }
  };

  /* Full-width letters, digits and dashes (ＡＢ１－, typed on a Chinese keyboard)
   * become ASCII by NFKC; anything outside the code alphabet is dropped. */
  function normalize(code) {
    var text = String(code);
    if (text.normalize) text = text.normalize("NFKC");
    var up = text.toUpperCase().replace(/0/g, "O").replace(/1/g, "I").replace(/8/g, "B");
    var out = "";
    for (var i = 0; i < up.length; i++) {
      if (ALPHABET.indexOf(up.charAt(i)) >= 0) out += up.charAt(i);
    }
    return out;
  }

  function utf8(text) {
    return new TextEncoder().encode(text);
  }

  function hex(buf) {
    var bytes = new Uint8Array(buf), out = "";
    for (var i = 0; i < bytes.length; i++) out += ("0" + bytes[i].toString(16)).slice(-2);
    return out;
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

  function hmacKey(raw) {
    return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  function sign(key, data) {
    return crypto.subtle.sign("HMAC", key, data).then(function (sig) { return new Uint8Array(sig); });
  }

  function deriveKeys(code, salt, iterations) {
    var keys = {};
    return crypto.subtle.importKey("raw", utf8(code), "PBKDF2", false, ["deriveBits"])
      .then(function (base) {
        return crypto.subtle.deriveBits(
          { name: "PBKDF2", hash: "SHA-256", salt: utf8(salt), iterations: iterations }, base, 256);
      })
      .then(hmacKey)
      .then(function (mk) {
        return Promise.all([sign(mk, utf8("file")), sign(mk, utf8("enc")), sign(mk, utf8("mac"))]);
      })
      .then(function (parts) {
        keys.file = hex(parts[0]).slice(0, 32);
        return Promise.all([hmacKey(parts[1]), hmacKey(parts[2])]);
      })
      .then(function (k) {
        keys.enc = k[0];
        keys.mac = k[1];
        return keys;
      });
  }

  function decrypt(keys, payload) {
    var raw = fromBase64(payload);
    var nonce = raw.subarray(0, 16), ct = raw.subarray(16, raw.length - 16);
    var tag = raw.subarray(raw.length - 16);
    return sign(keys.mac, concat(nonce, ct)).then(function (want) {
      if (hex(want.subarray(0, 16)) !== hex(tag)) throw new Error("mac");
      var blocks = [];
      for (var block = 0; block * 32 < ct.length; block++) {
        var counter = new Uint8Array([block >>> 24 & 255, block >>> 16 & 255, block >>> 8 & 255, block & 255]);
        blocks.push(sign(keys.enc, concat(nonce, counter)));
      }
      return Promise.all(blocks);
    }).then(function (streams) {
      var out = new Uint8Array(ct.length);
      for (var i = 0; i < ct.length; i++) out[i] = ct[i] ^ streams[i >> 5][i & 31];
      return JSON.parse(new TextDecoder().decode(out));
    });
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

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function signed(n) {
    return n > 0 ? "+" + n : String(n);
  }

  function monthLabel(month) {
    var m = /^(\d{4})-(\d{2})$/.exec(month || "");
    return m ? m[1] + "年" + parseInt(m[2], 10) + "月" : (month || "");
  }

  function table(header, rows) {
    var wrap = el("div", "md-typeset__table");
    var t = el("table");
    var thead = el("thead");
    var hr = el("tr");
    header.forEach(function (h) { hr.appendChild(el("th", null, h)); });
    thead.appendChild(hr);
    t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(c); });
      tbody.appendChild(tr);
    });
    t.appendChild(tbody);
    wrap.appendChild(t);
    return wrap;
  }

  function tierText(acc) {
    if (!acc.tier_title) return acc.tier;
    var code = acc.tier.length <= 3 || acc.tier === acc.tier.toUpperCase();
    return code ? acc.tier + " " + acc.tier_title : acc.tier_title;
  }

  function renderAccount(acc, current) {
    var card = el("section", "gc-card");
    card.appendChild(el("h3", null, acc.group));
    var stats = el("div", "gc-stats");
    [["信用积分", acc.score], ["等级", tierText(acc)], ["可用积分", acc.wallet]].forEach(function (pair) {
      var box = el("div", "gc-stat");
      box.appendChild(el("span", "gc-stat-label", pair[0]));
      box.appendChild(el("span", "gc-stat-value", pair[1]));
      stats.appendChild(box);
    });
    card.appendChild(stats);
    if (acc.note) card.appendChild(el("p", "gc-muted", acc.note));

    var months = acc.months || [];
    if (months.length > 1) {
      card.appendChild(el("h4", null, "历月积分"));
      card.appendChild(table(["月份", "信用积分", "等级"], months.map(function (m) {
        return [el("td", "gc-num", m.label || monthLabel(m.month)), el("td", null, m.score), el("td", null, m.tier)];
      })));
    }

    var entries = acc.entries || [];
    card.appendChild(el("h4", null, months.length > 1 ? "积分明细（按计入月份）" : "本月明细"));
    if (!entries.length) {
      card.appendChild(el("p", "gc-muted", months.length > 1 ? "这几个月没有积分变动。" : "本月没有积分变动。"));
      return card;
    }
    var groups = [], byMonth = {};
    entries.forEach(function (e) {
      var m = e.month || current;
      if (!byMonth[m]) { byMonth[m] = []; groups.push(m); }
      byMonth[m].push(e);
    });
    groups.forEach(function (m) {
      if (groups.length > 1 || m !== current) card.appendChild(el("p", "gc-lookup-month", monthLabel(m) + "计入"));
      card.appendChild(table(["日期", "事项", "信用积分", "可用积分"], byMonth[m].map(function (e) {
        var what = el("td", null, e.rule);
        if (e.flag) what.appendChild(el("span", "gc-flag", e.flag));
        return [
          el("td", "gc-num", e.date),
          what,
          el("td", e.points < 0 ? "gc-down" : (e.points > 0 ? "gc-up" : null), signed(e.points)),
          el("td", null, e.wallet ? signed(e.wallet) : "—")
        ];
      })));
    });
    return card;
  }

  function render(out, data) {
    clear(out);
    var head = el("div", "gc-lookup-head");
    head.appendChild(el("strong", null, data.name));
    head.appendChild(el("span", "gc-muted", " · 数据截至" + (data.month_label || data.month) + "末"));
    out.appendChild(head);
    (data.accounts || []).forEach(function (acc) { out.appendChild(renderAccount(acc, data.month)); });
  }

  function message(out, text, cls) {
    clear(out);
    out.appendChild(el("p", "gc-message " + (cls || ""), text));
  }

  function init() {
    var root = document.getElementById("gc-lookup");
    if (!root || root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var form = root.querySelector("form");
    var input = root.querySelector("input");
    var out = root.querySelector(".gc-lookup-result");
    var salt = root.getAttribute("data-salt");
    var iterations = parseInt(root.getAttribute("data-iterations"), 10);
    var base = root.getAttribute("data-base") || "./";
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    if (!window.crypto || !crypto.subtle || !window.Promise || !window.TextEncoder) {
      message(out, "当前浏览器不支持安全查询，请使用较新版本的浏览器（如手机自带浏览器）打开本页。", "gc-error");
      return;
    }
    var fieldset = root.querySelector("fieldset");
    if (fieldset) fieldset.disabled = false;
    form.addEventListener("submit", function () {
      var code = normalize(input.value);
      if (code.length !== 16) {
        message(out, "查询码不正确：查询码共16位，由字母和数字组成，例如 ABCD-EFGH-IJKL-MNOP。", "gc-error");
        return;
      }
      message(out, "正在查询……");
      deriveKeys(code, salt, iterations).then(function (keys) {
        return load(base, keys.file).then(function (payload) { return decrypt(keys, payload); });
      }).then(function (data) {
        render(out, data);
      }, function (err) {
        if (err && err.message === "timeout") {
          message(out, "查询超时，请检查网络后重试。", "gc-error");
        } else {
          message(out, "查询码不正确，请核对后重新输入。如遗失查询码，请向所在网格员申请补发。", "gc-error");
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
