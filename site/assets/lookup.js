/* gridcredit personal look-up (个人查询).
 *
 * Mirrors scoring/publish/lookup.py: PBKDF2-HMAC-SHA256(code, salt) → master key;
 * HMAC(master, "file") names the data file lookup/<id[0:2]>/<id>.js, HMAC(master, "enc")
 * and HMAC(master, "mac") decrypt and check it. The data file is loaded with a
 * <script> tag (works on static hosts and file://) and calls
 * gridcreditLookup(id, payload). Nothing is sent anywhere: the code never
 * leaves this page (the form has no named field and stays disabled until this
 * script enables it). All text is inserted with textContent, never as HTML.
 *
 * Web Crypto (crypto.subtle) exists only in secure contexts (https, localhost,
 * file://). A county that serves the site over plain http still gets a working
 * look-up: the small SHA-256 / HMAC / PBKDF2 below computes the same bytes
 * (tested against Python's hashlib in tests/test_site_lookup_http.py).
 *
 * Written in ES5 with promises (no async/await, arrow functions or let) so
 * that older phone browsers and in-app WebViews (WeChat) can run it.
 */
(function () {
  "use strict";
  if (window.gridcreditLookup) return;  // loaded twice (page and extra_javascript): run once
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

  /* Only ASCII (codes, salts, labels) is ever encoded. */
  function utf8(text) {
    if (window.TextEncoder) return new TextEncoder().encode(text);
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 255;
    return out;
  }

  function fromUtf8(bytes) {
    if (window.TextDecoder) return new TextDecoder().decode(bytes);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return decodeURIComponent(escape(bin));
  }

  /* ---- SHA-256 (FIPS 180-4), HMAC (RFC 2104), PBKDF2 (RFC 8018) in plain JS ---- */
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var W = new Array(64);

  function compress(st, b, off) {
    var i, x, y;
    for (i = 0; i < 16; i++) {
      W[i] = (b[off + 4 * i] << 24) | (b[off + 4 * i + 1] << 16) | (b[off + 4 * i + 2] << 8) | b[off + 4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
      x = W[i - 15];
      y = W[i - 2];
      W[i] = (W[i - 16] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + W[i - 7] +
        ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10))) | 0;
    }
    var a = st[0], c1 = st[1], c2 = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7], t1, t2;
    for (i = 0; i < 64; i++) {
      t1 = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) +
        ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      t2 = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
        ((a & c1) ^ (a & c2) ^ (c1 & c2))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c2; c2 = c1; c1 = a; a = (t1 + t2) | 0;
    }
    st[0] = (st[0] + a) | 0; st[1] = (st[1] + c1) | 0; st[2] = (st[2] + c2) | 0; st[3] = (st[3] + d) | 0;
    st[4] = (st[4] + e) | 0; st[5] = (st[5] + f) | 0; st[6] = (st[6] + g) | 0; st[7] = (st[7] + h) | 0;
  }

  /* SHA-256 of msg, continuing from state `init` after `prefix` bytes (whole blocks). */
  function sha256(msg, init, prefix) {
    var st = (init || IV).slice(0);
    var total = (prefix || 0) + msg.length;
    var size = Math.ceil((msg.length + 9) / 64) * 64;
    var b = new Uint8Array(size);
    b.set(msg);
    b[msg.length] = 0x80;
    var bits = total * 8, hi = Math.floor(bits / 4294967296), lo = bits >>> 0;
    b[size - 8] = hi >>> 24; b[size - 7] = hi >>> 16 & 255; b[size - 6] = hi >>> 8 & 255; b[size - 5] = hi & 255;
    b[size - 4] = lo >>> 24; b[size - 3] = lo >>> 16 & 255; b[size - 2] = lo >>> 8 & 255; b[size - 1] = lo & 255;
    for (var off = 0; off < size; off += 64) compress(st, b, off);
    var out = new Uint8Array(32);
    for (var i = 0; i < 8; i++) {
      out[4 * i] = st[i] >>> 24; out[4 * i + 1] = st[i] >>> 16 & 255;
      out[4 * i + 2] = st[i] >>> 8 & 255; out[4 * i + 3] = st[i] & 255;
    }
    return out;
  }

  /* The HMAC key schedule once: the states after the inner and outer pad blocks. */
  function hmacPrepare(key) {
    if (key.length > 64) key = sha256(key);
    var ipad = new Uint8Array(64), opad = new Uint8Array(64);
    for (var i = 0; i < 64; i++) {
      ipad[i] = (key[i] || 0) ^ 0x36;
      opad[i] = (key[i] || 0) ^ 0x5c;
    }
    var inner = IV.slice(0), outer = IV.slice(0);
    compress(inner, ipad, 0);
    compress(outer, opad, 0);
    return { inner: inner, outer: outer };
  }

  function hmacSign(prep, data) {
    return sha256(sha256(data, prep.inner, 64), prep.outer, 64);
  }

  function pbkdf2(password, salt, iterations) {
    var prep = hmacPrepare(password);
    var u = hmacSign(prep, concat(salt, new Uint8Array([0, 0, 0, 1])));
    var t = new Uint8Array(u);
    for (var n = 1; n < iterations; n++) {
      u = hmacSign(prep, u);
      for (var j = 0; j < 32; j++) t[j] ^= u[j];
    }
    return t;
  }

  /* Web Crypto where the browser offers it (https, localhost, file://), else the code above. */
  var subtle = window.crypto && window.crypto.subtle;
  var plain = {
    hmacKey: function (raw) { return Promise.resolve(hmacPrepare(raw)); },
    sign: function (key, data) { return Promise.resolve(hmacSign(key, data)); },
    pbkdf2: function (code, salt, iterations) {
      return new Promise(function (resolve) {
        // the "正在查询" message paints before the loop runs (~0.1 s on a phone)
        setTimeout(function () { resolve(pbkdf2(utf8(code), utf8(salt), iterations)); }, 20);
      });
    }
  };
  var webcrypto = {
    hmacKey: function (raw) {
      return subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    },
    sign: function (key, data) {
      return subtle.sign("HMAC", key, data).then(function (sig) { return new Uint8Array(sig); });
    },
    pbkdf2: function (code, salt, iterations) {
      return subtle.importKey("raw", utf8(code), "PBKDF2", false, ["deriveBits"]).then(function (base) {
        return subtle.deriveBits(
          { name: "PBKDF2", hash: "SHA-256", salt: utf8(salt), iterations: iterations }, base, 256);
      }).then(function (bits) { return new Uint8Array(bits); });
    }
  };
  var backend = subtle ? webcrypto : plain;

  /* For the tests: the plain-JS path, whatever the browser offers. */
  window.gridcreditCrypto = {
    pbkdf2Hex: function (code, salt, iterations) { return hex(pbkdf2(utf8(code), utf8(salt), iterations)); },
    hmacHex: function (key, text) { return hex(hmacSign(hmacPrepare(utf8(key)), utf8(text))); },
    sha256Hex: function (text) { return hex(sha256(utf8(text))); },
    backend: subtle ? "webcrypto" : "plain"
  };

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
    return backend.hmacKey(raw);
  }

  function sign(key, data) {
    return backend.sign(key, data);
  }

  function deriveKeys(code, salt, iterations) {
    var keys = {};
    return backend.pbkdf2(code, salt, iterations)
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
      return JSON.parse(fromUtf8(out));
    });
  }

  function load(base, id) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      var timer = setTimeout(function () { delete pending[id]; reject(new Error("timeout")); }, 15000);
      pending[id] = function (payload) { clearTimeout(timer); resolve(payload); };
      script.onerror = function () { clearTimeout(timer); delete pending[id]; reject(new Error("notfound")); };
      // spread over 256 sub-folders: no folder holds tens of thousands of files
      script.src = base + id.slice(0, 2) + "/" + id + ".js";
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
    // the theme's scroll wrapper: a wide table scrolls sideways instead of squeezing
    var scroll = el("div", "md-typeset__scrollwrap gc-scroll");
    var wrap = el("div", "md-typeset__table");
    scroll.appendChild(wrap);
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
    return scroll;
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

  function link(href, text) {
    var a = el("a", null, text);
    a.setAttribute("href", href);
    return a;
  }

  function render(out, data, root) {
    clear(out);
    var head = el("div", "gc-lookup-head");
    head.appendChild(el("strong", null, data.name));
    if (data.grid) head.appendChild(el("span", "gc-muted", " · " + data.grid));
    head.appendChild(el("span", "gc-muted", " · 数据截至" + (data.month_label || data.month) + "末"));
    out.appendChild(head);
    /* what the two figures mean, where to spend and where to object */
    var about = el("p", "gc-lookup-about",
      "信用积分决定等级和排名，兑换不减少；可用积分可用于兑换，兑换时扣减。");
    var catalog = root && root.getAttribute("data-catalog");
    var objection = root && root.getAttribute("data-objection");
    if (catalog) { about.appendChild(document.createTextNode(" ")); about.appendChild(link(catalog, "兑换目录")); }
    if (objection) { about.appendChild(document.createTextNode(" ")); about.appendChild(link(objection, "如何提出异议")); }
    out.appendChild(about);
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
    if (!window.Promise || !window.Uint8Array) {
      message(out, "当前浏览器版本过旧，无法查询。请用手机自带的浏览器打开本页。", "gc-error");
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
        render(out, data, root);
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
