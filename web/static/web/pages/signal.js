/* The signal page's price path: 1h candles (lightweight-charts) with the entry, the barriers,
   the excursions as price lines and the horizon checks as markers. The numbers come from the
   page (json_script "signal-chart-data"); the same numbers are in the page's tables. */
(function () {
  "use strict";
  const LWC = window.LightweightCharts;

  function start(element) {
    const data = csx.data("signal-chart-data");
    const palette = csx.colors();
    const color = (name) => palette[name] || palette.muted;
    const chart = LWC.createChart(element, {
      autoSize: true,
      layout: { background: { type: LWC.ColorType.Solid, color: palette.panel }, textColor: palette.text },
      grid: { vertLines: { color: palette.grid }, horzLines: { color: palette.grid } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderColor: palette.grid },
    });
    const candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: palette.up, downColor: palette.down, borderVisible: false,
      wickUpColor: palette.up, wickDownColor: palette.down,
      priceLineVisible: false, lastValueVisible: false,
    });
    candles.setData(data.candles);
    const lines = data.levels.map((level) => candles.createPriceLine({
      price: level.price, color: color(level.color), lineWidth: level.name === "entry" ? 2 : 1,
      lineStyle: level.name === "entry" ? LWC.LineStyle.Solid : LWC.LineStyle.Dashed,
      axisLabelVisible: true, title: level.label,
    }));
    const markers = LWC.createSeriesMarkers(candles, data.markers.map((marker) => ({
      time: marker.time, position: marker.position, shape: marker.shape,
      color: color(marker.color), text: marker.text,
    })));
    chart.timeScale().fitContent();
    // What the page drew, for a reader of the DOM (and the browser tests): series, lines, markers.
    element.csxChart = {
      chart,
      series: [candles],
      candles: candles.data().length,
      lines: lines.map((line) => line.options().title),
      markers: markers.markers().map((marker) => marker.text),
    };
  }

  csx.widget("#price-chart", start);
})();
