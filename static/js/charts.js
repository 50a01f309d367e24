/*
 * Shared chart loader. Any element with data-chart-url gets the charts that URL describes, drawn with the vendored
 * Lightweight Charts 5 (window.LightweightCharts); load static/vendor/lightweight-charts/... before this file.
 *
 * The URL must be same-origin and answer JSON:
 *   {"panes": [{"title": str, "height": px, "series": [{
 *       "type": "candles" | "line" | "area" | "histogram", "name": str, "color": str (optional),
 *       "data": [{"time": unix seconds, "value": float} | {"time", "open", "high", "low", "close"}],
 *       "markers": [{"time", "position": "belowBar"|"aboveBar", "shape": "arrowUp"|"arrowDown"|"circle",
 *                    "color", "text"}] (optional),
 *       "price_format": {"precision": int, "min_move": float} (optional)}]}]}
 * An optional top-level "empty": str is the sentence shown instead of charts when no series has data.
 * One chart per pane, stacked, time scales kept in step. The element's own server-rendered text stays as the
 * accessible summary; each chart sits after it as role="img" labelled by its pane title, with a text legend.
 * A container is drawn once (data-chart-state records loading / drawn / failed), also after htmx swaps.
 */
(function () {
  "use strict";

  var PALETTE = ["#1a62d6", "#b42318", "#067647", "#93370d", "#6941c6", "#475467"];
  var MAX_HEIGHT = 900;

  function seriesDefinition(lib, type) {
    return { candles: lib.CandlestickSeries, line: lib.LineSeries, area: lib.AreaSeries, histogram: lib.HistogramSeries }[type];
  }

  // Lightweight Charts throws on unsorted or repeated times: sort, and keep the last point of a repeated time.
  function cleanPoints(points, type) {
    var byTime = new Map();
    (points || []).forEach(function (point) {
      if (!point || typeof point.time !== "number") return;
      var clean = { time: point.time };
      if (type === "candles") {
        ["open", "high", "low", "close"].forEach(function (key) { clean[key] = Number(point[key]); });
      } else {
        clean.value = Number(point.value);
        if (typeof point.color === "string") clean.color = point.color;
      }
      byTime.set(point.time, clean);
    });
    return Array.from(byTime.values()).sort(function (a, b) { return a.time - b.time; });
  }

  function seriesOptions(spec, index) {
    var color = spec.color || PALETTE[index % PALETTE.length];
    var options = { title: "", lastValueVisible: true, priceLineVisible: false };
    if (spec.type === "candles") {
      options.upColor = "#067647"; options.borderUpColor = "#067647"; options.wickUpColor = "#067647";
      options.downColor = "#b42318"; options.borderDownColor = "#b42318"; options.wickDownColor = "#b42318";
    } else if (spec.type === "area") {
      options.lineColor = color; options.topColor = color + "55"; options.bottomColor = color + "08"; options.lineWidth = 2;
    } else if (spec.type === "histogram") {
      options.color = color;
    } else {
      options.color = color; options.lineWidth = 2;
    }
    if (spec.price_format && typeof spec.price_format.precision === "number") {
      options.priceFormat = {
        type: "price",
        precision: spec.price_format.precision,
        minMove: Number(spec.price_format.min_move) || Math.pow(10, -spec.price_format.precision),
      };
    }
    return { options: options, color: spec.type === "candles" ? "#067647" : color };
  }

  function legend(entries) {
    var list = document.createElement("ul");
    list.className = "chart-legend";
    entries.forEach(function (entry) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "chart-swatch";
      swatch.setAttribute("aria-hidden", "true");
      swatch.style.backgroundColor = entry.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(entry.name));
      list.appendChild(item);
    });
    return list;
  }

  function drawPane(lib, pane, holder) {
    var figure = document.createElement("figure");
    figure.className = "chart-pane";
    var caption = document.createElement("figcaption");
    var title = document.createElement("span");
    title.className = "chart-title";
    title.textContent = pane.title || "Chart";
    caption.appendChild(title);
    figure.appendChild(caption);

    var host = document.createElement("div");
    host.className = "chart-canvas";
    host.setAttribute("role", "img");
    host.setAttribute("aria-label", pane.title || "Chart");
    var height = Math.min(Math.max(Number(pane.height) || 240, 80), MAX_HEIGHT);
    host.style.height = height + "px";
    figure.appendChild(host);
    holder.appendChild(figure);

    var chart = lib.createChart(host, {
      autoSize: true,
      // The logo injects an inline <style>, which our CSP refuses; the attribution is a text link instead.
      layout: { attributionLogo: false, background: { color: "#ffffff" }, textColor: "#566074", fontSize: 11 },
      grid: { vertLines: { color: "#eef0f3" }, horzLines: { color: "#eef0f3" } },
      rightPriceScale: { borderColor: "#dfe3ea" },
      timeScale: { borderColor: "#dfe3ea", timeVisible: true, secondsVisible: false },
      localization: { locale: "en-US" },
      handleScroll: { vertTouchDrag: false },
    });
    var entries = [];
    (pane.series || []).forEach(function (spec, index) {
      var definition = seriesDefinition(lib, spec.type);
      if (!definition) return;
      var made = seriesOptions(spec, index);
      var series = chart.addSeries(definition, made.options);
      series.setData(cleanPoints(spec.data, spec.type));
      if (Array.isArray(spec.markers) && spec.markers.length) {
        var markers = spec.markers
          .filter(function (marker) { return marker && typeof marker.time === "number"; })
          .map(function (marker) {
            return {
              time: marker.time,
              position: marker.position || "aboveBar",
              shape: marker.shape || "circle",
              color: marker.color || made.color,
              text: marker.text || "",
            };
          })
          .sort(function (a, b) { return a.time - b.time; });
        lib.createSeriesMarkers(series, markers);
      }
      entries.push({ name: spec.name || spec.type, color: made.color });
    });
    caption.appendChild(legend(entries));
    chart.timeScale().fitContent();
    return chart;
  }

  // Panning or zooming one pane moves the others to the same time range.
  function linkTimeScales(charts) {
    var syncing = false;
    charts.forEach(function (source) {
      source.timeScale().subscribeVisibleTimeRangeChange(function (range) {
        if (syncing || !range) return;
        syncing = true;
        charts.forEach(function (other) {
          if (other === source) return;
          try { other.timeScale().setVisibleRange(range); } catch (error) { /* a pane without data has no range */ }
        });
        syncing = false;
      });
    });
  }

  function attribution() {
    var note = document.createElement("p");
    note.className = "chart-attribution";
    var link = document.createElement("a");
    link.href = "https://www.tradingview.com/lightweight-charts/";
    link.rel = "noopener noreferrer";
    link.textContent = "TradingView Lightweight Charts";
    note.appendChild(document.createTextNode("Charts drawn with "));
    note.appendChild(link);
    return note;
  }

  function fail(container, message) {
    container.setAttribute("data-chart-state", "failed");
    var note = document.createElement("p");
    note.className = "chart-error";
    note.setAttribute("role", "status");
    note.textContent = message;
    container.appendChild(note);
  }

  function draw(container) {
    if (container.hasAttribute("data-chart-state")) return Promise.resolve();
    var lib = window.LightweightCharts;
    var url = new URL(container.getAttribute("data-chart-url"), window.location.href);
    if (!lib) { fail(container, "Charts are unavailable: the chart library did not load."); return Promise.resolve(); }
    if (url.origin !== window.location.origin) { fail(container, "Chart not drawn: its data is on another site."); return Promise.resolve(); }
    container.setAttribute("data-chart-state", "loading");
    container.setAttribute("aria-busy", "true");
    return fetch(url.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        var panes = (body && Array.isArray(body.panes)) ? body.panes : [];
        var hasData = panes.some(function (pane) {
          return (pane.series || []).some(function (spec) { return Array.isArray(spec.data) && spec.data.length; });
        });
        if (!hasData) {
          var note = document.createElement("p");
          note.className = "chart-empty";
          note.textContent = (body && typeof body.empty === "string") ? body.empty : "Nothing to chart yet.";
          container.appendChild(note);
          container.setAttribute("data-chart-state", "drawn");
          return;
        }
        var holder = document.createElement("div");
        holder.className = "chart-panes";
        container.appendChild(holder);
        var charts = panes.map(function (pane) { return drawPane(lib, pane, holder); });
        if (charts.length > 1) linkTimeScales(charts);
        if (charts.length) container.appendChild(attribution());
        container.setAttribute("data-chart-state", "drawn");
      })
      .catch(function (error) {
        fail(container, "The chart could not be loaded (" + error.message + "); the summary above still holds.");
      })
      .finally(function () { container.removeAttribute("aria-busy"); });
  }

  function drawAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var found = Array.from(scope.querySelectorAll("[data-chart-url]"));
    if (scope.matches && scope.matches("[data-chart-url]")) found.unshift(scope);
    return Promise.all(found.map(draw));
  }

  window.SteadyhandCharts = { draw: draw, drawAll: drawAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
  // htmx 4 event names; a swapped-in fragment may bring new chart containers.
  document.addEventListener("htmx:after:settle", function () { drawAll(document); });
})();
