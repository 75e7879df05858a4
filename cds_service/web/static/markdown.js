/* A small, safe markdown subset for CDS card details (same subset as cds_service/web/markdown.py).
 * HTML is escaped first; only our own tags come out: headings, paragraphs, block quotes, bold, italics, code,
 * lists, tables, rules and links (http, https, mailto and relative URLs only). */
(function (global) {
  "use strict";
  var HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
  var UL = /^(\s*)[-*+]\s+(.*)$/;
  var OL = /^(\s*)\d{1,9}[.)]\s+(.*)$/;
  var HR = /^\s*(?:-\s*){3,}$|^\s*(?:\*\s*){3,}$|^\s*(?:_\s*){3,}$/;
  var TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
  var QUOTE = /^\s{0,3}&gt;\s?/;
  var SAFE_SCHEME = /^(?:https?:|mailto:)/i;
  var HAS_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.\-]*:/;

  function escapeHtml(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
  }
  function unescapeHtml(s) {
    return s.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  }
  function safeUrl(url) {
    if (typeof url !== "string") return null;
    url = url.trim();
    var probe = url.replace(/[\x00-\x20]/g, "");
    if (SAFE_SCHEME.test(probe)) return url;
    if (HAS_SCHEME.test(probe)) return null;
    return url;
  }
  function inline(escaped) {
    var codes = [];
    var text = escaped.replace(/`([^`]+)`/g, function (_m, c) {
      codes.push("<code>" + c + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    text = text.replace(/\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)/g, function (_m, label, raw) {
      var url = safeUrl(unescapeHtml(raw));
      if (url === null) return label;
      var ext = /^https?:/i.test(url);
      return '<a href="' + escapeHtml(url) + '"' + (ext ? ' target="_blank" rel="noopener noreferrer"' : "") + ">" + label + "</a>";
    });
    text = text.replace(/\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__/g, function (_m, a, b) {
      return "<strong>" + (a || b) + "</strong>";
    });
    text = text.replace(/(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])/g, function (_m, a, b) {
      return "<em>" + (a || b) + "</em>";
    });
    return text.replace(/\u0000(\d+)\u0000/g, function (_m, n) { return codes[Number(n)]; });
  }
  function cells(line) {
    var body = line.trim();
    if (body.charAt(0) === "|") body = body.slice(1);
    if (body.slice(-1) === "|" && body.slice(-2) !== "\\|") body = body.slice(0, -1);
    return body.split(/(?<!\\)\|/).map(function (c) { return c.trim(); });
  }
  function aligns(sep) {
    return cells(sep).map(function (c) {
      var l = c.charAt(0) === ":", r = c.slice(-1) === ":";
      return l && r ? "center" : r ? "right" : l ? "left" : "";
    });
  }
  function indentOf(s) { return s.replace(/\t/g, "    ").length; }
  function joined(lines) {
    /* Lines of one paragraph: two trailing spaces are a line break (markdown), else a space. */
    var parts = [];
    lines.forEach(function (line, n) {
      parts.push(line.trim());
      if (n < lines.length - 1) parts.push(/  $/.test(line) ? "\u0001" : " ");
    });
    return inline(parts.join("")).replace(/\u0001/g, "<br>");
  }
  function list(lines, i, out) {
    var first = UL.exec(lines[i]) || OL.exec(lines[i]);
    var indent = indentOf(first[1]);
    var tag = UL.test(lines[i]) ? "ul" : "ol";
    out.push("<" + tag + ">");
    var text = [], nested = [], open = false;
    function close() { if (open) out.push("<li>" + joined(text) + nested.join("") + "</li>"); }
    while (i < lines.length) {
      var line = lines[i];
      if (!line.trim()) {
        var nxt = i + 1 < lines.length ? lines[i + 1] : "";
        if (!(UL.test(nxt) || OL.test(nxt))) break;
        i += 1; continue;
      }
      var m = UL.exec(line) || OL.exec(line);
      if (m) {
        var depth = indentOf(m[1]);
        if (depth > indent + 1 && open) {
          var sub = [];
          i = list(lines, i, sub);
          nested.push(sub.join(""));
          continue;
        }
        if (depth < indent) break;
        close();
        text = [m[2]]; nested = []; open = true;
        i += 1; continue;
      }
      if (/^[ \t]/.test(line) && open) { text.push(line); i += 1; continue; }
      break;
    }
    close();
    out.push("</" + tag + ">");
    return i;
  }
  function render(text) {
    if (!text) return "";
    return blocks(escapeHtml(text).replace(/\r\n?/g, "\n").split("\n"), 0);
  }
  function blocks(lines, depth) {
    var out = [], para = [], i = 0;
    function flush() {
      if (para.length) {
        out.push("<p>" + joined(para) + "</p>");
        para = [];
      }
    }
    while (i < lines.length) {
      var line = lines[i], m;
      if (!line.trim()) { flush(); i += 1; continue; }
      if ((m = HEADING.exec(line))) {
        flush();
        var level = Math.min(m[1].length + 2, 6);
        out.push("<h" + level + ">" + inline(m[2]) + "</h" + level + ">");
        i += 1; continue;
      }
      if (line.indexOf("|") >= 0 && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].indexOf("-") >= 0) {
        flush();
        var head = cells(line), al = aligns(lines[i + 1]);
        i += 2;
        var rows = [];
        while (i < lines.length && lines[i].trim() && lines[i].indexOf("|") >= 0) { rows.push(cells(lines[i])); i += 1; }
        var cell = function (tag, value, col) {
          var cls = col < al.length && al[col] ? ' class="al-' + al[col] + '"' : "";
          return "<" + tag + cls + ">" + inline(value) + "</" + tag + ">";
        };
        var t = ['<div class="md-table"><table><thead><tr>'];
        head.forEach(function (c, n) { t.push(cell("th", c, n)); });
        t.push("</tr></thead><tbody>");
        rows.forEach(function (row) {
          var r = row.slice(0, Math.max(head.length, 1));
          while (r.length < head.length) r.push("");
          t.push("<tr>" + r.map(function (c, n) { return cell("td", c, n); }).join("") + "</tr>");
        });
        t.push("</tbody></table></div>");
        out.push(t.join(""));
        continue;
      }
      if (QUOTE.test(line) && depth < 4) {
        flush();
        var inner = [];
        while (i < lines.length && QUOTE.test(lines[i])) { inner.push(lines[i].replace(QUOTE, "")); i += 1; }
        out.push("<blockquote>" + blocks(inner, depth + 1) + "</blockquote>");
        continue;
      }
      if (HR.test(line)) { flush(); out.push("<hr>"); i += 1; continue; }
      if (UL.test(line) || OL.test(line)) { flush(); i = list(lines, i, out); continue; }
      para.push(line);
      i += 1;
    }
    flush();
    return out.join("\n");
  }
  global.MMCDSMarkdown = { render: render, safeUrl: safeUrl, escapeHtml: escapeHtml };
})(window);
