/* Behaviour every page shares. No inline scripts: the Content-Security-Policy forbids them. */
(function () {
  "use strict";

  var LOCALES = {
    en: {
      days: ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
      daysShort: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
      daysMin: ["Su", "Mo", "Tu", "We", "Th", "Fr", "Sa"],
      months: ["January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December"],
      monthsShort: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
        "Nov", "Dec"],
      today: "Today", clear: "Clear", dateFormat: "yyyy-MM-dd", timeFormat: "HH:mm",
      firstDay: 1
    },
    zh: {
      days: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
      daysShort: ["日", "一", "二", "三", "四", "五", "六"],
      daysMin: ["日", "一", "二", "三", "四", "五", "六"],
      months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月",
        "十一月", "十二月"],
      monthsShort: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月",
        "11月", "12月"],
      today: "今天", clear: "清除", dateFormat: "yyyy-MM-dd", timeFormat: "HH:mm",
      firstDay: 1
    }
  };

  function locale() {
    return LOCALES[document.body.dataset.language] || LOCALES.en;
  }

  // Inputs keep ISO values (yyyy-MM-dd, yyyy-MM-ddTHH:mm) so the server reads them as typed.
  function attachDatePickers(root) {
    if (typeof AirDatepicker === "undefined") return;
    root.querySelectorAll("input[data-datepicker]:not([data-datepicker-ready])").forEach(
      function (input) {
        var withTime = input.dataset.datepicker === "datetime";
        input.dataset.datepickerReady = "1";
        new AirDatepicker(input, {
          locale: locale(),
          timepicker: withTime,
          dateFormat: "yyyy-MM-dd",
          timeFormat: "HH:mm",
          altFieldDateFormat: withTime ? "yyyy-MM-dd'T'HH:mm" : "yyyy-MM-dd",
          autoClose: !withTime,
          buttons: ["today", "clear"],
          onSelect: function () {
            input.dispatchEvent(new Event("change", { bubbles: true }));
          }
        });
      });
  }

  // Forms and buttons that destroy or move data ask first (data-confirm="...").
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.dataset && form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  document.addEventListener("DOMContentLoaded", function () { attachDatePickers(document); });
  document.addEventListener("htmx:load", function (event) { attachDatePickers(event.target); });

  window.crm = window.crm || {};
  window.crm.attachDatePickers = attachDatePickers;
})();
